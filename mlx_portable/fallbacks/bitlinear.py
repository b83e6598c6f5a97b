"""BitNet's ternary matmul (``mlx_lm.models.bitlinear_layers``) without Metal.

The Metal kernel ``bitlinear_matmul`` multiplies ``x`` by a ternary weight
matrix stored four values per byte: byte ``packed[r, k]`` holds, in bits
``2i..2i+1``, the code ``c`` of output row ``i * P + r`` (``P`` the packed
row count), and the weight is ``c - 1`` (codes 0, 1, 2 for -1, 0, +1).  It
sums in float32, multiplies by the weight scale (or by ``1 / scale`` when
``invert_weight_scales``) and rounds once to the input dtype.

On the CPU two kernels serve it, chosen by the number of tokens (rows of
``x``), with crossovers measured by ``benchmarks/bitlinear.py`` and recorded
in :data:`QMM_UP_TO`:

* **decode** (few tokens): the codes feed ``mx.quantized_matmul`` as 2-bit
  affine quantization with scale 1 and bias -1 (``c * 1 - 1`` is exactly the
  ternary weight), so the CPU reads 2 bits per weight as the kernel does.
  mlx's CPU ``quantized_matmul`` is a matrix-vector kernel: its time grows
  with every row.  The re-packed weight (the same 2 bits per weight) is made
  once and kept on the layer; see "Re-pack cache" below.
* **prefill**: the codes are unpacked straight from BitNet's packing into a
  dense matrix of exactly -1, 0, +1 for this call only, then one matmul.
  For bfloat16 input that matmul is mlx's bfloat16 GEMM (about 1.5x the
  speed of the reference BLAS that the Linux ``mlx-cpu`` wheel links for
  float32), which accumulates in float32; ``mx.addmm(..., alpha=scale)``
  applies the scale before its single rounding, so the result is the
  kernel's arithmetic (mlx >= 0.29.4; older mlx computes half-precision
  ``addmm`` only in float32, and there the product is rounded to bfloat16
  before scaling: at most one bfloat16 ulp off, in about a quarter of the
  outputs).  Other dtypes compute in float32 with BLAS.

Re-pack cache: besides the layer's own attribute (keyed by the identity of
its weight array, so ``load_weights`` is followed), re-packed weights are
found by content (SHA-1 of the packed bytes, about 1/9 of the re-pack's
time) among those still alive in the process, so a model loaded twice, or
reloaded while its previous copy lives, shares one re-packed copy instead
of making another.  Held weakly: nothing outlives the layers that use it.
Not cached on disk: the re-pack costs about 21 ms per 2560 x 6912 layer on
two CPU cores (about 2.5 s for all of BitNet b1.58 2B, once, at its first
decode step, which takes about as long as 1.5 decode steps of that model), a
disk cache would write a second copy of every ternary weight (0.5 GB), and
finding an entry in it would still hash every weight.

Where the quantized matmul does not fit (input width not a multiple of 32,
or a GPU default device, where older mlx-cuda lacks it), the codes are
unpacked and multiplied densely in float32.

The kernel is only defined for ``out_features`` divisible by 4 (it strides
by ``out_features // 4``); for other widths this follows the packing of the
Hugging Face BitNet checkpoints (stride ``P``, extra rows dropped).
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from functools import cache
from typing import Any

import mlx.core as mx

from .._mlx import mlx_version

__all__ = ["QMM_UP_TO", "bitlinear_matmul", "unpack_ternary"]

_CACHE_ATTR = "_mlx_portable_ternary"

#: Up to this many tokens (rows of ``x``) the 2-bit ``quantized_matmul``
#: runs; above it, unpack-then-GEMM.  Keyed by the input dtype; float16 and
#: float32 take the float32 (BLAS) route.  Measured with
#: ``benchmarks/bitlinear.py`` (BitNet 2560 -> 6912, mlx 0.32.4, 2 idle CPU
#: cores): the 2-bit kernel costs about 13 ms per token; the bfloat16 route
#: 60 ms at 4 tokens and 72 at 6 (the kernel: 52 and 80); the float32 route
#: 115 ms at 8 tokens and 155 at 12 (the kernel: 102 and 155).  See
#: ``docs/models.md``.
QMM_UP_TO: dict[str, int] = {"bfloat16": 5, "float32": 12}
_GROUP_SIZES = (128, 64, 32)
_SHIFTS = (0, 2, 4, 6)


def unpack_ternary(packed: mx.array, out_features: int) -> mx.array:
    """The 2-bit codes of ``packed`` (P, in) as a (out_features, in) uint8 array."""
    _check_packed(packed, out_features)
    rows = packed.shape[0]
    shifts = mx.array(_SHIFTS, dtype=mx.uint8).reshape(4, 1, 1)
    codes = (mx.expand_dims(packed, 0) >> shifts) & mx.array(3, dtype=mx.uint8)
    return codes.reshape(4 * rows, packed.shape[1])[:out_features]


def _ternary(packed: mx.array, out_features: int, dtype: mx.Dtype) -> mx.array:
    """The (out_features, in) weights -1, 0, +1 in ``dtype`` (exact in every float dtype)."""
    return unpack_ternary(packed, out_features).astype(dtype) - mx.array(1, dtype=dtype)


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


@dataclass(frozen=True, eq=False)
class _Affine:
    scales: mx.array  # all 1
    biases: mx.array  # all -1


@dataclass(frozen=True, eq=False)
class _Quantized:
    source: Any  # the packed weight array this was made from (identity check)
    out_features: int
    weight: mx.array
    affine: _Affine  # held here, so the shared pair lives as long as a layer uses it
    group_size: int

    @property
    def scales(self) -> mx.array:
        return self.affine.scales

    @property
    def biases(self) -> mx.array:
        return self.affine.biases


#: Re-packed weights by content: each entry lives while some layer's record holds its array.
_BY_CONTENT: weakref.WeakValueDictionary[tuple[Any, ...], mx.array] = weakref.WeakValueDictionary()
#: The constant scales and biases, one pair per shape, shared by every layer of that shape.
_AFFINE: weakref.WeakValueDictionary[tuple[int, int], _Affine] = weakref.WeakValueDictionary()


def _content_key(packed: mx.array, out_features: int, group_size: int) -> tuple[Any, ...] | None:
    try:
        digest = hashlib.sha1(memoryview(packed), usedforsecurity=False).digest()  # type: ignore[arg-type]
    except (BufferError, TypeError, ValueError):  # not row-contiguous, or being traced: no sharing
        return None
    return (digest, tuple(packed.shape), out_features, group_size)


def _affine(groups: tuple[int, int]) -> _Affine:
    pair = _AFFINE.get(groups)
    if pair is None:
        pair = _Affine(mx.ones(groups, dtype=mx.float32), mx.full(groups, -1.0, dtype=mx.float32))
        mx.eval(pair.scales, pair.biases)
        _AFFINE[groups] = pair
    return pair


def _quantized(owner: Any, packed: mx.array, out_features: int, group_size: int) -> _Quantized:
    cached = getattr(owner, _CACHE_ATTR, None) if owner is not None else None
    if isinstance(cached, _Quantized) and cached.source is packed and cached.out_features == out_features:
        return cached
    _check_packed(packed, out_features)
    mx.eval(packed)
    key = _content_key(packed, out_features, group_size)
    weight = _BY_CONTENT.get(key) if key is not None else None
    if weight is None:
        weight = _repack(packed, out_features)
        mx.eval(weight)
        if key is not None:
            _BY_CONTENT[key] = weight
    made = _Quantized(
        source=packed,
        out_features=out_features,
        weight=weight,
        affine=_affine((out_features, packed.shape[1] // group_size)),
        group_size=group_size,
    )
    if owner is not None:
        # Not a parameter: set on the instance dict, out of nn.Module's
        # parameter tree, so saving or updating the model never sees it.
        object.__setattr__(owner, _CACHE_ATTR, made)
    return made


def _group_size(in_features: int) -> int | None:
    return next((g for g in _GROUP_SIZES if in_features % g == 0), None)


@cache
def _half_addmm(version: str) -> bool:
    """Whether this mlx computes ``addmm`` in bfloat16 on the CPU (0.29.4 and later)."""
    from ..versions import version_in

    return version_in(version, ">=0.29.4")


def _scale_factor(weight_scale: mx.array, invert: bool) -> mx.array:
    scale = weight_scale.astype(mx.float32).reshape(-1)[0]
    return mx.array(1.0, dtype=mx.float32) / scale if invert else scale


def _bf16_prefill(
    x: mx.array, packed: mx.array, weight_scale: mx.array, out_features: int, invert: bool
) -> mx.array:
    """bfloat16 GEMM (float32 sums) on the unpacked weights, scaled before the one rounding."""
    weights = _ternary(packed, out_features, mx.bfloat16)
    factor = _scale_factor(weight_scale, invert)
    rows = x.reshape(-1, x.shape[-1])
    if _half_addmm(mlx_version(mx)):
        try:
            alpha = float(factor.tolist())  # type: ignore[arg-type]  # the kernel's float32 factor, exactly
        except ValueError:  # traced (mx.compile): no value to read
            alpha = None
        if alpha is not None:
            zero = mx.zeros((1,), dtype=mx.bfloat16)
            y = mx.addmm(zero, rows, weights.T, alpha=alpha, beta=0.0)
            return y.reshape(*x.shape[:-1], out_features)
    y = (rows @ weights.T).astype(mx.float32) * factor
    return y.astype(mx.bfloat16).reshape(*x.shape[:-1], out_features)


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
    group_size = _group_size(in_features)
    on_cpu = mx.default_device() == mx.cpu
    tokens = x.size // in_features
    half = dtype == mx.bfloat16
    decode = tokens <= QMM_UP_TO["bfloat16" if half else "float32"]
    if on_cpu and half and not decode:
        return _bf16_prefill(x, packed_weights, weight_scale, out_features, invert_weight_scales)
    xf = x.astype(mx.float32)
    if on_cpu and decode and group_size is not None:
        q = _quantized(cache_owner, packed_weights, out_features, group_size)
        y = mx.quantized_matmul(
            xf, q.weight, q.scales, q.biases, transpose=True, group_size=q.group_size, bits=2
        )
    else:
        # Prefill in float32 (BLAS), or any input off the CPU: the dense
        # weights live for this call only.
        y = xf @ _ternary(packed_weights, out_features, mx.float32).T
    y = y * _scale_factor(weight_scale, invert_weight_scales)
    return y.astype(dtype)
