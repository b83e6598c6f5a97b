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
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .check_runs import (
    PROMPT,
    TF32_TOLERANCE,
    TOLERANCES,
    Comparison,
    ModelRun,
    Runner,
    _device_name,
    _on_gpu,
    compare,
    run_model,
    tolerance_for,
)
from .loading import EXIT_CANNOT_RUN, mlx_load_problem, print_mlx_problem
from .render import Progress, Style, format_table

__all__ = [
    "CHECK_SCHEMA",
    "PROMPT",
    "TF32_TOLERANCE",
    "TOLERANCES",
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
    #: Float32 GEMM GFLOP/s of mlx next to NumPy's on the same arrays
    #: (:func:`mlx_portable.cpu_blas.measure.gemm_rates`), or why it was not measured.
    gemm: dict[str, Any] | None = None

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
            "gemm": self.gemm,
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
    step("measuring float32 GEMM against NumPy on the same arrays")
    gemm = _gemm(mx, candidate_device)
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
        backend, name, name == "cpu", dtype, tf32, model_info, reference, candidate, comparison, gemm
    )


def _gemm(mx: Any, device: Any) -> dict[str, Any]:
    """mlx's float32 GEMM rate next to NumPy's, with the BLAS mlx's CPU backend calls."""
    try:
        from ..cpu_blas import current
        from ..cpu_blas.measure import gemm_rates

        rates = gemm_rates(mx, device=device)
    except ImportError as exc:  # NumPy missing: the model check itself needs it, so this is rare
        return {"error": f"not measured: {exc}"}
    except (ValueError, RuntimeError) as exc:  # the device cannot run it (mlx's own message)
        return {"error": f"not measured on {_device_name(device)}: {exc}"}
    binding = current()
    rates["blas"] = binding.library.name if binding is not None else None
    return rates


def _gemm_line(gemm: dict[str, Any] | None) -> list[str]:
    if not gemm:
        return []
    if "error" in gemm:
        return ["", f"float32 GEMM: {gemm['error']}"]
    m, k, n = gemm["shape"]
    blas = (
        f", {gemm['blas']}" if gemm.get("blas") else (", mlx's own BLAS" if gemm["device"] == "cpu" else "")
    )
    return [
        "",
        f"float32 GEMM {m}x{k}x{n} ({gemm['device']}{blas})",
        f"  mlx {gemm['mlx_gflops']:,.1f} GFLOP/s, NumPy {gemm['numpy_gflops']:,.1f} GFLOP/s "
        f"on the same arrays: {gemm['ratio']:.2f}x NumPy",
    ]


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
    out += _gemm_line(result.gemm)
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
        f"classes): pip install {package}"
    )


def _cannot_run(message: str, as_json: bool) -> int:
    """Say why the check cannot run (exit 2); with ``--json``, as a JSON document too."""
    if as_json:
        doc = {"schema": CHECK_SCHEMA, "ok": False, "summary": "the check could not run", "error": message}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    sys.stderr.write(message if message.startswith("mlx-portable") else f"mlx-portable check: {message}")
    sys.stderr.write("\n")
    return EXIT_CANNOT_RUN


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
        if as_json:
            return _cannot_run(problem, as_json)
        print_mlx_problem(problem)
        return EXIT_CANNOT_RUN
    import mlx_portable

    from ..errors import MlxPortableError

    try:
        report = mlx_portable.activate()
    except (MlxPortableError, ValueError) as exc:
        return _cannot_run(str(exc), as_json)
    missing = _missing_requirement()
    if missing is not None:
        return _cannot_run(_needs(missing), as_json)
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
            return _cannot_run(_needs(name), as_json)
        raise
    except OSError as exc:  # e.g. no usable temporary folder for the tiny model
        progress.done()
        where = f" ({exc.filename})" if exc.filename else ""
        sys.stderr.write(
            f"mlx-portable check: cannot run: {exc.strerror or exc}{where}. The check writes a tiny model "
            "to a temporary folder: set TMPDIR to a writable folder.\n"
        )
        return EXIT_CANNOT_RUN
    progress.done()
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result, Style.for_stream(sys.stdout)))
    if not result.ok:
        sys.stderr.write(f"mlx-portable check: FAILED: {result.summary()}\n")
        return EXIT_DISAGREE
    return EXIT_OK
