"""The behaviour diff: the ops mlx-lm's models use, run on this mlx and compared with mlx 0.32.4.

Why: a name can exist on every mlx and still compute differently (a kernel
that mishandles odd shapes, a mask hiding a whole row, an empty input, a
half-precision path).  Each case below runs one op on fixed inputs (NumPy,
seeded by the case name, so every mlx sees the same values) in float32,
float16 and bfloat16; its output is compared with the reference that mlx
0.32.4 produced (``behaviour_reference.npz``, written by ``python -m
tools.apidiff behaviour --write-reference`` under mlx 0.32.4).

A *finding* is an error the reference did not raise, or a result outside
the dtype's tolerance, NaN included.  Findings of every matrix mlx, with and
without mlx-portable, are recorded in ``behaviour_findings.json``; the docs
table shows them with their disposition (``statuses.FINDINGS``).

NumPy is imported inside the functions only.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .edges import EDGE_CASES, edge_cases, edge_dtypes

__all__ = [
    "CASES",
    "DTYPES",
    "FINDINGS_PATH",
    "REFERENCE_PATH",
    "compare",
    "load_findings",
    "load_reference",
    "run_cases",
    "run_isolated",
    "save_reference",
]

REFERENCE_PATH = Path(__file__).resolve().parent / "behaviour_reference.npz"
FINDINGS_PATH = Path(__file__).resolve().parent / "behaviour_findings.json"
DTYPES = ("float32", "float16", "bfloat16")
#: (relative, absolute) tolerance per dtype, applied to float32 copies of the outputs.
TOLERANCE = {
    "float32": (1e-4, 1e-5),
    "float16": (1e-2, 1e-2),
    "bfloat16": (5e-2, 5e-2),
    "float64": (1e-5, 1e-6),
    "int32": (0.0, 0.0),
    "int64": (0.0, 0.0),
    "uint8": (0.0, 0.0),
    "bool_": (0.0, 0.0),
}

Case = Callable[[Any, Callable[..., Any]], Any]


def _cases() -> dict[str, Case]:
    """``name -> fn(mx, rand)``; ``rand(*shape)`` gives a normal array in the case's dtype."""
    import importlib

    nn: Any = importlib.import_module("mlx.nn")  # the activations are compiled functions mypy cannot see

    def sdpa(mask_kind: str, tq: int = 5, tk: int = 7) -> Case:
        def run(mx: Any, r: Callable[..., Any]) -> Any:
            q, k, v = r(1, 4, tq, 16), r(1, 2, tk, 16), r(1, 2, tk, 16)
            mask: Any = None
            if mask_kind == "causal":
                mask = "causal"
            elif mask_kind == "bool_rows":  # the first query row sees nothing
                m = mx.ones((tq, tk), dtype=mx.bool_)
                mask = mx.concatenate([mx.zeros((1, tk), dtype=mx.bool_), m[1:]], axis=0)
            elif mask_kind == "additive":
                mask = (mx.triu(mx.ones((tq, tk)), k=tk - tq + 1) * -1e9).astype(q.dtype)
            return mx.fast.scaled_dot_product_attention(q, k, v, scale=0.25, mask=mask)

        return run

    def quantized(mx: Any, r: Callable[..., Any]) -> Any:
        w = r(8, 128)
        wq, scales, biases = mx.quantize(w, 64, 4)
        x = r(3, 128)
        return mx.concatenate(
            [
                mx.dequantize(wq, scales, biases, 64, 4),
                mx.quantized_matmul(x, wq, scales, biases, True, 64, 4).T,
            ],
            axis=1,
        )

    def gather_qmm(mx: Any, r: Callable[..., Any]) -> Any:
        w = r(3, 8, 64)
        wq, scales, biases = mx.quantize(w, 32, 4)
        x = r(4, 1, 1, 64)
        idx = mx.array([[2], [0], [1], [2]], dtype=mx.uint32)
        return mx.gather_qmm(x, wq, scales, biases, rhs_indices=idx, transpose=True, group_size=32, bits=4)

    return {
        **edge_cases(),
        "matmul_odd": lambda mx, r: r(3, 5, 7) @ r(7, 9),
        "matmul_empty_rows": lambda mx, r: r(0, 7) @ r(7, 3),
        "matmul_empty_inner": lambda mx, r: r(3, 0) @ r(0, 4),
        "addmm": lambda mx, r: mx.addmm(r(3, 9), r(3, 7), r(7, 9), alpha=0.5, beta=2.0),
        "softmax": lambda mx, r: mx.softmax(r(3, 5, 7), axis=-1),
        "softmax_precise": lambda mx, r: mx.softmax(r(3, 33) * 8, axis=-1, precise=True),
        "softmax_masked_row": lambda mx, r: mx.softmax(
            mx.where(mx.arange(7)[None] < mx.array([[0], [3], [7]]), r(3, 7), -float("inf")), axis=-1
        ),
        "softmax_empty": lambda mx, r: mx.softmax(r(3, 0), axis=-1),
        "logsumexp": lambda mx, r: mx.logsumexp(r(3, 17), axis=-1),
        "rms_norm": lambda mx, r: mx.fast.rms_norm(r(3, 5, 67), r(67), 1e-5),
        "rms_norm_no_weight": lambda mx, r: mx.fast.rms_norm(r(3, 67), None, 1e-5),
        "layer_norm": lambda mx, r: mx.fast.layer_norm(r(3, 5, 67), r(67), r(67), 1e-5),
        "layer_norm_no_affine": lambda mx, r: mx.fast.layer_norm(r(3, 67), None, None, 1e-5),
        "rope": lambda mx, r: mx.fast.rope(
            r(1, 3, 5, 16), 16, traditional=False, base=10000.0, scale=1.0, offset=3
        ),
        "rope_traditional": lambda mx, r: mx.fast.rope(
            r(1, 3, 5, 16), 16, traditional=True, base=10000.0, scale=1.0, offset=0
        ),
        "rope_partial": lambda mx, r: mx.fast.rope(
            r(2, 3, 5, 24), 8, traditional=False, base=500.0, scale=0.5, offset=7
        ),
        "rope_batch_offsets": lambda mx, r: mx.fast.rope(
            r(2, 3, 5, 16), 16, traditional=False, base=10000.0, scale=1.0, offset=mx.array([0, 4])
        ),
        "sdpa": sdpa("none"),
        "sdpa_causal": sdpa("causal"),
        "sdpa_bool_mask_hides_row": sdpa("bool_rows"),
        "sdpa_additive": sdpa("additive"),
        "sdpa_decode": sdpa("none", tq=1, tk=9),
        "silu": lambda mx, r: nn.silu(r(3, 5, 7)),
        "gelu": lambda mx, r: nn.gelu(r(3, 5, 7)),
        "gelu_approx": lambda mx, r: nn.gelu_approx(r(3, 5, 7)),
        "sigmoid": lambda mx, r: mx.sigmoid(r(3, 5, 7) * 4),
        "softplus": lambda mx, r: nn.softplus(r(3, 5, 7) * 8),
        "tanh_exp_log1p_erf": lambda mx, r: mx.stack(
            [mx.tanh(r(3, 7)), mx.exp(r(3, 7)), mx.log1p(mx.abs(r(3, 7))), mx.erf(r(3, 7))]
        ),
        "argmax": lambda mx, r: mx.argmax(r(3, 5, 7), axis=-1),
        "topk": lambda mx, r: mx.sort(mx.topk(r(3, 11), 3, axis=-1), axis=-1),
        "argpartition": lambda mx, r: mx.sort(mx.argpartition(-r(3, 11), 2, axis=-1)[:, :3], axis=-1),
        "take_along_axis": lambda mx, r: mx.take_along_axis(
            (x := r(3, 7)), mx.argsort(mx.stop_gradient(x), axis=-1), axis=-1
        ),
        "cumsum_reverse": lambda mx, r: mx.cumsum(r(3, 7), axis=1, reverse=True),
        "where": lambda mx, r: mx.where(r(3, 7) > 0, r(3, 7), r(1, 7)),
        "einsum": lambda mx, r: mx.einsum("bhqd,bhkd->bhqk", r(1, 2, 3, 5), r(1, 2, 4, 5)),
        "conv1d_depthwise": lambda mx, r: mx.conv1d(r(2, 9, 6), r(6, 3, 1), padding=2, groups=6),
        "conv1d": lambda mx, r: mx.conv1d(r(2, 9, 6), r(4, 3, 6)),
        "quantize_affine_4bit": quantized,
        "gather_qmm": gather_qmm,
        "sum_empty": lambda mx, r: mx.sum(r(0, 3), axis=0),
        "mean_empty": lambda mx, r: mx.mean(r(0, 3), axis=0),
        "concatenate_empty": lambda mx, r: mx.concatenate([r(0, 5), r(2, 5)], axis=0),
    }


