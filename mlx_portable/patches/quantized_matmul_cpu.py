"""``quantized_matmul_cpu``: quantized layers on the CPU at BLAS speed.

Why: mlx's CPU ``quantized_matmul`` and ``gather_qmm`` are a scalar loop
over every weight for every row (for half-precision inputs it even sums in
the half dtype), and never call the BLAS: a 4-bit (group 64) llama-style
model of 1024 width prefills at 2.3 tok/s on the 2-core test machine, where
the same model in float32 with a real BLAS reaches 640.  Every
``nn.QuantizedLinear``, ``QuantizedEmbedding.as_linear`` and mlx-lm's
``QuantizedSwitchLinear`` (mixture-of-experts) goes through them.

What: on the CPU, ``mx.quantized_matmul`` and ``mx.gather_qmm``
dequantize the weights with mlx's own ``mx.dequantize`` (in the input's
dtype, as mlx's kernel does) and multiply with one GEMM
(``mx.matmul``, so the ``half_matmul_cpu`` route from 4 rows when a fast
float32 GEMM is measured; ``mx.gather_mm`` in float32, the only dtype mlx's
CPU ``gather_mm`` computes), rounding once to the input's dtype
(:mod:`mlx_portable.fallbacks.cpu_routes` has the figures and crossovers).
Dequantized half-precision weights are kept per weight array within a
bounded budget (default an eighth of physical memory,
:func:`mlx_portable.fallbacks.cpu_routes.set_cache_limit`): that is what
makes decoding fast (a 2816x1024 4-bit projection of one bfloat16 row:
54-68 ms in mlx's loop, 8-9 ms kept), at 16 bits a weight of memory (32 for
``gather_qmm`` experts); float32 inputs keep nothing.  Without a
kept copy, a product takes the dequantizing route from the measured crossover
of rows (always for half inputs, 4 rows for float32; for ``gather_qmm`` once
the gathered rows reach the number of experts), else mlx's kernel.

Every quantization mode the op takes (affine 2/3/4/5/6/8 bits, group sizes
32/64/128, mxfp4/mxfp8/nvfp4 where this mlx or the ``quantize_modes``
patch provides them), ``transpose=True`` and ``False``.  Results agree with
mlx's own kernel within its tolerance: summation order differs, and where
mlx's kernel sums half inputs in the half dtype this route sums in float32.
GPU streams, non-floating inputs, batched (3-D and more) ``quantized_matmul``
weights, scales of another dtype than the input, and anything malformed
go to mlx's own op unchanged (so its errors are mlx's).

Which: every mlx of the matrix; the CPU backend only (no change on Metal or
CUDA).  Composes with ``quantize_modes``, which applies first on mlx < 0.32.3.
Upstream: ``mlx/backend/cpu/quantized.cpp`` (``_qmm``, ``_qmm_t``).
"""

from __future__ import annotations

from ..registry.registry import Patch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext

__all__ = ["PATCHES", "quantized_matmul_cpu"]

#: Default (group size, bits) per mode, as mlx 0.32.4 has them.
_DEFAULTS = {"affine": (64, 4), "mxfp4": (32, 4), "mxfp8": (32, 8), "nvfp4": (16, 4)}


