"""The ``mxfp4``, ``mxfp8`` and ``nvfp4`` quantization modes in plain mlx ops.

mlx 0.29 added these modes; older mlx has only the affine one.  The
functions below follow mlx 0.32.4's own op-level definitions
(``fp_quantize`` / ``fp_dequantize`` in ``mlx/ops.cpp``, which are also what
the CPU computes), operation for operation and in the same dtypes, so the
packed weights, the scales and the dequantized values are bit-identical to
mlx 0.32.4's (checked in ``tests/test_shim_quantize_modes.py`` against
reference outputs of the 0.32.4 wheel):

* ``mxfp4`` -- groups of 32, E2M1 values (nearest entry of a 16-value table,
  first index on ties), one E8M0 scale per group: ``ceil(log2(amax / 6))``
  taken from the float32 bits (so never rounded down by a float ``log2``),
  biased by 127, ``127`` for an all-zero group;
* ``mxfp8`` -- groups of 32, E4M3 values, E8M0 scale from ``amax / 448``;
* ``nvfp4`` -- groups of 16, E2M1 values, an E4M3 scale ``amax / 6``
  (times ``448 * 6 / global_scale`` when a float32 ``global_scale`` is given).

The matrix products (``quantized_matmul``, ``gather_qmm``) dequantize and
multiply with mlx's ordinary matmul.  They are *not* bit-identical to mlx
0.32.4's fused kernels: those accumulate in an order fixed by the CPU's SIMD
width (and by the GPU kernel's tiling), which no composition of mlx ops can
reproduce; the results agree to the dtype's rounding (the tests bound the
difference).  The E4M3 conversions come from :mod:`.fp8` (bit-exact).
"""

from __future__ import annotations

import mlx.core as mx

from .fp8 import from_fp8, to_fp8

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


__all__ = ["FP_MODES", "fp_dequantize", "fp_gather_qmm", "fp_quantize", "fp_quantized_matmul"]

#: mode -> (group size, bits), the only ones mlx accepts for these modes.
FP_MODES: dict[str, tuple[int, int]] = {"mxfp4": (32, 4), "mxfp8": (32, 8), "nvfp4": (16, 4)}

_FP4_LUT = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0)


def check_params(tag: str, mode: str, group_size: int, bits: int) -> None:
    """mlx's own errors for a group size or bit width the mode does not allow."""
    expected_gs, expected_bits = FP_MODES[mode]
    if group_size != expected_gs:
        raise ValueError(
            f"[{tag}] {mode} quantization requires group size {expected_gs} but got {group_size}."
        )
    if bits != expected_bits:
        raise ValueError(f"[{tag}] {mode} quantization requires bits to be {expected_bits} but got {bits}.")


def _ceil_log2(scales: mx.array) -> mx.array:
    """``ceil(log2(s))`` from the float32 bits (exact, unlike a float ``log2``), 0 for ``s == 0``."""
    bits = mx.view(scales.astype(mx.float32), mx.uint32)
    exponent = mx.bitwise_and(
        mx.right_shift(bits, mx.array(23, dtype=mx.uint32)), mx.array(0xFF, dtype=mx.uint32)
    )
    inexact = mx.bitwise_and(bits, mx.array(0x7FFFFF, dtype=mx.uint32)) != mx.array(0, dtype=mx.uint32)
    out = exponent.astype(mx.int32) - 127 + inexact.astype(mx.int32)
    out = mx.clip(out, -127, 127)
    return mx.where(scales == mx.array(0, dtype=scales.dtype), mx.array(0, dtype=mx.int32), out)


def fp_quantize(
    w: mx.array, mode: str, group_size: int, bits: int, global_scale: Any = None
) -> list[mx.array]:
    """``mx.quantize(w, group_size, bits, mode=mode)`` for an fp mode: ``[w_q, scales]``."""
    check_params("quantize", mode, group_size, bits)
    if not mx.issubdtype(w.dtype, mx.floating):
        raise ValueError(f"[quantize] Only real floating types can be quantized but w has type {w.dtype}.")
    if w.ndim < 2:
        raise ValueError(
            f"[quantize] The matrix to be quantized must have at least 2 dimension but it has only {w.ndim}."
        )
    if w.shape[-1] % group_size:
        raise ValueError(
            "[quantize] The last dimension of the matrix needs to be divisible by the quantization group "
            f"size {group_size}. However the provided  matrix has shape {tuple(w.shape)}"
        )
    maxval = 6.0 if bits == 4 else 448.0
    new_shape = (*w.shape[:-1], -1)
    wq = w.reshape(-1, group_size)
    scales = mx.max(mx.abs(wq), axis=-1, keepdims=True) / mx.array(maxval, dtype=w.dtype)
    if group_size == 16:
        if global_scale is not None:
            scale_encode = mx.array(448.0 * 6.0, dtype=mx.float32) / global_scale
        else:
            scale_encode = mx.array(1.0, dtype=mx.float32)
        scales = to_fp8(scales * scale_encode)
        wq = (wq / from_fp8(scales, w.dtype)) * scale_encode
    else:
        exponent = _ceil_log2(scales)
        wq = wq.astype(mx.float32) / mx.power(mx.array(2.0, dtype=mx.float32), exponent.astype(mx.float32))
        scales = (exponent + mx.array(127, dtype=mx.int32)).astype(mx.uint8)
    if bits == 4:
        lut = mx.array(_FP4_LUT).astype(w.dtype)
        wq = mx.argmin(mx.abs(mx.expand_dims(wq, -1) - lut), axis=-1)
        shifts = mx.power(mx.array(2, dtype=mx.uint32), mx.arange(0, 32, 4, dtype=mx.uint32))
        wq = mx.sum(wq.reshape(-1, 4, 8) * shifts, axis=-1)
    else:
        wq = mx.view(to_fp8(wq), mx.uint32)
    return [wq.reshape(new_shape), scales.reshape(new_shape)]


