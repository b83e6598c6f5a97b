"""Indexing edges: views read in memory order, negative-stride slices, zero-size axes.

Found by a client model or by the grown behaviour sweep
(``tools.apidiff.behaviour``, the ``edge_*`` probes); the version ranges
were measured on the real mlx-cpu wheels of every matrix mlx (0.26.5 0.27.1
0.28.0 0.29.4 0.30.0 0.30.6 0.31.2 0.32.0 0.32.4), and where a fix's first
release lies between two matrix versions the upstream commit names it.

``negative_stride_views`` -- why: on mlx < 0.30.0 slicing a view that has a
negative stride starts from the wrong offset, silently::

    mx.arange(12.0).reshape(3, 4)[:, ::-1][0, 1:]   # [6, 5, 4] (right: [2, 1, 0])

and can read past the buffer (NaN or other memory).  Upstream:
ml-explore/mlx#2758, first in 0.30.0.  The strides are not visible from
Python, so the shim copies the result of every negative-step slice
(``mx.contiguous``): no negative-stride view is left to slice.  Costs a copy
of each reversed slice, and nothing for other indices.

``gather_view_order`` -- why: on mlx <= 0.31.2 the CPU ``Gather`` kernel
copies a slice as one block whenever the source is *column*-contiguous,
reading it in memory order.  An integer or array index of an expanded
transposed view then silently returns the wrong values::

    a = mx.arange(6.0).reshape(2, 3)
    a.T[None][0]   # [[0, 1], [2, 3], [4, 5]] on mlx <= 0.31.2 (right: [[0, 3], [1, 4], [2, 5]])

(mlx-audio's iSTFT: Kokoro and KittenTTS reconstruct distorted audio with no
error.)  Upstream: ml-explore/mlx#3647, first in 0.32.0.  The wrong copy needs
a source whose gathered slice has two or more non-singleton axes and whose
gathered axes before the last such axis all have length one (the kernel's
own column-contiguous test, which mlx-portable can evaluate on the shape: the
strides are not visible from Python).  Only then does the shim act: a bare
integer index becomes the equivalent ``x[(i,)]`` (a strided view, no gather
at all), an array index or ``mx.take`` reads from ``mx.contiguous(x)``
(which shares the buffer when ``x`` is row-contiguous already).  Every other
index goes straight to mlx after one shape check.  Cost per call on contiguous
arrays, measured by ``benchmarks/indexing_shims.py`` (fastest of 50 alternating
batches; 2 cores shared with other work, load ~10): mlx's own ``x[5]`` builds
in 1.17 us, the wrapper adds 0.29 us (``x[2:9, ::2]`` +0.24, ``x[idx]`` +0.33,
``mx.take(x, idx, axis=1)`` +0.25); only the shape class the rule cannot rule
out (``x[0]`` of a ``(1, 16, 32)`` array) pays +1.4 us.  Activated, the whole
indexing chain adds 0.26 us per ``x[5]`` on mlx 0.31.2 (this shim alone) and
0.47 us on 0.26.5 (three indexing shims), beside about 60 us for an evaluated
``x[5]``; nothing on 0.32.x.

``empty_axis_take`` -- why: on mlx < 0.30.4 an integer or array index of an
array with a zero-size axis elsewhere raises::

    mx.zeros((2, 0))[0]
    ValueError: [take] Cannot do a non-empty take from an array with zero elements.

(mlx-vlm's glm4v / youtu_vl / ernie rope-index code on empty rows, mlx-audio's
OmniVoice tokenizer.)  Upstream: ml-explore/mlx#3046, first in 0.30.4.  The
shim answers an integer or array index (and ``mx.take``) along a non-empty
axis by an empty array of the right shape; an index into the empty axis
still raises, as on 0.32.4 (tuple indices never met the check: they gather
directly).

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
    "empty_axis_take",
    "gather_reads_in_memory_order",
    "gather_view_order",
    "negative_stride_views",
]

_PLAIN_KEYS = (int, slice, type(None), type(Ellipsis))
_VIEW_KEYS = (slice, type(None), type(Ellipsis))


def gather_reads_in_memory_order(shape: tuple[int, ...], gathered: tuple[int, ...]) -> bool:
    """Whether mlx <= 0.31.2's CPU gather may copy this slice in memory order.

    ``gathered`` are the source axes the gather indexes (slice length one);
    the others are copied whole.  This is the kernel's column-contiguous
    "can copy" test on the shape alone, narrowed to slices with two or more
    non-singleton axes (a one-axis slice is copied correctly either way).
    """
    sizes = [1 if axis in gathered else n for axis, n in enumerate(shape)]
    if sum(1 for n in sizes if n != 1) < 2:
        return False
    i = len(sizes) - 1
    while i >= 0 and sizes[i] == 1:
        i -= 1
    return all(shape[k] == sizes[k] for k in range(i))


def _tuple_gathered(ndim: int, key: tuple[Any, ...]) -> tuple[int, ...] | None:
    """The source axes mlx's tuple indexing gathers over, or None when it only slices.

    mlx gathers over every axis up to the last integer or array entry once
    the tuple holds an array (ints and slices alone are a strided view).
    """
    if all(isinstance(k, _PLAIN_KEYS) for k in key):
        return None
    real = sum(1 for k in key if k is not None and k is not Ellipsis)
    axis = last = 0
    for k in key:
        if k is None:
            continue
        if k is Ellipsis:
            axis += ndim - real
            continue
        if not isinstance(k, slice):
            last = axis + 1
        axis += 1
    return tuple(range(last))


# -- negative_stride_views ---------------------------------------------------------------


def _reverses(key: Any) -> bool:
    """Whether an index key holds a slice with a negative step."""
    if isinstance(key, slice):
        return key.step is not None and key.step < 0
    if isinstance(key, tuple):
        return any(isinstance(k, slice) and k.step is not None and k.step < 0 for k in key)
    return False


def _negative_stride_apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    getitem = mx.array.__getitem__
    contiguous = mx.contiguous

    def __getitem__(self: Any, key: Any) -> Any:
        """``mx.array.__getitem__`` copying negative-step slices, as mlx < 0.30 needs (mlx-portable)."""
        if type(key) is int or not _reverses(key):
            return getitem(self, key)
        return contiguous(getitem(self, key))

    ctx.set_attr(mx.array, "__getitem__", __getitem__)


negative_stride_views = Patch(
    name="negative_stride_views",
    summary="a negative-step slice is copied, so slicing it again reads the right elements",
    why=(
        "mlx < 0.30.0 slices a view with negative strides from the wrong offset: "
        "mx.arange(12.).reshape(3, 4)[:, ::-1][0, 1:] gives [6, 5, 4] (right: [2, 1, 0]) with no "
        "error, and can read past the buffer (NaN); found by the behaviour sweep."
    ),
    apply=_negative_stride_apply,
    mlx_versions="<0.30.0",
    when="import",
    upstream="https://github.com/ml-explore/mlx/pull/2758",
)


# -- gather_view_order ----------------------------------------------------------------


def _gather_view_apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    array = mx.array
    getitem = array.__getitem__
    take = mx.take
    contiguous = mx.contiguous

    def __getitem__(self: Any, key: Any) -> Any:
        """``mx.array.__getitem__`` with mlx <= 0.31.2's gather-view misread avoided (mlx-portable)."""
        if isinstance(key, _VIEW_KEYS):
            return getitem(self, key)  # slices: a strided view, no gather
        shape = self.shape
        # Every gather of an index includes axis 0, so the rule needs a length-one
        # axis 0 and two more axes: any other array goes straight to mlx.
        if len(shape) < 3 or shape[0] != 1:
            return getitem(self, key)
        if type(key) is int:
            if gather_reads_in_memory_order(shape, (0,)):
                return getitem(self, (key,))  # a strided view: no gather
            return getitem(self, key)
        gathered = _tuple_gathered(len(shape), key) if isinstance(key, tuple) else (0,)
        if gathered and gather_reads_in_memory_order(shape, gathered):
            return getitem(contiguous(self), key)
        return getitem(self, key)

    def take_(a: Any, indices: Any, /, axis: Any = None, *, stream: Any = None) -> Any:
        """``mx.take`` with mlx <= 0.31.2's gather-view misread avoided (mlx-portable)."""
        if axis is None:
            return take(a, indices, stream=stream)
        if type(a) is array and type(indices) is array and a.ndim > 2:
            ax = axis + a.ndim if axis < 0 else axis
            if 0 <= ax < a.ndim and gather_reads_in_memory_order(a.shape, (ax,)):
                a = contiguous(a)
        return take(a, indices, axis, stream=stream)

    ctx.set_attr(array, "__getitem__", __getitem__)
    ctx.set_attr(mx, "take", take_)


