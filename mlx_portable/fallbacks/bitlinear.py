"""BitNet's ternary matmul (``mlx_lm.models.bitlinear_layers``) without Metal.

The Metal kernel ``bitlinear_matmul`` multiplies ``x`` by a ternary weight
matrix stored four values per byte: byte ``packed[r, k]`` holds, in bits
``2i..2i+1``, the code ``c`` of output row ``i * P + r`` (``P`` the packed
row count), and the weight is ``c - 1`` (codes 0, 1, 2 for -1, 0, +1).  It
sums in float32, multiplies by the weight scale (or divides by it when
``invert_weight_scales``) and rounds once to the input dtype.

Here the same codes feed ``mx.quantized_matmul`` as 2-bit affine
quantization with scale 1 and bias -1 (``c * 1 - 1`` is exactly the
ternary weight), so the CPU reads 2 bits per weight as the kernel does.  The
re-packed weight (same size as the original, plus one scale and bias per
group) is made once per weight array and kept on the layer.  That kernel
serves decoding; above ``DECODE_TOKENS`` rows the same 2-bit weight is
dequantized into float32 for the call and multiplied by BLAS, which amortizes
over the prompt.  The re-pack is not cached across model loads: the cache is
keyed by the identity of the weight array (a reload makes new ones), hashing
the content would cost about as much as the re-pack, and a cache on disk
would write a second copy of the model.  Where the
quantized matmul does not fit (input width not a multiple of 32, or a GPU
default device, where older mlx-cuda lacks it), the codes are unpacked and
multiplied densely in float32.

The kernel is only defined for ``out_features`` divisible by 4 (it strides
by ``out_features // 4``); for other widths this follows the packing of the
Hugging Face BitNet checkpoints (stride ``P``, extra rows dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlx.core as mx

__all__ = ["bitlinear_matmul", "unpack_ternary"]

_CACHE_ATTR = "_mlx_portable_ternary"

#: Up to this many tokens (rows of ``x``) the 2-bit ``quantized_matmul`` runs;
#: above it, dequantize-then-BLAS.  mlx's CPU ``quantized_matmul`` is a
#: matrix-vector kernel: fastest for one token (reads 2 bits per weight), but
#: its time grows with every row, while BLAS amortizes the dequantization.
#: Measured with ``benchmarks/bitlinear.py`` (BitNet 2560 -> 6912, mlx 0.32.4,
#: 2 shared CPU cores): see ``docs/models.md``.
DECODE_TOKENS = 16
_GROUP_SIZES = (128, 64, 32)


def unpack_ternary(packed: mx.array, out_features: int) -> mx.array:
    """The 2-bit codes of ``packed`` (P, in) as a (out_features, in) uint8 array."""
    _check_packed(packed, out_features)
    rows = packed.shape[0]
    shifts = mx.array([0, 2, 4, 6], dtype=mx.uint8).reshape(4, 1, 1)
    codes = (mx.expand_dims(packed, 0) >> shifts) & mx.array(3, dtype=mx.uint8)
    return codes.reshape(4 * rows, packed.shape[1])[:out_features]


def _check_packed(packed: mx.array, out_features: int) -> None:
    rows = packed.shape[0]
    if packed.dtype != mx.uint8:
        raise TypeError(f"BitLinear weights must be packed uint8, got {packed.dtype}")
    if not 0 < out_features <= 4 * rows:
        raise ValueError(
            f"out_features={out_features} does not fit packed weights with {rows} rows "
            f"(at most {4 * rows} outputs)"
        )


def _repack(packed: mx.array, out_features: int) -> mx.array:
    """BitNet's packing as mlx's 2-bit layout: uint32 words of 16 codes along the input axis.

    mlx puts input column ``j`` of a word at bits ``2j``.  Four columns'
    codes OR-ed into one byte (column ``m`` at bits ``2m``) and four such bytes
    read as a little-endian uint32 give exactly that, so the whole re-pack
    works on bytes: four shift-and-mask passes over the packed matrix, no
    (out_features x in_features) uint32 intermediate (about 5x faster).
    """
    rows, in_features = packed.shape
    three = mx.array(3, dtype=mx.uint8)
    planes = []
    for i in range(4):  # output rows i * P + r live in bits 2i..2i+1
        codes = ((packed >> (2 * i)) & three).reshape(rows, in_features // 4, 4)
        planes.append(codes[..., 0] | (codes[..., 1] << 2) | (codes[..., 2] << 4) | (codes[..., 3] << 6))
    weight = mx.concatenate(planes, axis=0)[:out_features]  # (out, in / 4) bytes
    return weight.view(mx.uint32)


@dataclass(frozen=True)
class _Quantized:
    source: Any  # the packed weight array this was made from (identity check)
    out_features: int
    weight: mx.array
    scales: mx.array
    biases: mx.array
    group_size: int


def _quantized(owner: Any, packed: mx.array, out_features: int, group_size: int) -> _Quantized:
    cached = getattr(owner, _CACHE_ATTR, None) if owner is not None else None
    if isinstance(cached, _Quantized) and cached.source is packed and cached.out_features == out_features:
        return cached
    _check_packed(packed, out_features)
    in_features = packed.shape[1]
    groups = (out_features, in_features // group_size)
    made = _Quantized(
        source=packed,
        out_features=out_features,
        weight=_repack(packed, out_features),
        scales=mx.ones(groups, dtype=mx.float32),
        biases=mx.full(groups, -1.0, dtype=mx.float32),
        group_size=group_size,
    )
    mx.eval(made.weight, made.scales, made.biases)
    if owner is not None:
        # Not a parameter: set on the instance dict, out of nn.Module's
        # parameter tree, so saving or updating the model never sees it.
        object.__setattr__(owner, _CACHE_ATTR, made)
    return made


def _group_size(in_features: int) -> int | None:
    return next((g for g in _GROUP_SIZES if in_features % g == 0), None)


def bitlinear_matmul(
    x: mx.array,
    packed_weights: mx.array,
    weight_scale: mx.array,
    *,
    out_features: int,
    invert_weight_scales: bool,
    cache_owner: Any = None,
) -> mx.array:
    """``x @ W.T`` scaled, for ternary ``W`` packed as BitNet stores it.

    ``x`` is (..., in_features) in the dtype of ``weight_scale``; the result
    is (..., out_features) in that dtype.  ``cache_owner`` (the layer) keeps
    the re-packed weight between calls.
    """
    in_features = packed_weights.shape[-1]
    if x.shape[-1] != in_features:
        raise ValueError(f"BitLinear input has {x.shape[-1]} features, the weights expect {in_features}")
    dtype = weight_scale.dtype
    if x.dtype != dtype:
        raise TypeError(
            f"BitLinear input is {x.dtype} but weight_scale is {dtype}; cast the input "
            f"(the Metal kernel asserts the same)"
        )
    xf = x.astype(mx.float32)
    group_size = _group_size(in_features)
    if group_size is not None and mx.default_device() == mx.cpu:
        q = _quantized(cache_owner, packed_weights, out_features, group_size)
        if x.size // in_features <= DECODE_TOKENS:
            y = mx.quantized_matmul(
                xf, q.weight, q.scales, q.biases, transpose=True, group_size=q.group_size, bits=2
            )
        else:
            # Prefill: one fused dequantize into float32 (exactly -1, 0, +1),
            # then BLAS.  The dense matrix lives for this call only.
            dense = mx.dequantize(q.weight, q.scales, q.biases, group_size=q.group_size, bits=2)
            y = xf @ dense.T
    else:
        weights = unpack_ternary(packed_weights, out_features).astype(mx.float32) - 1.0
        y = xf @ weights.T
    scale = weight_scale.astype(mx.float32).reshape(-1)[0]
    y = y / scale if invert_weight_scales else y * scale
    return y.astype(dtype)
