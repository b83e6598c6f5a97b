"""mlx-lm's fused Metal kernels (``mlx_lm.kernels``, used by Muse Spark) as mlx ops.

One function per kernel function of ``mlx_lm.kernels``, with the same
signature and the same arithmetic: float32 math, and a rounding to the
input dtype wherever the kernel stores to or casts through ``T``.  Only the
order of the float32 sums differs (a tree in the kernel, mlx's reduction
here), which is below the dtype's precision.
"""

from __future__ import annotations

import math
from typing import Any

import mlx.core as mx

__all__ = [
    "expert_routing",
    "norm_add_norm",
    "post_expert_norm_combine",
    "pre_norm",
    "qk_norm",
    "qk_norm_rope",
    "rms_norm_sigmoid_gate",
]

_F32 = mx.float32


def _rstd(v: mx.array, eps: float) -> mx.array:
    """``rsqrt(mean(v * v) + eps)`` over the last axis, float32."""
    return mx.rsqrt(mx.mean(v * v, axis=-1, keepdims=True) + eps)


def _check_qkvg(qkvg: mx.array, n_heads: int, n_kv_heads: int, head_dim: int) -> None:
    width = 2 * (n_heads + n_kv_heads) * head_dim
    if qkvg.shape[-1] != width:
        raise ValueError(
            f"qkvg has {qkvg.shape[-1]} features; n_heads={n_heads}, n_kv_heads={n_kv_heads}, "
            f"head_dim={head_dim} need 2 * (n_heads + n_kv_heads) * head_dim = {width}"
        )


def _normed_qk(
    qkvg: mx.array, n_heads: int, n_kv_heads: int, head_dim: int, eps: float, query_scale: float
) -> tuple[mx.array, mx.array]:
    """q and k, normed and rounded to T as the kernels store them (q also scaled)."""
    _check_qkvg(qkvg, n_heads, n_kv_heads, head_dim)
    dtype = qkvg.dtype
    tokens = qkvg.shape[:-1]
    heads = n_heads + n_kv_heads
    x = qkvg[..., : heads * head_dim].reshape(*tokens, heads, head_dim).astype(_F32)
    y = (x * _rstd(x, eps)).astype(dtype)
    q = (y[..., :n_heads, :].astype(_F32) * query_scale).astype(dtype)
    return q, y[..., n_heads:, :]


def qk_norm(
    qkvg: mx.array,
    *,
    n_heads: int,
    n_kv_heads: int,
    head_dim: int,
    eps: float,
    query_scale: float,
) -> list[mx.array]:
    """The q and k head norms and the q scale: q (..., n_heads, D), k (..., n_kv_heads, D)."""
    q, k = _normed_qk(qkvg, n_heads, n_kv_heads, head_dim, eps, query_scale)
    return [q, k]


def _positions(tokens: tuple[int, ...], offset: int | mx.array) -> mx.array:
    """float32 position of every token, shaped tokens + (1, 1)."""
    seq_len = tokens[-1]
    rows = math.prod(tokens[:-1])
    if isinstance(offset, mx.array):
        flat = offset.reshape(-1).astype(mx.int32)
        if flat.size > 1:
            if flat.size < rows:
                raise ValueError(f"offset has {flat.size} entries for {rows} batch rows; pass one per row")
            start = flat[:rows].reshape(rows, 1)
        else:
            start = flat.reshape(1, 1)
    else:
        start = mx.array([[int(offset)]], dtype=mx.int32)
    pos = start + mx.arange(seq_len, dtype=mx.int32).reshape(1, seq_len)
    pos = mx.broadcast_to(pos, (rows, seq_len))
    return pos.astype(_F32).reshape(*tokens, 1, 1)


def _rotate(y: mx.array, pos: mx.array, rope_base: float) -> mx.array:
    """mx.fast.rope(traditional=True) of y (..., H, D) at float32 positions pos, float32 math."""
    dtype = y.dtype
    dim = y.shape[-1]
    half = dim // 2
    # As the kernel: the float32 log2 of the base.
    log2_base = mx.array(math.log2(rope_base), dtype=_F32)
    inv_freq = mx.power(mx.array(2.0, dtype=_F32), -(mx.arange(half, dtype=_F32) / half) * log2_base)
    theta = pos * inv_freq  # (..., 1, half)
    c, s = mx.cos(theta), mx.sin(theta)
    pairs = y.astype(_F32).reshape(*y.shape[:-1], half, 2)
    even, odd = pairs[..., 0], pairs[..., 1]
    out = mx.stack([even * c - odd * s, even * s + odd * c], axis=-1)
    return out.reshape(y.shape).astype(dtype)


def qk_norm_rope(
    qkvg: mx.array,
    *,
    n_heads: int,
    n_kv_heads: int,
    head_dim: int,
    eps: float,
    query_scale: float,
    rope_base: float,
    offset: int | mx.array,
) -> list[mx.array]:
    """qk_norm, then the rotation of mx.fast.rope(traditional=True) at positions offset, offset + 1, ...

    ``offset`` is an int, or an array with one offset per batch row (or one
    for all rows).
    """
    if head_dim % 2:
        raise ValueError(f"rotary embedding needs an even head_dim, got {head_dim}")
    q, k = _normed_qk(qkvg, n_heads, n_kv_heads, head_dim, eps, query_scale)
    pos = _positions(tuple(qkvg.shape[:-1]), offset)
    return [_rotate(q, pos, rope_base), _rotate(k, pos, rope_base)]