gather_view_order = Patch(
    name="gather_view_order",
    summary="integer/array indexing and mx.take of transposed or expanded views read in index order",
    why=(
        "mlx <= 0.31.2's CPU gather copies a column-contiguous slice in memory order: "
        "mx.arange(6.).reshape(2, 3).T[None][0] gives [[0, 1], [2, 3], [4, 5]] with no error "
        "(mlx-audio's iSTFT reconstructs distorted audio)."
    ),
    apply=_gather_view_apply,
    mlx_versions="<0.32.0",
    when="import",
    upstream="https://github.com/ml-explore/mlx/pull/3647",
)


# -- empty_axis_take --------------------------------------------------------------------


def _empty_take_apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    array = mx.array
    getitem = array.__getitem__
    take = mx.take

    def __getitem__(self: Any, key: Any) -> Any:
        """``mx.array.__getitem__`` indexing arrays with a zero-size axis as mlx 0.30.4 does."""
        if self.size or isinstance(key, (slice, type(None), type(Ellipsis))):
            return getitem(self, key)
        if self.ndim and self.shape[0]:  # the indexed axis is not the empty one: an empty result
            if type(key) is int:
                return mx.zeros(tuple(self.shape[1:]), dtype=self.dtype)
            if isinstance(key, array) and key.dtype != mx.bool_:
                return mx.zeros(tuple(key.shape) + tuple(self.shape[1:]), dtype=self.dtype)
        # Tuples go through mlx's gather, which has no such check; an index into the
        # empty axis itself raises, as on 0.32.4.
        return getitem(self, key)

    def take_(a: Any, indices: Any, /, axis: Any = None, *, stream: Any = None) -> Any:
        """``mx.take`` from arrays with a zero-size axis as mlx 0.30.4 does."""
        if axis is None:
            return take(a, indices, stream=stream)
        if type(a) is array and not a.size and type(indices) is array and a.ndim:
            ax = axis + a.ndim if axis < 0 else axis
            if 0 <= ax < a.ndim and a.shape[ax]:
                shape = tuple(a.shape)
                return mx.zeros(shape[:ax] + tuple(indices.shape) + shape[ax + 1 :], dtype=a.dtype)
        return take(a, indices, axis, stream=stream)

    ctx.set_attr(array, "__getitem__", __getitem__)
    ctx.set_attr(mx, "take", take_)


empty_axis_take = Patch(
    name="empty_axis_take",
    summary="integer/array indexing and mx.take of arrays with a zero-size axis give empty results",
    why=(
        "mx.zeros((2, 0))[0]: ValueError: [take] Cannot do a non-empty take from an array with zero "
        "elements on mlx < 0.30.4 (mlx-vlm glm4v/ernie rope index on empty rows)."
    ),
    apply=_empty_take_apply,
    mlx_versions="<0.30.4",
    when="import",
    upstream="https://github.com/ml-explore/mlx/pull/3046",
)


PATCHES = (negative_stride_views, gather_view_order, empty_axis_take)
