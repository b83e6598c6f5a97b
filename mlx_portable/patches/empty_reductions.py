"""Zero-size inputs: scans and sorts that kill the process, max/min that raise.

Found by a client model or by the grown behaviour sweep
(``tools.apidiff.behaviour``, the ``edge_*`` probes); the version ranges
were measured on the real mlx-cpu wheels of every matrix mlx (0.26.5 0.27.1
0.28.0 0.29.4 0.30.0 0.30.6 0.31.2 0.32.0 0.32.4), and where a fix's first
release lies between two matrix versions the upstream commit names it.

``empty_scan`` -- why: on mlx < 0.32.4 ``cumsum``, ``cumprod``, ``cummax``,
``cummin`` and ``logcumsumexp`` of a zero-size array kill the process with
SIGFPE when evaluated (the CPU scan divides by the empty axis length): no
exception, pytest and all.  (mlx-vlm's minimax_h3 packed sequences.)  The
shim builds mlx's own result node (so shape, dtype and argument errors are
mlx's) and, for a zero-size input, returns zeros of that shape and dtype
instead of it; the node is never evaluated.

``empty_scan`` also covers ``sort`` and ``argsort``: the same SIGFPE on the
same versions (found by the behaviour sweep).

``empty_extremes`` -- why: on mlx < 0.32.4 ``mx.max`` / ``mx.min`` of a
zero-size array raise ``ValueError: [max] Cannot max reduce zero size
array`` even over axes that are not empty (``mx.max(mx.zeros((0, 3)),
axis=1)``; 0.32.4 gives shape ``(0,)``).  The shim returns the empty result
when every reduced axis is non-empty; an empty reduction still raises.

All: every backend (the CPU stream exists on every backend, and the Python
argument handling is common); each applies at import and only adds checks.
"""

from __future__ import annotations

from ..registry.registry import Patch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext

__all__ = [
    "PATCHES",
    "empty_extremes",
    "empty_scan",
]

_SCANS = ("cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "sort", "argsort")
_EXTREMES = ("max", "min")


# -- empty_scan -------------------------------------------------------------------------


def _scan_apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    array = mx.array
    zeros = mx.zeros

    def wrap(fn: Any, name: str) -> Any:
        def scan(a: Any, *args: Any, **kwargs: Any) -> Any:
            out = fn(a, *args, **kwargs)  # mlx's own shape, dtype and argument checks
            if isinstance(a, array) and not a.size:
                return zeros(out.shape, dtype=out.dtype)  # never evaluate the scan node
            return out

        scan.__name__ = scan.__qualname__ = name
        scan.__doc__ = f"``{name}`` that returns an empty result for a zero-size input (mlx-portable)."
        return scan

    for name in _SCANS:
        if hasattr(mx, name):
            ctx.set_attr(mx, name, wrap(getattr(mx, name), name))
        if hasattr(array, name):
            ctx.set_attr(array, name, wrap(getattr(array, name), name))


empty_scan = Patch(
    name="empty_scan",
    summary="cumsum/cumprod/cummax/cummin/logcumsumexp/sort/argsort of a zero-size array: an empty array",
    why=(
        "mx.cumsum(mx.zeros((0,))) (and the other scans, sort, argsort) kills the process with SIGFPE "
        "when evaluated on mlx < 0.32.4 (mlx-vlm minimax_h3 packed sequences take pytest down)."
    ),
    apply=_scan_apply,
    mlx_versions="<0.32.4",
    when="import",
    upstream="https://github.com/ml-explore/mlx/releases/tag/v0.32.4",
)


# -- empty_extremes ---------------------------------------------------------------------


def _reduced_shape(shape: tuple[int, ...], axis: Any, keepdims: bool) -> tuple[int, ...] | None:
    """The shape of a max/min over ``axis``, or None when an axis is invalid or of length zero."""
    ndim = len(shape)
    axes = range(ndim) if axis is None else [axis] if isinstance(axis, int) else list(axis)
    norm = set()
    for ax in axes:
        if not isinstance(ax, int) or not -ndim <= ax < ndim:
            return None
        norm.add(ax % ndim)
    if any(shape[ax] == 0 for ax in norm):
        return None  # an empty reduction: mlx raises, as 0.32.4 does
    return tuple(1 if i in norm else n for i, n in enumerate(shape) if keepdims or i not in norm)


def _extremes_apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    array = mx.array

    def wrap(fn: Any, name: str) -> Any:
        def extreme(a: Any, axis: Any = None, keepdims: bool = False, **kwargs: Any) -> Any:
            if isinstance(a, array) and not a.size:
                shape = _reduced_shape(tuple(a.shape), axis, keepdims)
                if shape is not None:
                    return mx.zeros(shape, dtype=a.dtype)
            return fn(a, axis=axis, keepdims=keepdims, **kwargs)

        extreme.__name__ = extreme.__qualname__ = name
        extreme.__doc__ = (
            f"``{name}`` over the non-empty axes of a zero-size array gives an empty array (mlx-portable)."
        )
        return extreme

    for name in _EXTREMES:
        ctx.set_attr(mx, name, wrap(getattr(mx, name), name))
        ctx.set_attr(array, name, wrap(getattr(array, name), name))


empty_extremes = Patch(
    name="empty_extremes",
    summary="max/min of a zero-size array over non-empty axes return an empty array",
    why=(
        "mx.max(mx.zeros((0, 3)), axis=1): ValueError: [max] Cannot max reduce zero size array on "
        "mlx < 0.32.4 (0.32.4 returns shape (0,); found by the behaviour sweep)."
    ),
    apply=_extremes_apply,
    mlx_versions="<0.32.4",
    when="import",
    upstream="https://github.com/ml-explore/mlx/releases/tag/v0.32.4",
)


PATCHES = (empty_scan, empty_extremes)