def rms_norm_sigmoid_gate(x: mx.array, gate: mx.array, *, eps: float) -> mx.array:
    """rms_norm(x) * sigmoid(gate) per head; x (B, H, L, D), gate (B, L, H * D) -> (B, L, H * D)."""
    B, H, L, D = x.shape
    if gate.shape != (B, L, H * D):
        raise ValueError(f"gate has shape {gate.shape}; x of shape {x.shape} needs {(B, L, H * D)}")
    v = x.astype(_F32).transpose(0, 2, 1, 3)
    g = gate.astype(_F32).reshape(B, L, H, D)
    out = v * _rstd(v, eps) * mx.sigmoid(g)
    return out.astype(x.dtype).reshape(B, L, H * D)


def _pre_normed(s: mx.array, weight: mx.array, eps: float, dtype: Any) -> mx.array:
    return (s * _rstd(s, eps) * weight.astype(_F32)).astype(dtype)


def norm_add_norm(
    branch: mx.array,
    stream: mx.array,
    *,
    alpha: mx.array,
    beta: mx.array,
    post_weight: mx.array | None,
    post_eps: float,
    next_norm: Any | None,
) -> tuple[mx.array, mx.array | None]:
    """Post-norm the branch, add it to the float32 stream with the gate weights, pre-norm the sum.

    Returns the new float32 stream and the sum normed with ``next_norm`` (an
    ``nn.RMSNorm``; ``None`` without it).
    """
    if branch.shape != stream.shape:
        raise ValueError(f"branch {branch.shape} and stream {stream.shape} must have the same shape")
    dtype = branch.dtype
    v = branch.astype(_F32)
    if post_weight is not None:
        # The weight scales the input in T, like the norm module.
        w = post_weight.astype(dtype).astype(_F32)
        v = (w * v).astype(dtype).astype(_F32)
    n = (v * _rstd(v, post_eps)).astype(dtype).astype(_F32)
    new_stream = alpha.astype(_F32) * stream.astype(_F32) + beta.astype(_F32) * n
    if next_norm is None:
        return new_stream, None
    return new_stream, _pre_normed(new_stream, next_norm.weight, next_norm.eps, dtype)


def pre_norm(stream: mx.array, norm: Any, *, dtype: Any) -> mx.array:
    """Pre-norm the float32 stream with ``norm`` (an ``nn.RMSNorm``), as norm_add_norm does."""
    return _pre_normed(stream.astype(_F32), norm.weight, norm.eps, dtype)


def post_expert_norm_combine(
    experts: mx.array, weights: mx.array, *, norm_weight: mx.array, eps: float
) -> mx.array:
    """Norm each expert output (norm_weight scales its input), add them with their weights in order.

    experts (..., K, D), weights (..., K) -> (..., D).  As in the kernel, the
    running sum is rounded to the experts' dtype after each expert.
    """
    K, D = experts.shape[-2:]
    if weights.shape[-1] != K or weights.shape[:-1] != experts.shape[:-2]:
        raise ValueError(f"weights {weights.shape} do not match experts {experts.shape} (..., K, D)")
    dtype = experts.dtype
    v = experts.astype(_F32) * norm_weight.astype(_F32)
    normed = v * _rstd(v, eps)
    ew = weights.astype(dtype).astype(_F32)
    acc = mx.zeros((*experts.shape[:-2], D), dtype=_F32)
    for k in range(K):
        acc = (acc + normed[..., k, :] * ew[..., k : k + 1]).astype(dtype).astype(_F32)
    return acc.astype(dtype)


def expert_routing(
    logits: mx.array,
    expert_bias: mx.array,
    *,
    top_k: int,
    multiplier: float,
    score_eps: float,
    route_scale: float,
) -> list[mx.array]:
    """The top_k experts (uint32) and their float32 weights from router logits (..., E).

    Scores are sigmoid(logits * multiplier); experts are chosen by score plus
    bias, largest first, the lower index first among equals; the weights are
    the chosen scores over their sum (plus score_eps), times route_scale.
    """
    E = logits.shape[-1]
    if not 0 < top_k <= E:
        raise ValueError(f"top_k={top_k} must be between 1 and the number of experts ({E})")
    x = logits.astype(_F32) * multiplier
    score = mx.sigmoid(x)
    biased = score + expert_bias.astype(_F32)
    ids = mx.arange(E, dtype=mx.uint32)
    inds: list[mx.array] = []
    chosen: list[mx.array] = []
    neg_inf = mx.array(-math.inf, dtype=_F32)
    for _ in range(top_k):
        # argmax returns the first of equal maxima: the kernel's tie rule.
        best = mx.argmax(biased, axis=-1, keepdims=True).astype(mx.uint32)
        inds.append(best)
        chosen.append(mx.take_along_axis(score, best.astype(mx.int32), axis=-1))
        biased = mx.where(ids == best, neg_inf, biased)
    w = mx.concatenate(chosen, axis=-1)
    total = mx.zeros((*w.shape[:-1], 1), dtype=_F32)
    for k in range(top_k):
        total = w[..., k : k + 1] + total
    weights = w / (total + score_eps) * route_scale
    return [mx.concatenate(inds, axis=-1), weights]
