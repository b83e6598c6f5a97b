"""``sdpa_masked_rows``: attention rows whose boolean mask hides every key, mlx 0.27-0.28.

Why: the behaviour diff (``python -m tools.apidiff behaviour``, see
``docs/api-diff.md``) found that ``mx.fast.scaled_dot_product_attention``
with a boolean mask that hides *all* keys of a query row returns NaN for that
row on mlx 0.27.1 and 0.28.0, in float32, float16 and bfloat16, where mlx
0.26.5 and 0.29.4-0.32.4 return the mean of the values (the masked scores
become the dtype's lowest number, so the softmax is uniform).  mlx-lm builds
such rows for the left padding of ``batch_generate`` and the server's
batches; a NaN there can reach real tokens through ``0 * NaN`` in the next
layer's attention.  No error is raised: the output is silently NaN.

What: when the mask is a boolean array and no ``sinks`` are given, the
result of mlx's kernel is kept for every row that sees at least one key, and
the fully hidden rows get the mean of ``v`` over the keys (per key/value
head, repeated over its query heads), which is what newer mlx computes.
Costs one ``any`` over the mask and one mean over ``v`` per such call;
string masks (``"causal"``), additive masks and no mask go straight through.

When: mlx >= 0.27.0 and < 0.29.4 (0.26.5 and 0.29.4 compute the mean),
every backend; applied by ``import mlx_portable`` (once ``mlx.core`` is
imported), after ``sdpa_sinks`` (it wraps whatever function is there).
"""

from __future__ import annotations

from ..registry.registry import Patch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext

__all__ = ["PATCHES", "sdpa_masked_rows"]


def _apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    inner = mx.fast.scaled_dot_product_attention

    def scaled_dot_product_attention(
        q: Any, k: Any, v: Any, *, scale: float, mask: Any = None, **kwargs: Any
    ) -> Any:
        """mlx's attention; a row a boolean mask hides entirely gets mean(v), as mlx >= 0.29.4."""
        out = inner(q, k, v, scale=scale, mask=mask, **kwargs)
        if not isinstance(mask, mx.array) or mask.dtype != mx.bool_ or kwargs.get("sinks") is not None:
            return out
        hidden = mx.logical_not(mx.any(mask, axis=-1, keepdims=True))  # [..., T_q, 1]
        mean_v = mx.mean(v, axis=-2, keepdims=True)  # [B, N_kv, 1, D]
        if q.shape[1] != v.shape[1]:
            mean_v = mx.repeat(mean_v, q.shape[1] // v.shape[1], axis=1)
        return mx.where(hidden, mean_v.astype(out.dtype), out)

    ctx.set_attr(mx.fast, "scaled_dot_product_attention", scaled_dot_product_attention)


sdpa_masked_rows = Patch(
    name="sdpa_masked_rows",
    summary="attention rows a boolean mask hides entirely give mean(v) instead of NaN",
    why=(
        "On mlx 0.27-0.28, mx.fast.scaled_dot_product_attention returns NaN (no error) for a query row "
        "whose boolean mask hides every key, as mlx-lm's batch left padding does; mlx 0.26.5 and "
        ">= 0.29.4 return the mean of the values."
    ),
    apply=_apply,
    mlx_versions=">=0.27.0,<0.29.4",
    when="import",  # corrects a result whatever the backend: applied by import mlx_portable
)

PATCHES = (sdpa_masked_rows,)
