"""``array_api_ops``: numpy-style array functions of mlx 0.32 that mlx-vlm calls.

Why: the API diff (``docs/api-diff.md``) shows mlx-vlm 0.7 calling names
mlx added in 0.32.0 (``mx.diff``, ``mx.empty``, ``mx.flip``,
``mx.result_type``) and 0.32.4 (``mx.searchsorted``, ``dtype=`` of
``mx.ones_like`` / ``mx.zeros_like``): GLM-4V and GLM-4V-MoE vision towers
(``mx.empty``), MoGe-3 and SAM-3D (``mx.searchsorted``, ``mx.diff``), the
limite language model (``mx.flip``), mixture-of-experts layers
(``mx.result_type``), the GRPO trainer (``ones_like(dtype=)``).  On older
mlx these models fail with::

    AttributeError: module 'mlx.core' has no attribute 'searchsorted'
    TypeError: ones_like(): incompatible function arguments. ... kwargs = { dtype: ... }

What: each is written with mlx ops that every supported mlx has, with the
newest mlx's semantics and errors (checked against mlx 0.32.4 in
``tests/test_shim_array_api_ops.py``):

* ``diff(a, n=1, axis=-1)``: ``a[1:] - a[:-1]`` ``n`` times (``!=`` for bool);
* ``empty(shape, dtype=float32)``: zeros (mlx's own ``empty`` leaves the
  values unspecified, so zeros are a valid result);
* ``flip(a, axis=None)``: reversed slices over the given axes (all if None);
* ``result_type(*arrays_and_dtypes)``: the dtype of adding zero-size arrays;
* ``searchsorted(sorted_sequence, values, side="left")``: counts of
  elements ``<`` (``<=`` for ``"right"``) each value, as ``uint32``; it
  compares every value with every element (memory ``values.size *
  sequence.size``), where mlx 0.32.4 runs a binary search;
* ``ones_like`` / ``zeros_like`` with ``dtype=``: ``ones``/``zeros`` of that shape.

When: mlx < 0.32.4, every backend; each name is added or wrapped only where
missing.  Applied at import (it only adds).  Upstream: ml-explore/mlx 0.32.0
and 0.32.4 release notes.
"""

from __future__ import annotations

from ..registry.registry import Patch, obsolete

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext, Verdict

__all__ = ["PATCHES", "array_api_ops"]

_NAMES = ("diff", "empty", "flip", "result_type", "searchsorted")


def _like_takes_dtype(mx: Any) -> bool:
    try:
        mx.ones_like(mx.array([1]), dtype=mx.bool_)
    except TypeError:
        return False
    return True


def _check(ctx: PatchContext) -> Verdict | None:
    if all(hasattr(ctx.mx, n) for n in _NAMES) and _like_takes_dtype(ctx.mx):
        return obsolete(f"mlx {ctx.mlx_version} has {', '.join(_NAMES)} and ones_like(dtype=)")
    return None