_CASE_NAMES = (
    "matmul_odd matmul_empty_rows matmul_empty_inner addmm softmax softmax_precise softmax_masked_row "
    "softmax_empty logsumexp rms_norm rms_norm_no_weight layer_norm layer_norm_no_affine rope "
    "rope_traditional rope_partial rope_batch_offsets sdpa sdpa_causal sdpa_bool_mask_hides_row "
    "sdpa_additive sdpa_decode silu gelu gelu_approx sigmoid softplus tanh_exp_log1p_erf argmax topk "
    "argpartition take_along_axis cumsum_reverse where einsum conv1d_depthwise conv1d "
    "quantize_affine_4bit gather_qmm sum_empty mean_empty concatenate_empty"
)
CASES: tuple[str, ...] = tuple(_CASE_NAMES.split()) + EDGE_CASES


def run_cases(keys: list[str] | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every case in every dtype: ``"case/dtype" -> float32 NumPy array``, or the error's text.

    ``keys`` limits the run to those ``"case/dtype"``; ``progress(key)`` is called before each.
    """
    import mlx.core as mx
    import numpy as np

    cases = _cases()
    results: dict[str, Any] = {}
    for key in keys if keys is not None else all_keys():
        name, dtype_name = key.split("/")
        if progress is not None:
            progress(key)
        dtype = getattr(mx, dtype_name)
        rng = np.random.default_rng(zlib.crc32(name.encode()))

        def rand(*shape: int, _rng: Any = rng, _dtype: Any = dtype) -> Any:
            if not mx.issubdtype(_dtype, mx.floating):  # small non-negative integers (bool: 0/1)
                top = 2 if _dtype == mx.bool_ else 6
                return mx.array(_rng.integers(0, top, shape).astype(np.int32)).astype(_dtype)
            if 0 in shape:
                # Not from an empty NumPy array: mlx >= 0.32.0 can spin for minutes
                # summing one over its empty axis (see docs/api-diff.md).
                return mx.zeros(shape, dtype=_dtype)
            return mx.array(_rng.standard_normal(shape).astype(np.float32)).astype(_dtype)

        try:
            out = cases[name](mx, rand)
            results[key] = np.array(out.astype(mx.float32)) if out.dtype != mx.bool_ else np.array(out)
        except Exception as exc:  # recorded: an error is a result to compare
            results[key] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return results


def all_keys() -> list[str]:
    """Every ``"case/dtype"``: the op cases in :data:`DTYPES`, the edge cases in theirs."""
    return [
        f"{name}/{dtype}"
        for name in CASES
        for dtype in (edge_dtypes(name) if name.startswith("edge_") else DTYPES)
    ]


def run_isolated(keys: list[str] | None = None) -> dict[str, Any]:
    """:func:`run_cases` (of ``keys``, default all) in child interpreters: a case that aborts is a result.

    Some older mlx versions abort from C++ (``terminate called after throwing
    ...``) instead of raising; the case that was running is recorded with the
    child's last stderr line, and a new child goes on from the next case.
    """
    import os
    import pickle
    import subprocess
    import sys
    import tempfile

    todo = all_keys() if keys is None else list(keys)
    results: dict[str, Any] = {}
    # The CPU speed routes change the summation order by design (sums in
    # float32 where mlx's CPU quantized kernel sums in bfloat16: 10x nearer the
    # exact product); their own tests compare them with mlx's kernels.  The
    # sweep compares mlx's ops, as mlx-portable's other patches leave them.
    env = dict(os.environ)
    env["MLX_PORTABLE_DISABLE"] = ",".join(
        p for p in (env.get("MLX_PORTABLE_DISABLE", ""), "half_matmul_cpu", "quantized_matmul_cpu") if p
    )
    while todo:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "results.pickle")
            code = (
                "import pickle, sys\n"
                "import mlx_portable\n"
                "mlx_portable.activate()  # patches nothing under MLX_PORTABLE=0\n"
                "from tools.apidiff.behaviour import run_cases\n"
                "with open(sys.argv[1], 'ab') as f:\n"
                "    for key in sys.argv[2:]:\n"
                "        print(key, flush=True)\n"
                "        pickle.dump(run_cases([key]), f)\n"
                "        f.flush()\n"
            )
            done = subprocess.run(
                [sys.executable, "-c", code, out, *todo],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if os.path.exists(out):
                with open(out, "rb") as f:
                    while True:
                        try:
                            results.update(pickle.load(f))  # our own child's output
                        except EOFError:
                            break
            if done.returncode == 0:
                return results
            started = done.stdout.split()
            if not started:
                raise RuntimeError(f"the behaviour sweep could not start:\n{done.stderr[-2000:]}")
            crashed = started[-1]
            last = [line for line in done.stderr.splitlines() if line.strip()][-1:] or ["(no output)"]
            results[crashed] = f"process aborted (exit {done.returncode}): {last[0].strip()[:200]}"
            todo = todo[todo.index(crashed) + 1 :]
    return results


def compare(results: dict[str, Any], reference: dict[str, Any]) -> dict[str, str]:
    """``"case/dtype" -> what differs`` for every finding (see the module docstring)."""
    import numpy as np

    findings: dict[str, str] = {}
    for key, ref in reference.items():
        got = results.get(key)
        if got is None:
            findings[key] = "case did not run"
        elif isinstance(got, str):
            if not isinstance(ref, str):
                findings[key] = f"error: {got}"
        elif isinstance(ref, str):
            continue  # this mlx computes what 0.32.4 rejects: not a finding
        elif got.shape != ref.shape:
            findings[key] = f"shape {tuple(got.shape)}, reference {tuple(ref.shape)}"
        else:
            got, ref = got.astype(np.float64), ref.astype(np.float64)  # bool arrays compare as 0/1
            rtol, atol = TOLERANCE[key.split("/")[1]]
            nan_new = np.isnan(got) & ~np.isnan(ref)
            if nan_new.any():
                findings[key] = f"NaN in {int(nan_new.sum())} of {got.size} values where 0.32.4 has numbers"
            elif not np.allclose(got, ref, rtol=rtol, atol=atol, equal_nan=True):
                worst = float(np.nanmax(np.abs(got - ref)))
                findings[key] = f"max abs difference {worst:.3g} (tolerance {atol:g} + {rtol:g}*|ref|)"
    return findings


def save_reference(results: dict[str, Any], path: Path = REFERENCE_PATH) -> None:
    """Write ``results`` (of mlx 0.32.4) as the compressed reference."""
    import numpy as np

    arrays = {k.replace("/", "__"): np.asarray(v) for k, v in results.items()}
    with path.open("wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]


def load_reference(path: Path = REFERENCE_PATH) -> dict[str, Any]:
    """The reference: ``"case/dtype" -> array`` or error text."""
    import numpy as np

    with np.load(path) as data:
        return {
            k.replace("__", "/"): (str(data[k]) if data[k].dtype.kind == "U" else data[k]) for k in data.files
        }


def load_findings(path: Path = FINDINGS_PATH) -> dict[str, dict[str, dict[str, str]]]:
    """The recorded sweep: ``mlx version -> "plain" | "activated" -> {"case/dtype": finding}``."""
    import json

    data: dict[str, dict[str, dict[str, str]]] = json.loads(path.read_text(encoding="utf-8"))
    return data
