"""RoPE with one position offset per batch element, all sequences in one pass.

For the ``rope_batch_offsets`` shim (mlx < 0.29.1, whose ``mx.fast.rope``
takes only a scalar offset).  This builds the same graph that mlx >= 0.29.1
builds for a vector offset wherever ``mx.fast.rope`` has no fused kernel (its
``fallback`` in ``mlx/fast.cpp``, which is what every CPU-only build runs):
positions ``(arange(T) + offset[b]) * scale`` in float32, ``theta =
positions * inv_freq``, cos and sin rounded to the input dtype, then the
rotation of the two halves (or of interleaved pairs when ``traditional``).
So on the CPU the results are those of the newest mlx, bit for bit, at one
graph for the whole batch instead of one ``mx.fast.rope`` call per sequence.

Imported only by the shim, when it is applied (mlx is loaded by then).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from functools import lru_cache

import mlx.core as mx

__all__ = ["rope_per_example"]


def _f32(value: float) -> float:
    """``value`` rounded to the nearest float32."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


@lru_cache(maxsize=32)
def _inv_freqs(dims: int, base: float) -> mx.array:
    half = dims // 2
    # mlx computes log(base) / (dims / 2) in single precision (base is a C++ float).
    step = _f32(_f32(math.log(_f32(base))) / half)
    inv = mx.exp(mx.arange(0, -half, -1, dtype=mx.float32) * step)
    mx.eval(inv)
    return inv


def _rotate(x: mx.array, cos: mx.array, sin: mx.array, dims: int, traditional: bool) -> mx.array:
    """The rotation as one elementwise expression, ``pairs * (c, c) + swapped * (-s, s)``.

    mlx computes ``x1 * c - x2 * s`` and ``x1 * s + x2 * c`` for the two
    halves (``traditional``: the two members of each pair) and concatenates.
    Viewing ``x`` as (..., 2, dims / 2) (or (..., dims / 2, 2)) with the
    halves swapped by a reversed view gives the same products and sums (a
    negation is exact; an addition commutes), so the same bits, with a single
    output and no concatenation.  That matters on mlx < 0.32, whose CPU
    allocator has no buffer cache: every array of 128 KiB or more is fresh
    memory from the system, and the two half-size intermediates plus the
    concatenated copy made the batch-16 float32 call 1.7x the native one.
    """
    half = dims // 2
    head = x[..., :dims] if dims < x.shape[-1] else x
    axis = -1 if traditional else -2
    pairs = head.reshape(*head.shape[:-1], *((half, 2) if traditional else (2, half)))
    swapped = pairs[..., ::-1] if traditional else pairs[..., ::-1, :]
    c = mx.stack([cos, cos], axis=axis)
    s = mx.stack([-sin, sin], axis=axis)
    out = (pairs * c + swapped * s).reshape(head.shape)
    if dims < x.shape[-1]:
        out = mx.concatenate([out, x[..., dims:]], axis=-1)
    return out


@lru_cache(maxsize=32)
def _compiled_rotate(dims: int, traditional: bool) -> Callable[[mx.array, mx.array, mx.array], mx.array]:
    # Compiled, the rotation is one graph built once per shape (building ~10
    # ops from Python per call was half the time at batch 4) and, where mlx
    # fuses (GPU; CPU with a C++ compiler), one kernel.  Only exact
    # arithmetic is compiled: cos and sin stay outside, where mlx's own
    # vectorized versions keep the results equal to the native call's.
    return mx.compile(lambda x, cos, sin: _rotate(x, cos, sin, dims, traditional))


def rope_per_example(
    x: mx.array,
    dims: int,
    *,
    traditional: bool,
    base: float | None,
    scale: float,
    offsets: mx.array,
    freqs: mx.array | None = None,
    compiled: bool = True,
) -> mx.array:
    """RoPE of ``x`` (B, ..., T, D) with ``offsets`` (B,) integer positions of each sequence's first step.

    ``compiled=False`` builds the rotation op by op (for an explicit stream).
    """
    shape = x.shape
    if x.ndim == 3:
        x = mx.expand_dims(x, 1)
    elif x.ndim > 4:
        x = x.reshape(shape[0], -1, *shape[-2:])
    positions = (mx.arange(x.shape[2], dtype=mx.float32) + offsets.reshape(-1, 1, 1)) * scale  # (B, 1, T)
    if freqs is not None:
        inv_freqs = mx.reciprocal(freqs.astype(mx.float32))
    else:
        inv_freqs = _inv_freqs(dims, _f32(base if base is not None else 1.0))
    theta = mx.expand_dims(positions, -1) * inv_freqs  # (B, 1, T, dims / 2)
    cos = mx.cos(theta).astype(x.dtype)
    sin = mx.sin(theta).astype(x.dtype)
    if compiled:
        out = _compiled_rotate(dims, traditional)(x, cos, sin)
    else:
        out = _rotate(x, cos, sin, dims, traditional)
    return out.reshape(shape)
