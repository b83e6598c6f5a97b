"""``half_matmul_cpu``: bfloat16/float16 matrix products on the CPU at BLAS speed.

Why: mlx's CPU backend multiplies half-precision matrices with its own loop
(``simd_gemm<T, float>``: it converts, sums in float32 and rounds once) and
never calls the BLAS; only float32 products do (``cblas_sgemm``).  With a
real BLAS under mlx (the ``cpu_blas`` patch, or MKL/OpenBLAS of the user's)
a bfloat16 model therefore runs 10-20x slower than the same model in
float32: the benchmark model (llama-style, 1024 wide) prefills at 41 tok/s
in bfloat16 where float32 reaches 640.

What: on the CPU, ``mx.matmul``, the ``@`` operator of ``mx.array`` (so
``nn.Linear`` without bias, attention's products, tied embeddings) and
``mx.addmm`` (``nn.Linear`` with bias) with both operands bfloat16 (or both
float16) upcast to float32, run the float32 product and round once to the
half dtype: mlx's own rounding semantics, a different summation order.
Taken only when a fast float32 GEMM is measured in the process and the left
operand has at least the measured crossover of rows
(:mod:`mlx_portable.fallbacks.cpu_routes`, whose docstring has the figures:
2 rows for bfloat16, 1 for float16); decoding a single row in bfloat16 keeps
mlx's loop, which is as fast there.  GPU streams, float32, mixed dtypes,
vectors and every other backend call mlx's own op unchanged.

``mx.fast.scaled_dot_product_attention`` in half precision runs mlx's CPU
fallback (matrix products and softmax in the half dtype); on the CPU it
takes float32 operands and rounds its output once, whatever the length
(1 query against 128 keys, 16 heads of 64: 1.93 ms in bfloat16, 0.08 ms
through float32; 128 against 128: 107 ms and 17 ms; 512: 1622 and 400 ms;
OpenBLAS, one thread, loaded machine).  mlx-lm's attention goes through it.

Composes with ``addmm_half_cpu`` (mlx < 0.29.4): that patch applies first;
this one wraps whatever ``mx.addmm`` is then and hands it float32 operands,
which every mlx computes.

Which: every mlx of the matrix; the CPU backend only (no change on Metal or
CUDA).  Upstream: mlx's CPU half GEMM, ``mlx/backend/cpu/gemms/simd_bf16.cpp``.
"""

from __future__ import annotations

from ..registry.registry import Patch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext

__all__ = ["PATCHES", "half_matmul_cpu"]


def _apply(ctx: PatchContext) -> None:
    from ..fallbacks import cpu_routes

    mx = ctx.mx
    matmul0 = mx.matmul
    addmm0 = mx.addmm
    array_matmul0 = mx.array.__matmul__
    f32 = mx.float32
    half = (mx.bfloat16, mx.float16)
    routed = {"matmul": 0, "addmm": 0, "attention": 0}
    ctx.state["routed"] = routed

    def _wants(a: Any, b: Any, stream: Any) -> bool:
        if not (isinstance(a, mx.array) and isinstance(b, mx.array)):
            return False
        dtype = a.dtype
        if dtype not in half or b.dtype != dtype or a.ndim < 2 or b.ndim < 2:
            return False
        if cpu_routes.rows_of(a) < cpu_routes.HALF_CROSSOVER[dtype] or not cpu_routes.on_cpu(stream):
            return False
        return cpu_routes.fast_float32_gemm()

    def matmul(a: Any, b: Any, /, *, stream: Any = None) -> Any:
        """mlx's ``matmul``; half precision on the CPU through the float32 GEMM (mlx-portable)."""
        if not _wants(a, b, stream):
            return matmul0(a, b, stream=stream)
        routed["matmul"] += 1
        dtype = a.dtype
        out = matmul0(a.astype(f32, stream=stream), b.astype(f32, stream=stream), stream=stream)
        return out.astype(dtype, stream=stream)

    def array_matmul(self: Any, other: Any) -> Any:
        if not _wants(self, other, None):
            return array_matmul0(self, other)
        routed["matmul"] += 1
        return matmul0(self.astype(f32), other.astype(f32)).astype(self.dtype)

    def addmm(c: Any, a: Any, b: Any, /, alpha: float = 1.0, beta: float = 1.0, *, stream: Any = None) -> Any:
        """mlx's ``addmm``; half precision on the CPU through the float32 GEMM (mlx-portable)."""
        if not (_wants(a, b, stream) and isinstance(c, mx.array) and c.dtype == a.dtype):
            return addmm0(c, a, b, alpha=alpha, beta=beta, stream=stream)
        routed["addmm"] += 1
        dtype = a.dtype
        out = addmm0(
            c.astype(f32, stream=stream),
            a.astype(f32, stream=stream),
            b.astype(f32, stream=stream),
            alpha=alpha,
            beta=beta,
            stream=stream,
        )
        return out.astype(dtype, stream=stream)

    sdpa0 = mx.fast.scaled_dot_product_attention

    def _up(value: Any, stream: Any) -> Any:
        if isinstance(value, mx.array) and value.dtype in half:
            return value.astype(f32, stream=stream)
        return value

    def scaled_dot_product_attention(q: Any, k: Any, v: Any, *args: Any, **kwargs: Any) -> Any:
        """mlx's fast attention; in half precision on the CPU through float32 (mlx-portable)."""
        stream = kwargs.get("stream")
        if not (
            isinstance(q, mx.array)
            and q.dtype in half
            and isinstance(k, mx.array)
            and isinstance(v, mx.array)
            and k.dtype == q.dtype
            and v.dtype == q.dtype
            and not args
            and cpu_routes.on_cpu(stream)
            and cpu_routes.fast_float32_gemm()
        ):
            return sdpa0(q, k, v, *args, **kwargs)
        routed["attention"] += 1
        for name in ("mask", "sinks"):
            if name in kwargs:
                kwargs[name] = _up(kwargs[name], stream)
        out = sdpa0(_up(q, stream), _up(k, stream), _up(v, stream), **kwargs)
        return out.astype(q.dtype, stream=stream)

    ctx.set_attr(mx, "matmul", matmul)
    ctx.set_attr(mx, "addmm", addmm)
    ctx.set_attr(mx.array, "__matmul__", array_matmul)
    ctx.set_attr(mx.fast, "scaled_dot_product_attention", scaled_dot_product_attention)


half_matmul_cpu = Patch(
    name="half_matmul_cpu",
    summary=(
        "bfloat16/float16 matmul, @, addmm and fast attention on the CPU through the float32 "
        "BLAS GEMM when measured faster"
    ),
    why=(
        "mlx's CPU backend multiplies half-precision matrices with its own loop, never the BLAS: "
        "with a real BLAS a bfloat16 model prefills 10-20x slower than the same model in float32."
    ),
    apply=_apply,
    backends=("cpu",),
    upstream="https://github.com/ml-explore/mlx/blob/main/mlx/backend/cpu/gemms/simd_bf16.cpp",
)

PATCHES = (half_matmul_cpu,)
