"""``mlx-portable check``: prove the active backend computes what the CPU computes.

Nothing is downloaded: the tiny llama model (:mod:`mlx_portable.tiny_model`)
is built in memory, run on the active backend's device (the *candidate*) and
on the CPU (the *reference*), and the two runs are compared:

* logits of the prompt and of every greedy step up to the first divergence,
  as ``max |candidate - reference| / max |reference|`` against a tolerance
  that fits the dtype (and TF32, see :func:`tolerance_for`);
* the greedy tokens.  Two runs may legitimately part ways where the
  reference's two best logits are within the tolerance of each other (a near
  tie); anywhere else a different token is a disagreement.

Prefill and decode speed are measured on both runs (the tiny model measures
per-token overhead, not the speed of a real model).  On a machine whose
active backend is the CPU, the candidate is the CPU too: the report says so,
and still measures.

The comparison is separate from the runs (:func:`compare`), and the runner is
a parameter of :func:`run_check`, so a test can hand in a deliberately
perturbed run and watch the disagreement path.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .loading import EXIT_CANNOT_RUN, mlx_load_problem, print_mlx_problem
from .render import Progress, Style, format_table

__all__ = [
    "CHECK_SCHEMA",
    "CheckResult",
    "Comparison",
    "ModelRun",
    "Runner",
    "compare",
    "execute",
    "run_check",
    "run_model",
    "tolerance_for",
]

CHECK_SCHEMA = 1
EXIT_OK, EXIT_DISAGREE = 0, 1

#: Relative logit tolerance per dtype: max |a - b| / max |reference|.
#: float32 runs differ only by summation order (~1e-6).  Measured on the tiny
#: model against a float32 run: float16 weights move the logits by ~1e-2 and
#: bfloat16 by 6e-2 to 9e-2, so a device and the CPU, which both round in that
#: dtype but in different places, stay inside these bounds.  A wrong kernel
#: is off by O(1), far above all of them.
TOLERANCES: dict[str, float] = {"float32": 1e-3, "float16": 3e-2, "bfloat16": 1.5e-1}
#: float32 under TF32-class matmuls: 10 significand bits on the matmul inputs
#: only, so at most the float16 bound.
TF32_TOLERANCE = 3e-2

PROMPT = (
    "mlx-portable check: the quick brown fox jumps over the lazy dog, "
    "then runs the same model on the device and on the CPU, and compares."
)


@dataclass
class ModelRun:
    """One run of the tiny model: prefill logits, greedy tokens, and timings."""

    label: str
    logits: Any  # mlx array (prompt_len, vocab), float32
    step_logits: list[Any]  # one (vocab,) float32 array per greedy token
    tokens: list[int]
    prompt_tokens: int
    prefill_seconds: float
    decode_seconds: float

    @property
    def prefill_tokens_per_s(self) -> float | None:
        return self.prompt_tokens / self.prefill_seconds if self.prefill_seconds > 0 else None

    @property
    def decode_tokens_per_s(self) -> float | None:
        steps = len(self.tokens) - 1  # the first token comes from the prefill
        return steps / self.decode_seconds if self.decode_seconds > 0 and steps > 0 else None

    def speed(self) -> dict[str, Any]:
        return {
            "device": self.label,
            "prompt_tokens": self.prompt_tokens,
            "generated_tokens": len(self.tokens),
            "prefill_tokens_per_s": _round(self.prefill_tokens_per_s),
            "decode_tokens_per_s": _round(self.decode_tokens_per_s),
        }


class Runner(Protocol):
    def __call__(
        self, model: Any, prompt: Sequence[int], *, device: Any, role: str, decode_tokens: int
    ) -> ModelRun: ...


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _greedy(model: Any, prompt: Sequence[int], mx: Any, decode_tokens: int) -> ModelRun:
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(model)
    tokens: list[int] = []
    steps: list[Any] = []
    start = time.perf_counter()
    out = model(mx.array(list(prompt))[None], cache=cache)[0].astype(mx.float32)
    last = out[-1]
    mx.eval(out, last)
    prefill = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(decode_tokens):
        token = int(mx.argmax(last).item())
        tokens.append(token)
        steps.append(last)
        if i == decode_tokens - 1:
            break
        last = model(mx.array([[token]]), cache=cache)[0, -1].astype(mx.float32)
        mx.eval(last)
    decode = time.perf_counter() - start
    return ModelRun("", out, steps, tokens, len(prompt), prefill, decode)


def run_model(model: Any, prompt: Sequence[int], *, device: Any, role: str, decode_tokens: int) -> ModelRun:
    """Prefill ``prompt`` and decode greedily on ``device``, timed after one warm-up."""
    from .. import _mlx

    mx = _mlx.core()
    with mx.stream(device):
        _greedy(model, prompt, mx, min(decode_tokens, 2))  # warm-up: allocations, kernel builds
        run = _greedy(model, prompt, mx, decode_tokens)
    run.label = f"{_device_name(device)} ({role})"
    return run


def _device_name(device: Any) -> str:
    kind = getattr(device, "type", device)
    return str(getattr(kind, "name", kind)).split(".")[-1]


def tolerance_for(dtype: str, backend: str, env: dict[str, str] | None = None) -> tuple[float, bool]:
    """``(relative tolerance, tf32)`` for comparing ``backend`` with the CPU in ``dtype``.

    float32 matmuls run in TF32-class precision on CUDA (and on Metal with a
    neural accelerator) unless ``MLX_ENABLE_TF32=0``; float16/bfloat16 are
    not affected by that setting.
    """
    if dtype not in TOLERANCES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(TOLERANCES)}")
    env = dict(os.environ) if env is None else env
    tf32 = dtype == "float32" and _on_gpu(backend) and env.get("MLX_ENABLE_TF32", "1").strip() != "0"
    return (TF32_TOLERANCE if tf32 else TOLERANCES[dtype]), tf32


def _on_gpu(backend: str) -> bool:
    from ..backend_table import backend_names, row

    return backend in backend_names() and row(backend).device_type == "gpu"


@dataclass
class Comparison:
    """How the candidate run compares with the reference run."""

    tolerance: float
    max_abs_diff: float
    max_rel_diff: float
    logits_ok: bool
    tokens_compared: int
    first_divergence: int | None
    near_tie: bool
    tokens_ok: bool
    messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.logits_ok and self.tokens_ok


def compare(reference: ModelRun, candidate: ModelRun, *, tolerance: float) -> Comparison:
    """Compare logits (prefill and the greedy steps both runs share) and tokens."""
    from .. import _mlx

    mx = _mlx.core()
    with mx.stream(mx.cpu):
        n = min(len(reference.tokens), len(candidate.tokens))
        divergence = next((i for i in range(n) if reference.tokens[i] != candidate.tokens[i]), None)
        if divergence is None and len(reference.tokens) != len(candidate.tokens):
            divergence = n
        # Step i's logits come from identical inputs up to the first divergence.
        shared = n if divergence is None else min(divergence + 1, n)
        pairs = [(reference.logits, candidate.logits)]
        pairs += [(reference.step_logits[i], candidate.step_logits[i]) for i in range(shared)]
        if any(tuple(a.shape) != tuple(b.shape) for a, b in pairs):
            shapes = f"{tuple(pairs[0][0].shape)} vs {tuple(pairs[0][1].shape)}"
            return Comparison(
                tolerance,
                float("inf"),
                float("inf"),
                False,
                n,
                divergence,
                False,
                False,
                [f"the runs' logits have different shapes ({shapes})"],
            )
        max_abs = max(float(mx.max(mx.abs(a - b)).item()) for a, b in pairs)
        scale = max(float(mx.max(mx.abs(a)).item()) for a, _ in pairs) or 1.0
        finite = all(bool(mx.all(mx.isfinite(b)).item()) for _, b in pairs)
    rel = max_abs / scale if finite else float("inf")
    logits_ok = finite and rel <= tolerance
    messages: list[str] = []
    if not finite:
        messages.append(f"{candidate.label} produced non-finite logits (NaN or inf)")
    elif not logits_ok:
        messages.append(
            f"logits disagree: max relative difference {rel:.3g} > tolerance {tolerance:g} "
            f"(max absolute difference {max_abs:.3g}, logit scale {scale:.3g})"
        )
    near_tie = False
    tokens_ok = divergence is None
    if divergence is not None and divergence < n:
        ref_step = reference.step_logits[divergence]
        gap = float(
            ref_step[reference.tokens[divergence]].item() - ref_step[candidate.tokens[divergence]].item()
        )
        near_tie = abs(gap) <= tolerance * scale
        tokens_ok = near_tie
        where = (
            f"greedy tokens diverge at step {divergence} ({reference.tokens[divergence]} vs "
            f"{candidate.tokens[divergence]})"
        )
        if near_tie:
            messages.append(f"{where} on a near tie (reference logit gap {gap:.3g}): accepted")
        else:
            messages.append(f"{where}: the reference prefers its token by {gap:.3g}, beyond the tolerance")
    elif divergence is not None:
        messages.append(
            f"the runs generated different numbers of tokens ({len(reference.tokens)} vs "
            f"{len(candidate.tokens)})"
        )
    return Comparison(tolerance, max_abs, rel, logits_ok, n, divergence, near_tie, tokens_ok, messages)


@dataclass
class CheckResult:
    backend: str
    candidate_device: str
    cpu_against_cpu: bool
    dtype: str
    tf32: bool
    model: dict[str, Any]
    reference: ModelRun
    candidate: ModelRun
    comparison: Comparison

    @property
    def ok(self) -> bool:
        return self.comparison.ok

    def summary(self) -> str:
        if self.ok and self.cpu_against_cpu:
            return (
                "the CPU run agrees with the CPU reference "
                f"(CPU against CPU: the active backend is {self.backend})"
            )
        if self.ok:
            return f"the {self.backend} backend agrees with the CPU reference"
        return f"the {self.backend} backend DISAGREES with the CPU: " + "; ".join(
            m for m in self.comparison.messages if not m.endswith("accepted")
        )

    def to_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {
            "schema": CHECK_SCHEMA,
            "ok": self.ok,
            "summary": self.summary(),
            "backend": self.backend,
            "device": self.candidate_device,
            "reference_device": "cpu",
            "cpu_against_cpu": self.cpu_against_cpu,
            "dtype": self.dtype,
            "tf32": self.tf32,
            "model": self.model,
            "logits": {
                "tolerance": c.tolerance,
                "max_abs_diff": c.max_abs_diff,
                "max_rel_diff": c.max_rel_diff,
                "ok": c.logits_ok,
            },
            "tokens": {
                "compared": c.tokens_compared,
                "reference": self.reference.tokens,
                "candidate": self.candidate.tokens,
                "first_divergence": c.first_divergence,
                "near_tie": c.near_tie,
                "ok": c.tokens_ok,
            },
            "speed": {"candidate": self.candidate.speed(), "reference": self.reference.speed()},
            "messages": c.messages,
        }


def run_check(
    *,
    backend: str,
    dtype: str = "float32",
    decode_tokens: int = 32,
    runner: Runner = run_model,
    progress: Progress | None = None,
    build: Callable[[], tuple[Any, Any]] | None = None,
) -> CheckResult:
    """Build the tiny model, run it on the candidate device and the CPU, compare."""
    from .. import _mlx

    mx = _mlx.core()
    step = progress.step if progress is not None else (lambda _msg: None)
    tolerance, tf32 = tolerance_for(dtype, backend)
    step("building the tiny model in memory")
    if build is None:
        from ..tiny_model import build_tiny_model, tiny_model_config

        model, tokenizer = build_tiny_model(seed=0)
        config = tiny_model_config()
    else:
        model, tokenizer = build()
        config = {}
    if dtype != "float32":
        model.set_dtype(getattr(mx, dtype))
    prompt = list(tokenizer.encode(PROMPT))
    candidate_device = mx.gpu if _on_gpu(backend) else mx.cpu
    name = _device_name(candidate_device)
    step(f"running on the {backend} backend ({name})")
    candidate = runner(model, prompt, device=candidate_device, role="candidate", decode_tokens=decode_tokens)
    step("running the CPU reference")
    reference = runner(model, prompt, device=mx.cpu, role="reference", decode_tokens=decode_tokens)
    step("comparing")
    comparison = compare(reference, candidate, tolerance=tolerance)
    model_info = {
        "name": "tiny " + str(config.get("model_type", "llama")),
        "layers": config.get("num_hidden_layers"),
        "hidden_size": config.get("hidden_size"),
        "vocab_size": config.get("vocab_size"),
        "seed": 0,
        "prompt_tokens": len(prompt),
        "generated_tokens": decode_tokens,
    }
    return CheckResult(
        backend, name, name == "cpu", dtype, tf32, model_info, reference, candidate, comparison
    )


def _fmt_speed(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def render_text(result: CheckResult, style: Style | None = None) -> str:
    s = style or Style(False)
    d = result.to_dict()
    c = result.comparison
    out = [s("mlx-portable check", "bold"), ""]
    if result.cpu_against_cpu:
        against = f"cpu against cpu (the active backend is {result.backend}, so both runs are on the CPU)"
    else:
        against = f"{result.backend} ({result.candidate_device}) against the CPU"
    m = d["model"]
    tf32 = ", TF32 matmuls (MLX_ENABLE_TF32=1)" if result.tf32 else ""
    ok, bad = s("ok", "green"), s("DISAGREE", "red", "bold")
    out += format_table(
        [
            ["backend", result.backend],
            ["comparison", against],
            [
                "model",
                f"{m['name']} ({m['layers']} layers, hidden {m['hidden_size']}, vocab {m['vocab_size']}), "
                f"built in memory, seed {m['seed']}",
            ],
            ["dtype", f"{result.dtype}{tf32}"],
            ["tokens", f"{m['prompt_tokens']} prompt tokens, {m['generated_tokens']} greedy tokens"],
            [
                "logits",
                f"max rel diff {c.max_rel_diff:.3g} (abs {c.max_abs_diff:.3g}), "
                f"tolerance {c.tolerance:g}   " + (ok if c.logits_ok else bad),
            ],
            ["greedy tokens", _tokens_line(result) + "   " + (ok if c.tokens_ok else bad)],
        ],
        indent=0,
    )
    out += ["", "speed (tiny model: per-token overhead, not a real model's speed)"]
    rows = [["run", "prefill tok/s", "decode tok/s"]]
    for run in (result.candidate, result.reference):
        rows.append([run.label, _fmt_speed(run.prefill_tokens_per_s), _fmt_speed(run.decode_tokens_per_s)])
    out += format_table(rows)
    if c.messages:
        out += [""] + [f"note: {msg}" for msg in c.messages]
    out += [
        "",
        "result: "
        + (s("ok", "green", "bold") if result.ok else s("FAILED", "red", "bold"))
        + f" -- {result.summary()}",
    ]
    return "\n".join(out) + "\n"


def _tokens_line(result: CheckResult) -> str:
    c = result.comparison
    n = c.tokens_compared
    if c.first_divergence is None:
        return f"{n}/{n} identical"
    return f"identical for {c.first_divergence}/{n}, then diverge" + (" (near tie)" if c.near_tie else "")


#: Modules the tiny model needs (mlx-lm's model classes, its tokenizer, its weights).
_REQUIREMENTS = ("mlx_lm", "tokenizers", "numpy")


def _missing_requirement() -> str | None:
    import importlib.util

    for name in _REQUIREMENTS:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None


def _needs(module: str) -> str:
    package = module.replace("_", "-")
    return (
        f"mlx-portable check needs {package} (the tiny model is built offline from mlx-lm's model "
        f"classes): pip install {package}\n"
    )


def execute(
    *,
    as_json: bool = False,
    dtype: str = "float32",
    decode_tokens: int = 32,
    quiet: bool = False,
    runner: Runner = run_model,
) -> int:
    """The ``check`` subcommand: 0 agree, 1 disagree, 2 cannot run."""
    problem = mlx_load_problem()
    if problem is not None:
        print_mlx_problem(problem)
        return EXIT_CANNOT_RUN
    import mlx_portable

    from ..errors import MlxPortableError

    try:
        report = mlx_portable.activate()
    except (MlxPortableError, ValueError) as exc:
        sys.stderr.write(f"mlx-portable check: {exc}\n")
        return EXIT_CANNOT_RUN
    missing = _missing_requirement()
    if missing is not None:
        sys.stderr.write(_needs(missing))
        return EXIT_CANNOT_RUN
    progress = Progress("mlx-portable check", quiet=quiet)
    try:
        result = run_check(
            backend=report.backend or "cpu",
            dtype=dtype,
            decode_tokens=decode_tokens,
            runner=runner,
            progress=progress,
        )
    except ModuleNotFoundError as exc:
        progress.done()
        name = (exc.name or "").split(".")[0]
        if name in _REQUIREMENTS:
            sys.stderr.write(_needs(name))
            return EXIT_CANNOT_RUN
        raise
    progress.done()
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result, Style.for_stream(sys.stdout)))
    if not result.ok:
        sys.stderr.write(f"mlx-portable check: FAILED: {result.summary()}\n")
        return EXIT_DISAGREE
    return EXIT_OK
