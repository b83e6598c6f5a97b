"""``addmm_half_cpu``: ``mx.addmm`` in float16 / bfloat16 on the CPU, mlx < 0.29.4.

Why: the behaviour diff (``python -m tools.apidiff behaviour``, see
``docs/api-diff.md``) found that mlx 0.26.5, 0.27.1 and 0.28.0 evaluate
``mx.addmm`` on the CPU only in float32.  ``nn.Linear`` with a bias calls
``mx.addmm(bias, x, weight.T)``, so every half-precision checkpoint with
biased projections (Qwen2's q/k/v, GPT-2, Phi, the recurrent layers) fails
at its first forward pass on a CPU::

    RuntimeError: [AddMM::eval_cpu] Currently only supports float32.

(or, when the error surfaces on mlx's evaluation thread, the process aborts
with ``terminate called after throwing an instance of 'std::runtime_error'``).
mlx 0.29.4, the next matrix version, computes it in every float dtype.

What: ``mx.addmm(c, a, b, alpha, beta)`` keeps mlx's own function for
float32 and for GPU streams; for other dtypes on the CPU it computes
``alpha * (a @ b) + beta * c`` with ``mx.matmul``, which these versions run
in half precision on the CPU, in the promoted dtype.  Results agree with mlx
0.32.4's fused kernel within half-precision rounding (the sweep's
tolerance).

When: mlx < 0.29.4 (the matrix shows 0.28.0 failing and 0.29.4 passing; a
0.29.0-0.29.3 install gets the same, correct, unfused path), every backend
(only CPU work is routed); applied by ``activate()``.
"""

from __future__ import annotations

from ..registry.registry import Patch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext

__all__ = ["PATCHES", "addmm_half_cpu"]


def _on_cpu(mx: Any, stream: Any) -> bool:
    if stream is None:
        device = mx.default_device()
    elif isinstance(stream, mx.Stream):
        device = stream.device
    else:
        device = stream
    return bool(getattr(device, "type", None) == mx.cpu)


def _apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    original = mx.addmm

    def addmm(c: Any, a: Any, b: Any, /, alpha: float = 1.0, beta: float = 1.0, *, stream: Any = None) -> Any:
        """mlx's ``addmm``; in half precision on the CPU, ``alpha * (a @ b) + beta * c`` (mlx-portable)."""
        arrays = [x for x in (c, a, b) if isinstance(x, mx.array)]
        dtype = arrays[0].dtype if arrays else mx.float32
        for x in arrays[1:]:
            dtype = (mx.zeros((0,), dtype=dtype) + mx.zeros((0,), dtype=x.dtype)).dtype
        if dtype == mx.float32 or not _on_cpu(mx, stream):
            return original(c, a, b, alpha=alpha, beta=beta, stream=stream)
        out = mx.matmul(a, b, stream=stream)
        if alpha != 1.0:
            out = mx.multiply(out, alpha, stream=stream)
        term = c if beta == 1.0 else mx.multiply(c, beta, stream=stream)
        return mx.add(out, term, stream=stream).astype(dtype, stream=stream)

    ctx.set_attr(mx, "addmm", addmm)


addmm_half_cpu = Patch(
    name="addmm_half_cpu",
    summary="mx.addmm in float16/bfloat16 on the CPU through matmul + add (nn.Linear with bias)",
    why=(
        "nn.Linear with a bias calls mx.addmm; on mlx < 0.29 the CPU evaluates it only in float32: "
        "RuntimeError: [AddMM::eval_cpu] Currently only supports float32 (or an abort) for every "
        "half-precision model with biased projections (Qwen2, GPT-2, Phi)."
    ),
    apply=_apply,
    mlx_versions="<0.29.4",
    upstream="https://github.com/ml-explore/mlx/releases/tag/v0.29.0",
)

PATCHES = (addmm_half_cpu,)