def _apply(ctx: PatchContext) -> None:
    from ..fallbacks import cpu_routes

    mx = ctx.mx
    qmm0 = mx.quantized_matmul
    gather0 = mx.gather_qmm
    floats = (mx.float32, mx.bfloat16, mx.float16)
    f32 = mx.float32
    routed = {"quantized_matmul": 0, "gather_qmm": 0, "kept": 0}
    ctx.state["routed"] = routed
    ctx.on_revert(lambda _ctx: cpu_routes.clear_cache())

    def _params(w: Any, scales: Any, biases: Any, group_size: Any, bits: Any, mode: Any) -> Any:
        """(group size, bits, in-dimension per row) when the call is one this route computes."""
        if not isinstance(mode, str) or mode not in _DEFAULTS:
            return None
        dgs, dbits = _DEFAULTS[mode]
        gs = dgs if group_size is None else group_size
        nbits = dbits if bits is None else bits
        if not (isinstance(gs, int) and isinstance(nbits, int)) or nbits <= 0 or gs <= 0:
            return None
        if not isinstance(w, mx.array) or w.dtype != mx.uint32 or not isinstance(scales, mx.array):
            return None
        inner = w.shape[-1] * 32
        if inner % nbits or scales.shape[:-1] != w.shape[:-1] or scales.shape[-1] * gs != inner // nbits:
            return None
        if (mode == "affine") != (biases is not None):
            return None
        if biases is not None and (not isinstance(biases, mx.array) or biases.shape != scales.shape):
            return None
        return gs, nbits, inner // nbits

    def _dequantized(
        w: Any,
        scales: Any,
        biases: Any,
        gs: int,
        nbits: int,
        mode: str,
        dtype: Any,
        gscale: Any,
        stream: Any,
        rows: int,
        route_from: int,
        keep: Any,
    ) -> Any:
        """The dequantized weights (in ``keep``, kept if they fit), or None for mlx's kernel."""
        half = keep is not None
        key = (id(w), id(scales), id(biases), id(gscale), gs, nbits, mode, dtype, keep)
        if half:
            found = cpu_routes.cache.get(key)
            if found is not None:
                routed["kept"] += 1
                return found
        if rows < route_from and not half:
            return None
        extra: dict[str, Any] = {}
        if mode != "affine":
            extra["mode"] = mode
        if gscale is not None:
            extra["global_scale"] = gscale
        full = mx.dequantize(w, scales, biases, gs, nbits, stream=stream, **extra)
        if full.dtype != dtype:
            full = full.astype(dtype, stream=stream)
        if keep is not None and full.dtype != keep:
            full = full.astype(keep, stream=stream)
        if half and cpu_routes.cache.admit(w, key, full):
            return full
        return full if rows >= route_from else None

    def _product(x: Any, full: Any, transpose: bool, stream: Any, gather: Any = None) -> Any:
        if transpose:
            full = mx.swapaxes(full, -1, -2, stream=stream)
        if gather is None:  # mx.matmul: the half_matmul_cpu route where it applies
            return mx.matmul(x, full, stream=stream)
        lhs, rhs, sorted_indices = gather
        extra = {"sorted_indices": True} if sorted_indices else {}
        # mlx's CPU gather_mm computes only float32 ("[GatherMM::eval] Currently only supports float32").
        out = mx.gather_mm(x.astype(f32, stream=stream), full, lhs, rhs, stream=stream, **extra)
        return out if out.dtype == x.dtype else out.astype(x.dtype, stream=stream)

    def _fits(x: Any, scales: Any, mode: str) -> bool:
        if not isinstance(x, mx.array) or x.dtype not in floats or x.ndim < 1:
            return False
        return mode != "affine" or scales.dtype == x.dtype

    def quantized_matmul(
        x: Any,
        w: Any,
        /,
        scales: Any,
        biases: Any = None,
        transpose: bool = True,
        group_size: Any = None,
        bits: Any = None,
        mode: str = "affine",
        *,
        stream: Any = None,
    ) -> Any:
        """mlx's ``quantized_matmul``; on the CPU dequantize-then-GEMM (mlx-portable)."""
        params = _params(w, scales, biases, group_size, bits, mode)
        if params is not None and w.ndim == 2 and _fits(x, scales, mode) and cpu_routes.on_cpu(stream):
            gs, nbits, inner = params
            in_dim = inner if transpose else w.shape[0]
            if isinstance(transpose, bool) and x.shape[-1] == in_dim:
                rows = cpu_routes.rows_of(x)
                route_from = cpu_routes.QUANT_CROSSOVER[x.dtype]
                keep = None if x.dtype == f32 else x.dtype
                full = _dequantized(
                    w, scales, biases, gs, nbits, mode, x.dtype, None, stream, rows, route_from, keep
                )
                if full is not None:
                    routed["quantized_matmul"] += 1
                    return _product(x, full, transpose, stream)
        return qmm0(x, w, scales, biases, transpose, **_given(group_size, bits, mode), stream=stream)

    def gather_qmm(
        x: Any,
        w: Any,
        /,
        scales: Any,
        biases: Any = None,
        lhs_indices: Any = None,
        rhs_indices: Any = None,
        transpose: bool = True,
        group_size: Any = None,
        bits: Any = None,
        mode: str = "affine",
        global_scale: Any = None,
        *,
        sorted_indices: bool = False,
        stream: Any = None,
    ) -> Any:
        """mlx's ``gather_qmm``; on the CPU dequantize-then-``gather_mm`` (mlx-portable)."""
        params = _params(w, scales, biases, group_size, bits, mode)
        if (
            params is not None
            and w.ndim == 3
            and _fits(x, scales, mode)
            and (global_scale is None or mode == "nvfp4")
            and isinstance(transpose, bool)
            and isinstance(sorted_indices, bool)
            and cpu_routes.on_cpu(stream)
        ):
            gs, nbits, inner = params
            in_dim = inner if transpose else w.shape[1]
            if x.ndim >= 2 and x.shape[-1] == in_dim:
                rows = cpu_routes.rows_of(x)
                if rhs_indices is not None and isinstance(rhs_indices, mx.array):
                    rows = max(rows, rhs_indices.size)
                full = _dequantized(
                    w, scales, biases, gs, nbits, mode, x.dtype, global_scale, stream, rows, w.shape[0], f32
                )
                if full is not None:
                    routed["gather_qmm"] += 1
                    return _product(x, full, transpose, stream, (lhs_indices, rhs_indices, sorted_indices))
        extra = _given(group_size, bits, mode)
        if global_scale is not None:
            extra["global_scale"] = global_scale
        if sorted_indices:
            extra["sorted_indices"] = sorted_indices
        return gather0(x, w, scales, biases, lhs_indices, rhs_indices, transpose, **extra, stream=stream)

    ctx.set_attr(mx, "quantized_matmul", quantized_matmul)
    ctx.set_attr(mx, "gather_qmm", gather_qmm)


def _given(group_size: Any, bits: Any, mode: Any) -> dict[str, Any]:
    """Only the keywords the caller gave: an mlx without ``mode=`` gets none it lacks."""
    given: dict[str, Any] = {}
    if group_size is not None:
        given["group_size"] = group_size
    if bits is not None:
        given["bits"] = bits
    if mode != "affine":
        given["mode"] = mode
    return given


quantized_matmul_cpu = Patch(
    name="quantized_matmul_cpu",
    summary=(
        "mx.quantized_matmul/gather_qmm on the CPU: dequantize (kept within a memory budget) "
        "then one BLAS GEMM instead of mlx's scalar loop"
    ),
    why=(
        "mlx's CPU quantized matmul is a scalar loop that never calls the BLAS: a 4-bit model "
        "prefills at 2.3 tok/s where the same model in float32 with a real BLAS reaches 640."
    ),
    apply=_apply,
    backends=("cpu",),
    upstream="https://github.com/ml-explore/mlx/blob/main/mlx/backend/cpu/quantized.cpp",
)

PATCHES = (quantized_matmul_cpu,)
