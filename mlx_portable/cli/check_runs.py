"""The two runs of ``mlx-portable check`` and their comparison.

A run is the tiny model's prompt logits and greedy tokens on one device
(:func:`run_model`); :func:`compare` holds the candidate against the CPU
reference within a tolerance that fits the dtype (and TF32,
:func:`tolerance_for`).  Kept apart from the command (:mod:`.check`) so a
test can compare hand-made runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "PROMPT",
    "TF32_TOLERANCE",
    "TOLERANCES",
    "Comparison",
    "ModelRun",
    "Runner",
    "compare",
    "run_model",
    "tolerance_for",
]

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
    timed_runs: int = 1  #: the times are the fastest of this many runs

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
            "timed_runs": self.timed_runs,
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


#: Timed runs per device: at least this many, more until this much time has passed, at most the cap.
#: One run of the tiny model takes milliseconds, so one measurement swung 3x between the two
#: CPU runs of one check; the fastest of several is stable to a few percent.
TIMED_RUNS, TIMED_SECONDS, TIMED_RUNS_CAP = 3, 1.0, 40


def run_model(model: Any, prompt: Sequence[int], *, device: Any, role: str, decode_tokens: int) -> ModelRun:
    """Prefill ``prompt`` and decode greedily on ``device``: the first timed run's outputs, the best times.

    After one warm-up (allocations, kernel builds), the run repeats
    (:data:`TIMED_RUNS` .. :data:`TIMED_RUNS_CAP` times, until
    :data:`TIMED_SECONDS` have passed); the fastest prefill and decode are kept.
    """
    from .. import _mlx

    mx = _mlx.core()
    with mx.stream(device):
        _greedy(model, prompt, mx, min(decode_tokens, 2))  # warm-up: allocations, kernel builds
        run = _greedy(model, prompt, mx, decode_tokens)
        repeats, spent = 1, run.prefill_seconds + run.decode_seconds
        while repeats < TIMED_RUNS_CAP and (repeats < TIMED_RUNS or spent < TIMED_SECONDS):
            again = _greedy(model, prompt, mx, decode_tokens)
            run.prefill_seconds = min(run.prefill_seconds, again.prefill_seconds)
            run.decode_seconds = min(run.decode_seconds, again.decode_seconds)
            spent += again.prefill_seconds + again.decode_seconds
            repeats += 1
    run.label = f"{_device_name(device)} ({role})"
    run.timed_runs = repeats
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
