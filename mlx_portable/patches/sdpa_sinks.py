"""``sdpa_sinks``: ``mx.fast.scaled_dot_product_attention(..., sinks=...)`` on mlx < 0.29.1.

Why: mlx-lm 0.32.x passes ``sinks=`` on every attention call (``None`` for
models without attention sinks).  mlx < 0.29.1 has no such argument, so the
first generated token fails with::

    TypeError: scaled_dot_product_attention(): incompatible function arguments. ...
    kwargs = { scale: float, mask: str, sinks: NoneType }

Which: mlx < 0.29.1 (sinks arrived in 0.29.1, ml-explore/mlx#2558), every
backend.

What the wrapper does: ``sinks=None`` calls mlx's fused kernel directly,
unchanged.  A sinks array (one logit per query head, as gpt-oss uses) is
computed with ordinary mlx ops, following mlx's own reference path: scores
``(q * scale) @ k^T`` with grouped-query heads (``n_q_heads`` a multiple of
``n_kv_heads``), the mask (``"causal"`` aligned bottom-right, a boolean mask,
or an additive mask), then a float32 softmax over ``[sink, scores]`` whose
sink column is dropped, so each row's weights sum to less than one.  The
result has the promoted dtype of ``q``, ``k`` and ``v``, as the fused kernel's
has.  Wrong shapes raise ``ValueError`` saying what was expected.

Cost: one Python call per attention call with ``sinks=None``
(``benchmarks/sdpa_sinks.py``).

Upstream: https://github.com/ml-explore/mlx/pull/2558
"""

from __future__ import annotations

from ..registry.registry import Patch, get_original, obsolete, skip

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext, Verdict

__all__ = ["PATCHES", "attention_with_sinks", "sdpa_sinks"]

_WHO = "[scaled_dot_product_attention]"


def _has_sinks(fn: Any) -> bool:
    doc = getattr(fn, "__doc__", None) or ""
    return "sinks" in doc


def _check(ctx: PatchContext) -> Verdict | None:
    fast = getattr(ctx.mx, "fast", None)
    if fast is None or not hasattr(fast, "scaled_dot_product_attention"):
        return skip(f"mlx {ctx.mlx_version} has no mx.fast.scaled_dot_product_attention")
    if _has_sinks(get_original(fast, "scaled_dot_product_attention")):
        return obsolete(f"mlx {ctx.mlx_version}'s scaled_dot_product_attention takes sinks=")
    return None


def _promoted_dtype(mx: Any, *arrays: Any) -> Any:
    # mx.result_type does not exist on every supported mlx; promotion of
    # 0-d arrays is lazy and cheap.
    total = mx.zeros((), dtype=arrays[0].dtype)
    for a in arrays[1:]:
        total = total + mx.zeros((), dtype=a.dtype)
    return total.dtype


