"""``decode_linear_cpu``: float32 decoding steps of ``nn.Linear`` on the CPU at memory speed.

Why: decoding multiplies one row by every weight of the model, a product
bound by memory bandwidth.  mlx's CPU backend computes it with
``cblas_sgemm`` (it has no gemv path: ``mlx/backend/cpu/gemms/cblas.cpp``),
and OpenBLAS, the library the ``cpu_blas`` patch binds, packs the whole
weight before it multiplies a single row: the benchmark model (llama-style,
1024 wide, 32k vocabulary) decodes at 25 tok/s in float32 where its weights
could be read 3-4 times over in the same time (NumPy's ``sgemv`` does the
32000 x 1024 head in 4.5 ms, mlx in 15.9 ms).

What: ``nn.Linear`` (and ``nn.Embedding.as_linear``, the tied output head)
with a float32 input of one row and a float32 weight, on the CPU, computes
``x @ W.T`` with the weight cut into blocks of rows small enough for
OpenBLAS's unpacked kernel (:mod:`mlx_portable.fallbacks.row_products`,
whose docstring has the figures): 2-5x faster per layer, the benchmark
model decodes at 47 tok/s.  Taken only where it is measured faster in the
process (MKL does not pack a single row; the reference BLAS is as slow
either way); prompts (more than one row), half precision (the
``half_matmul_cpu`` patch), quantized layers, other devices and every other
backend are unchanged.  Results differ from mlx's call by float32 rounding
only (another summation order of the same dot products).

Which: every mlx of the matrix; the CPU backend only.  Upstream: mlx's CPU
matmul, ``mlx/backend/cpu/matmul.cpp``; OpenBLAS's gemv forwarding is built
only for arm64, POWER and RISC-V (``GEMM_GEMV_FORWARD`` in its
``Makefile.system``).
"""

from __future__ import annotations

from ..registry.registry import Patch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext

__all__ = ["PATCHES", "decode_linear_cpu"]


def _apply(ctx: PatchContext) -> None:
    from ..fallbacks import cpu_routes, row_products

    mx = ctx.mx
    nn: Any = ctx.module  # mlx.nn: the module this patch waited for
    f32 = mx.float32
    routed = {"linear": 0, "embedding": 0}
    ctx.state["routed"] = routed

    def _blocks(x: Any, w: Any) -> int:
        """Rows per block when ``x @ w.T`` takes the blocked route, else 0."""
        if not (isinstance(x, mx.array) and isinstance(w, mx.array)):
            return 0
        if x.dtype != f32 or w.dtype != f32 or w.ndim != 2 or x.ndim < 1:
            return 0
        k = w.shape[1]
        if x.shape[-1] != k or x.size != k:
            return 0
        n = row_products.block_rows(w.shape[0], k)
        if not n or not cpu_routes.on_cpu(None) or not row_products.blocked_rows_faster():
            return 0
        return n

    def blocked(kind: str) -> Any:
        """The wrapper factory of ``nn.Linear.__call__`` (``"linear"``) or ``nn.Embedding.as_linear``."""
        bias = kind == "linear"  # as_linear multiplies by the weight only, as mlx's does

        def factory(call0: Any) -> Any:
            def call(self: Any, x: Any) -> Any:
                w = self["weight"]
                n = _blocks(x, w)
                if not n:
                    return call0(self, x)
                routed[kind] += 1
                y = row_products.blocked_row_product(x, w, n)
                return y + self["bias"] if bias and "bias" in self else y

            return call

        return factory

    doc = "\n\nmlx-portable: one float32 row on the CPU multiplies the weight in blocks (decoding speed)."
    ctx.wrap(nn.Linear, "__call__", blocked("linear"), doc=doc)
    ctx.wrap(nn.Embedding, "as_linear", blocked("embedding"), doc=doc)


decode_linear_cpu = Patch(
    name="decode_linear_cpu",
    summary=(
        "float32 nn.Linear / tied-embedding heads on one row (decoding) on the CPU: the weight in "
        "blocks the BLAS multiplies without packing, when measured faster"
    ),
    why=(
        "mlx's CPU backend multiplies one row by a weight with cblas_sgemm, and OpenBLAS packs the "
        "whole weight first: float32 decoding runs at a third of the machine's memory speed."
    ),
    apply=_apply,
    backends=("cpu",),
    when="activate:mlx.nn",
    upstream="https://github.com/ml-explore/mlx/blob/main/mlx/backend/cpu/matmul.cpp",
)

PATCHES = (decode_linear_cpu,)