def _functions(mx: Any) -> dict[str, Any]:
    def diff(a: Any, /, n: int = 1, axis: int = -1, *, stream: Any = None) -> Any:
        """The n-th discrete difference along ``axis`` (mlx >= 0.32's ``mx.diff``, added by mlx-portable)."""
        if not isinstance(n, int) or n < 0:
            raise ValueError("[diff] Order `n` must be non-negative.")
        a = mx.array(a) if not isinstance(a, mx.array) else a
        if a.ndim == 0:
            raise ValueError("[diff] Input must be at least 1-D.")
        axis = axis + a.ndim if axis < 0 else axis
        if not 0 <= axis < a.ndim:
            raise ValueError(f"[diff] Invalid axis {axis} for array with {a.ndim} dimensions.")
        upper_index = [slice(None)] * axis + [slice(1, None)]
        lower_index = [slice(None)] * axis + [slice(None, -1)]
        for _ in range(n):
            upper, lower = a[tuple(upper_index)], a[tuple(lower_index)]
            a = mx.not_equal(upper, lower, stream=stream) if a.dtype == mx.bool_ else upper - lower
        return a

    def empty(shape: Any, dtype: Any = None, *, stream: Any = None) -> Any:
        """An array of ``shape`` (zeros; mlx >= 0.32's ``mx.empty``, added by mlx-portable)."""
        return mx.zeros(shape, dtype=mx.float32 if dtype is None else dtype, stream=stream)

    def flip(a: Any, /, axis: Any = None, *, stream: Any = None) -> Any:
        """``a`` reversed along ``axis`` (all axes if None; mlx >= 0.32's ``mx.flip``, added)."""
        axes = range(a.ndim) if axis is None else [axis] if isinstance(axis, int) else list(axis)
        index = [slice(None)] * a.ndim
        for ax in axes:
            if not -a.ndim <= ax < a.ndim:
                raise ValueError(f"[flip] Invalid axis {ax} for array with {a.ndim} dimensions.")
            index[ax] = slice(None, None, -1)
        return a[tuple(index)]

    def result_type(*arrays_and_dtypes: Any) -> Any:
        """The promoted dtype of the inputs (mlx >= 0.32's ``mx.result_type``, added by mlx-portable)."""
        if not arrays_and_dtypes:
            raise ValueError("[result_type] At least one array or dtype is required.")
        zeros = [mx.zeros((0,), dtype=x.dtype if isinstance(x, mx.array) else x) for x in arrays_and_dtypes]
        total = zeros[0]
        for z in zeros[1:]:
            total = total + z
        return total.dtype

    def searchsorted(sorted_sequence: Any, values: Any, /, side: str = "left", *, stream: Any = None) -> Any:
        """Insertion indices keeping ``sorted_sequence`` sorted (mlx >= 0.32.4's, added by mlx-portable)."""
        if side not in ("left", "right"):
            raise ValueError(f"[searchsorted] Invalid side '{side}'. Expected 'left' or 'right'.")
        if sorted_sequence.ndim != 1:
            raise ValueError(
                f"[searchsorted] The sorted sequence must be 1-D but has {sorted_sequence.ndim} dimensions."
            )
        values = values if isinstance(values, mx.array) else mx.array(values)
        cmp = mx.less if side == "left" else mx.less_equal
        hits = cmp(sorted_sequence, mx.expand_dims(values, -1), stream=stream)
        return mx.sum(hits, axis=-1, stream=stream).astype(mx.uint32)

    return {
        "diff": diff,
        "empty": empty,
        "flip": flip,
        "result_type": result_type,
        "searchsorted": searchsorted,
    }


def _like(mx: Any, original: Any, fill: Any) -> Any:
    def like(a: Any, /, dtype: Any = None, *, stream: Any = None) -> Any:
        if dtype is None:
            return original(a, stream=stream)
        return fill(a.shape, dtype=dtype, stream=stream)

    return like


def _apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    for name, fn in _functions(mx).items():
        if not hasattr(mx, name):
            ctx.set_attr(mx, name, fn)
    if not _like_takes_dtype(mx):
        doc = "\n\nmlx-portable: dtype= (mlx >= 0.32.4) gives the same shape filled in that dtype."
        ctx.wrap(mx, "ones_like", lambda original: _like(mx, original, mx.ones), doc=doc)
        ctx.wrap(mx, "zeros_like", lambda original: _like(mx, original, mx.zeros), doc=doc)


array_api_ops = Patch(
    name="array_api_ops",
    summary="adds mx.diff, empty, flip, result_type, searchsorted and ones_like/zeros_like(dtype=)",
    why=(
        "mlx-vlm 0.7 calls numpy-style functions of mlx 0.32: AttributeError: module 'mlx.core' has no "
        "attribute 'searchsorted' (and diff, empty, flip, result_type), or TypeError for "
        "ones_like(dtype=), on mlx < 0.32.4."
    ),
    apply=_apply,
    check=_check,
    mlx_versions="<0.32.4",
    when="import",
    upstream="https://github.com/ml-explore/mlx/releases/tag/v0.32.4",
)

PATCHES = (array_api_ops,)