def _validate(q: Any, k: Any, v: Any, sinks: Any) -> None:
    for name, t in (("queries", q), ("keys", k), ("values", v)):
        if t.ndim != 4:
            raise ValueError(f"{_WHO} {name} with shape {tuple(t.shape)} expected to be rank 4 [B, N, T, D]")
    if not (q.shape[0] == k.shape[0] == v.shape[0]):
        raise ValueError(f"{_WHO} mismatching batch sizes: q {q.shape}, k {k.shape}, v {v.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"{_WHO} queries and keys need the same head dim; got q {q.shape}, k {k.shape}")
    if k.shape[1] != v.shape[1] or k.shape[2] != v.shape[2]:
        raise ValueError(f"{_WHO} keys {k.shape} and values {v.shape} need the same heads and length")
    if q.shape[1] % k.shape[1] != 0:
        raise ValueError(
            f"{_WHO} n_heads must be a multiple of n_kv_heads, found n_heads {q.shape[1]} "
            f"for n_kv_heads {k.shape[1]}"
        )
    if sinks.ndim != 1 or sinks.shape[0] not in (1, q.shape[1]):
        raise ValueError(
            f"{_WHO} sinks must be a vector of one logit per query head, shape ({q.shape[1]},); "
            f"got shape {tuple(sinks.shape)}"
        )


def _mask_scores(mx: Any, scores: Any, mask: Any, n_kv: int, repeats: int, t_q: int, t_kv: int) -> Any:
    if isinstance(mask, str):
        if mask != "causal":
            raise ValueError(f"{_WHO} unknown mask {mask!r}; the only string mask is 'causal'")
        q_off = max(t_kv - t_q, 0)
        m = mx.arange(q_off, q_off + t_q)[:, None] >= mx.arange(t_kv)[None, :]
    else:
        m = mask
        if m.ndim > 4:
            raise ValueError(f"{_WHO} the mask with shape {tuple(m.shape)} expected to have at most rank 4")
        if repeats > 1 and m.ndim >= 3:
            if m.shape[-3] == 1:
                m = mx.expand_dims(m, -3)
            else:
                m = m.reshape(*m.shape[:-3], n_kv, repeats, *m.shape[-2:])
    if m.dtype == mx.bool_:
        return mx.where(m, scores, mx.array(mx.finfo(scores.dtype).min, dtype=scores.dtype))
    if _promoted_dtype(mx, m, scores) != scores.dtype:
        raise ValueError(
            f"{_WHO} an additive mask of type {m.dtype} must promote to the output type {scores.dtype}"
        )
    return scores + m


def attention_with_sinks(mx: Any, q: Any, k: Any, v: Any, *, scale: float, mask: Any, sinks: Any) -> Any:
    """Attention with per-head sink logits, in plain mlx ops (mlx's own reference algorithm)."""
    _validate(q, k, v, sinks)
    dtype = _promoted_dtype(mx, q, k, v)
    if not mx.issubdtype(dtype, mx.floating):
        raise ValueError(f"{_WHO} received unsupported type {dtype}; use a floating type")
    batch, n_q, t_q, head_dim = q.shape
    n_kv, t_kv = k.shape[1], k.shape[2]
    repeats = n_q // n_kv
    q = q.astype(dtype) * mx.array(scale, dtype=dtype)
    k = k.astype(dtype)
    v = v.astype(dtype)
    if repeats > 1:
        q = q.reshape(batch, n_kv, repeats, t_q, head_dim)
        k = mx.expand_dims(k, 2)
        v = mx.expand_dims(v, 2)
    scores = q @ mx.swapaxes(k, -1, -2)
    if mask is not None:
        scores = _mask_scores(mx, scores, mask, n_kv, repeats, t_q, t_kv)
    sink = sinks.astype(mx.float32)
    sink = sink.reshape(1, n_kv, repeats, 1, 1) if repeats > 1 else sink.reshape(1, -1, 1, 1)
    sink = mx.broadcast_to(sink, (*scores.shape[:-1], 1))
    weights = mx.softmax(mx.concatenate([sink, scores.astype(mx.float32)], axis=-1), axis=-1)
    out = weights[..., 1:].astype(dtype) @ v
    if repeats > 1:
        # The value head size, which may differ from the query's (MiMo-V2-Flash).
        out = out.reshape(batch, n_q, t_q, v.shape[-1])
    return out


def _wrap(mx: Any, original: Any) -> Any:
    def scaled_dot_product_attention(
        q: Any, k: Any, v: Any, *, scale: float, mask: Any = None, sinks: Any = None, stream: Any = None
    ) -> Any:
        if sinks is None:
            return original(q, k, v, scale=scale, mask=mask, stream=stream)
        if stream is None:
            return attention_with_sinks(mx, q, k, v, scale=scale, mask=mask, sinks=sinks)
        with mx.stream(stream):
            return attention_with_sinks(mx, q, k, v, scale=scale, mask=mask, sinks=sinks)

    return scaled_dot_product_attention


def _apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    ctx.wrap(
        mx.fast,
        "scaled_dot_product_attention",
        lambda original: _wrap(mx, original),
        doc="\n\nmlx-portable: accepts sinks= (an array of one logit per query head, or None) on this mlx.",
    )


sdpa_sinks = Patch(
    name="sdpa_sinks",
    summary="mx.fast.scaled_dot_product_attention accepts sinks= (None: fused kernel; array: mlx ops)",
    why=(
        "mlx-lm 0.32 passes sinks= to scaled_dot_product_attention; mlx < 0.29.1 rejects it: TypeError: "
        "scaled_dot_product_attention(): incompatible function arguments."
    ),
    apply=_apply,
    check=_check,
    mlx_versions="<0.29.1",
    when="import",  # widens what mlx accepts, whatever the backend: applied by import mlx_portable
    upstream="https://github.com/ml-explore/mlx/pull/2558",
)

PATCHES = (sdpa_sinks,)