def fp_dequantize(
    w: mx.array,
    scales: mx.array,
    mode: str,
    group_size: int,
    bits: int,
    dtype: Any = None,
    global_scale: Any = None,
) -> mx.array:
    """``mx.dequantize(w, scales, mode=mode, ...)`` for an fp mode (default dtype bfloat16, as mlx)."""
    check_params("dequantize", mode, group_size, bits)
    out_type = mx.bfloat16 if dtype is None else dtype
    if not mx.issubdtype(out_type, mx.floating):
        raise ValueError(
            f"[dequantize] Only real floating types are supported but output dtype == {out_type}."
        )
    if scales.dtype != mx.uint8:
        raise ValueError(f"[dequantize] Scale type must be uint8 but received type {scales.dtype}.")
    if w.dtype != mx.uint32:
        raise ValueError("[dequantize] The matrix should be given as a uint32")
    if w.ndim != scales.ndim or tuple(w.shape[:-1]) != tuple(scales.shape[:-1]):
        raise ValueError("[dequantize] Shape of scales does not match the matrix")
    if w.shape[-1] * 32 // bits != scales.shape[-1] * group_size:
        raise ValueError(
            "[dequantize] Shape of scales does not match the matrix given the quantization parameters. "
            f"Provided matrix of shape {tuple(w.shape)} and scales of shape {tuple(scales.shape)}."
        )
    wshape = (*w.shape[:-1], -1)
    if bits == 4:
        lut = mx.array(_FP4_LUT).astype(out_type)
        packed = mx.view(w.reshape(-1, 4), mx.uint8)
        low = mx.take(lut, mx.bitwise_and(packed, mx.array(0x0F, dtype=mx.uint8)).astype(mx.uint32))
        high = mx.take(lut, mx.right_shift(packed, mx.array(4, dtype=mx.uint8)).astype(mx.uint32))
        out = mx.stack([low, high], axis=-1)
    else:
        out = from_fp8(mx.view(w, mx.uint8), out_type)
    out = out.reshape(-1, group_size)
    scales = scales.reshape(-1, 1)
    if group_size == 16:
        if global_scale is not None:
            inv_scale_enc = global_scale / mx.array(448.0 * 6.0, dtype=out_type)
        else:
            inv_scale_enc = mx.array(1.0, dtype=out_type)
        scales = from_fp8(scales, out_type) * inv_scale_enc
    else:
        scales = scales.astype(out_type) - mx.array(127, dtype=out_type)
        scales = mx.power(mx.array(2.0, dtype=out_type), scales)
    return (out * scales).reshape(wshape)


def fp_quantized_matmul(
    x: mx.array, w: mx.array, scales: mx.array, transpose: bool, mode: str, group_size: int, bits: int
) -> mx.array:
    """``x @ dequantize(w).T`` (``transpose``) or ``x @ dequantize(w)``, rounded to ``x``'s dtype.

    Accumulated in float32, as mlx 0.32.4's kernels accumulate.
    """
    check_params("quantized_matmul", mode, group_size, bits)
    weight = fp_dequantize(w, scales, mode, group_size, bits, dtype=mx.float32)
    out = x.astype(mx.float32) @ (mx.swapaxes(weight, -1, -2) if transpose else weight)
    return out.astype(x.dtype)


def fp_gather_qmm(
    x: mx.array,
    w: mx.array,
    scales: mx.array,
    lhs_indices: Any,
    rhs_indices: Any,
    transpose: bool,
    mode: str,
    group_size: int,
    bits: int,
    sorted_indices: bool,
    global_scale: Any = None,
) -> mx.array:
    """``gather_mm`` of ``x`` with the dequantized ``w``.

    mlx < 0.29's CPU ``gather_mm`` takes float32 only, so the product is
    formed in float32 and rounded once to ``x``'s dtype.
    """
    check_params("gather_qmm", mode, group_size, bits)
    weight = fp_dequantize(w, scales, mode, group_size, bits, dtype=mx.float32, global_scale=global_scale)
    if transpose:
        weight = mx.swapaxes(weight, -1, -2)
    out = mx.gather_mm(x.astype(mx.float32), weight, lhs_indices, rhs_indices, sorted_indices=sorted_indices)
    return out.astype(x.dtype)
