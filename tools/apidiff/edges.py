"""The edge classes of the behaviour sweep: where real models met mlx differences the op cases missed.

Why: the op cases (:mod:`.behaviour`) run ordinary shapes in three float
dtypes; client models then found a silently wrong index of a transposed
view, a SIGFPE in ``cumsum`` of an empty array, an empty-axis index error,
float64 ``tolist``, mask assignment and ``tile`` arguments.  Each belongs to
a class of inputs, and each class is swept here so that the next member is
found by the sweep:

* ``edge_shape_<op>``: zero-size and one-element shapes on every axis
  (``(0, 3)``, ``(3, 0)``, ``(1, 3)``, ``(3, 1)``, ``(0,)``, ``(1,)``), each
  reduction, scan, sort, index and join over every axis;
* ``edge_dtype_<op>/<dtype>``: float64, float16, bfloat16, int32, int64,
  uint8 and bool for every op that some mlx accepts them in;
* ``edge_view_<view>_<index>``: ``__getitem__`` / ``__setitem__`` and
  ``take`` with integer, slice, array and boolean-mask indices on
  transposed, expanded, strided and broadcast views, each result compared
  element by element with NumPy in the probe itself (a difference raises);
* ``edge_arg_<what>``: arguments an older or newer mlx accepts (array
  scalars where Python numbers are expected, and the reverse);
* ``edge_f64_<what>``: float64 values made from Python numbers, compared
  bit for bit with NumPy's double arithmetic in the probe itself.

Each probe is one case of the sweep: it runs in the sweep's child
interpreter, so a probe that kills the process is recorded as such and the
sweep goes on.  Names are built here without importing mlx.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

__all__ = ["EDGE_CASES", "EDGE_DTYPES", "edge_cases", "edge_dtypes"]

Case = Callable[[Any, Callable[..., Any]], Any]

#: The dtypes of the dtype class; the other classes run in float32.
EDGE_DTYPES = ("float32", "float64", "float16", "bfloat16", "int32", "int64", "uint8", "bool_")

_SHAPES: tuple[tuple[int, ...], ...] = ((0, 3), (3, 0), (1, 3), (3, 1), (0,), (1,))
_SHAPE_OPS = [
    "cumsum",
    "cumprod",
    "cummax",
    "cummin",
    "logcumsumexp",
    "sum",
    "mean",
    "max",
    "prod",
    "logsumexp",
    "softmax",
    "sort",
    "argsort",
    "index_int",
    "index_array",
    "take",
    "concatenate",
    "matmul",
]
_DTYPE_OPS = [
    "tolist",
    "item_sum",
    "cumsum",
    "sum",
    "max",
    "matmul",
    "sort",
    "take",
    "index_int",
    "index_array",
    "setitem",
    "where",
    "maximum",
    "abs",
    "concatenate",
    "transpose_copy",
]
_VIEWS = ("transposed", "expanded_transposed", "expanded", "strided", "broadcast", "transposed_3d")
_INDICES = [
    "get_int",
    "get_neg_int",
    "get_slice",
    "get_array",
    "get_tuple_int",
    "get_tuple_array",
    "get_ellipsis_int",
    "take_first",
    "take_last",
    "set_int",
    "set_slice",
    "set_array",
    "set_mask",
]
_ARGS = [
    "tile_array_scalar",
    "tile_array_reps",
    "zeros_array_shape",
    "full_array_fill",
    "repeat_array_count",
    "roll_array_shift",
    "topk_array_k",
    "pad_array_width",
    "take_python_int",
    "where_python_numbers",
    "clip_python_bounds",
    "maximum_python_number",
    "index_array_scalar",
    "arange_array_bounds",
    "rope_array_offset",
]

_F64 = ["from_python", "linspace"]

EDGE_CASES: tuple[str, ...] = (
    tuple(f"edge_shape_{op}" for op in _SHAPE_OPS)
    + tuple(f"edge_dtype_{op}" for op in _DTYPE_OPS)
    + tuple(f"edge_view_{view}_{index}" for view in _VIEWS for index in _INDICES)
    + tuple(f"edge_arg_{what}" for what in _ARGS)
    + tuple(f"edge_f64_{what}" for what in _F64)
)


def edge_dtypes(name: str) -> tuple[str, ...]:
    """The dtypes edge case ``name`` runs in."""
    if name.startswith("edge_f64_"):
        return ("float64",)
    return EDGE_DTYPES if name.startswith("edge_dtype_") else ("float32",)


def _pack(mx: Any, parts: list[Callable[[], Any]]) -> Any:
    """One float32 vector of several results: per part its rank, shape and values, or -999 if it raised.

    An error in one part is a value (so the other parts are still compared);
    a part that kills the process kills the probe, which the sweep records.
    """
    out: list[float] = []
    for part in parts:
        try:
            y = part()
            mx.eval(y)
            y = y.astype(mx.float32)
            out += [float(y.ndim), *map(float, y.shape), *y.reshape(-1).tolist()]
        except Exception:  # recorded as a value: an error where 0.32.4 computes is a finding
            out.append(-999.0)
    return mx.array(out, dtype=mx.float32)


def _shape_case(op: str) -> Case:
    def run(mx: Any, r: Callable[..., Any]) -> Any:
        parts: list[Callable[[], Any]] = []
        for shape in _SHAPES:
            x = r(*shape)
            for axis in range(len(shape)):
                parts.append(functools.partial(_shape_op, mx, op, x, axis))
        return _pack(mx, parts)

    return run


def _shape_op(mx: Any, op: str, x: Any, axis: int) -> Any:
    if op in ("cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "sort", "argsort", "softmax"):
        return getattr(mx, op)(x, axis=axis)
    if op in ("sum", "mean", "max", "prod", "logsumexp"):
        return getattr(mx, op)(x, axis=axis)
    if op == "index_int":
        moved = mx.moveaxis(x, axis, 0)
        return moved[0] if x.shape[axis] else moved[:0]
    if op == "index_array":
        n = x.shape[axis]
        return mx.moveaxis(x, axis, 0)[mx.array([n - 1, 0] if n else [], dtype=mx.int32)]
    if op == "take":
        n = x.shape[axis]
        return mx.take(x, mx.array([0, n - 1] if n else [], dtype=mx.int32), axis=axis)
    if op == "concatenate":
        return mx.concatenate([x, x], axis=axis)
    if op == "matmul":
        m = x.reshape((*x.shape, 1)) if x.ndim == 1 else x
        return mx.swapaxes(m, 0, 1) @ m if axis == 0 else m @ mx.swapaxes(m, 0, 1)
    raise ValueError(f"unknown shape op {op}")


def _dtype_case(op: str) -> Case:
    def run(mx: Any, r: Callable[..., Any]) -> Any:
        x = r(3, 4)
        if op == "tolist":
            return mx.array(x.tolist())
        if op == "item_sum":
            return mx.array(x[1, 2].item())
        if op == "cumsum":
            return mx.cumsum(x, axis=1)
        if op == "sum":
            return mx.sum(x, axis=0)
        if op == "max":
            return mx.max(x, axis=1)
        if op == "matmul":
            return x @ x.T
        if op == "sort":
            return mx.sort(x, axis=1)
        if op == "take":
            return mx.take(x, mx.array([2, 0]), axis=1)
        if op == "index_int":
            return x.T[None][0]
        if op == "index_array":
            return x[mx.array([2, 0])]
        if op == "setitem":
            y = r(3, 4)
            y[1] = x[0]
            return y
        if op == "where":
            return mx.where(mx.arange(12).reshape(3, 4) % 2 == 0, x, r(3, 4))
        if op == "maximum":
            return mx.maximum(x, r(3, 4))
        if op == "abs":
            return mx.abs(x)
        if op == "concatenate":
            return mx.concatenate([x, x.T.reshape(3, 4)], axis=0)
        if op == "transpose_copy":
            return x.T.reshape(12)
        raise ValueError(f"unknown dtype op {op}")

    return run


def _view(mx: Any, np: Any, view: str) -> tuple[Any, Any]:
    """``(mlx view, NumPy view)`` of the same values."""
    base = np.arange(24, dtype=np.float32)
    if view == "transposed":
        a = base[:12].reshape(3, 4)
        return mx.array(a).T, a.T
    if view == "expanded_transposed":
        a = base[:6].reshape(2, 3)
        return mx.array(a).T[None], a.T[None]
    if view == "expanded":
        a = base[:12].reshape(3, 4)
        return mx.array(a)[:, None], a[:, None]
    if view == "strided":
        a = base.reshape(6, 4)
        return mx.array(a)[::2, ::-2], a[::2, ::-2]
    if view == "broadcast":
        a = base[:3].reshape(3, 1)
        return mx.broadcast_to(mx.array(a), (3, 4)), np.broadcast_to(a, (3, 4))
    if view == "transposed_3d":
        a = base.reshape(4, 3, 2)
        return mx.array(a).transpose(2, 1, 0), a.transpose(2, 1, 0)
    raise ValueError(f"unknown view {view}")


def _view_case(view: str, index: str) -> Case:
    def run(mx: Any, r: Callable[..., Any]) -> Any:
        import numpy as np

        x, ref = _view(mx, np, view)
        ref = np.array(ref)  # a writable copy: mlx arrays are values
        if index == "get_int":
            got, want = x[1 if x.shape[0] > 1 else 0], ref[1 if ref.shape[0] > 1 else 0]
        elif index == "get_neg_int":
            got, want = x[-1], ref[-1]
        elif index == "get_slice":
            got, want = x[1:], ref[1:]
        elif index == "get_array":
            got, want = x[mx.array([0, -1, 0])], ref[np.array([0, -1, 0])]
        elif index == "get_tuple_int":
            got, want = x[0, 1:], ref[0, 1:]
        elif index == "get_tuple_array":
            got, want = x[mx.array([0, 0]), 1:], ref[np.array([0, 0]), 1:]
        elif index == "get_ellipsis_int":
            got, want = x[..., 0], ref[..., 0]
        elif index == "take_first":
            got, want = mx.take(x, mx.array([0, 0]), axis=0), np.take(ref, [0, 0], axis=0)
        elif index == "take_last":
            got, want = mx.take(x, mx.array([1, 0]), axis=-1), np.take(ref, [1, 0], axis=-1)
        else:
            got = x
            value = -(np.arange(ref[0].size, dtype=np.float32) + 1).reshape(ref[0].shape)
            if index == "set_int":
                got[0] = mx.array(value)
                ref[0] = value
            elif index == "set_slice":
                got[1:] = 7.0
                ref[1:] = 7.0
            elif index == "set_array":
                got[mx.array([0])] = mx.array(value)[None]
                ref[np.array([0])] = value[None]
            elif index == "set_mask":
                mask = np.arange(ref.size).reshape(ref.shape) % 3 == 0
                got[mx.array(mask)] = mx.array(-np.arange(int(mask.sum()), dtype=np.float32))
                ref[mask] = -np.arange(int(mask.sum()), dtype=np.float32)
            else:
                raise ValueError(f"unknown index {index}")
            want = ref
        mx.eval(got)
        values = np.array(got)
        if values.shape != np.shape(want) or not np.array_equal(values, want):
            raise AssertionError(f"differs from NumPy: {values.tolist()} != {np.asarray(want).tolist()}")
        return got

    return run


def _arg_case(what: str) -> Case:
    def run(mx: Any, r: Callable[..., Any]) -> Any:
        x = r(4, 3)
        two = mx.array(2)
        if what == "tile_array_scalar":
            return mx.tile(x, [mx.array(2.0), 1])
        if what == "tile_array_reps":
            return mx.tile(x, mx.array(2))
        if what == "zeros_array_shape":
            return mx.zeros((two, 3))
        if what == "full_array_fill":
            return mx.full((2, 3), mx.array(1.5))
        if what == "repeat_array_count":
            return mx.repeat(x, two, axis=0)
        if what == "roll_array_shift":
            return mx.roll(x, two, axis=0)
        if what == "topk_array_k":
            return mx.sort(mx.topk(x, two, axis=0), axis=0)
        if what == "pad_array_width":
            return mx.pad(x, [(two, 0), (0, 1)])
        if what == "take_python_int":
            return mx.take(x, 1, axis=0)
        if what == "where_python_numbers":
            return mx.where(x > 0, 1.0, -1.0)
        if what == "clip_python_bounds":
            return mx.clip(x, -0.5, 0.5)
        if what == "maximum_python_number":
            return mx.maximum(x, 0.0)
        if what == "index_array_scalar":
            return x[two]
        if what == "arange_array_bounds":
            return mx.arange(mx.array(1), mx.array(5))
        if what == "rope_array_offset":
            return mx.fast.rope(r(1, 2, 3, 8), 8, traditional=False, base=10000.0, scale=1.0, offset=two)
        raise ValueError(f"unknown argument probe {what}")

    return run


def _f64_case(what: str) -> Case:
    def run(mx: Any, r: Callable[..., Any]) -> Any:
        import numpy as np

        if what == "from_python":
            values = [[0.1, 1 / 3, -2.718281828459045], [1e300, 1e-300, 7.0]]
            got, want = mx.array(values, dtype=mx.float64), np.array(values, dtype=np.float64)
        elif what == "linspace":
            t = np.arange(7, dtype=np.float64) / 6.0  # mlx's formula, in double
            got, want = mx.linspace(0.1, 2.3, 7, dtype=mx.float64), (1.0 - t) * 0.1 + t * 2.3
        else:
            raise ValueError(f"unknown float64 probe {what}")
        values_got = np.array(got)
        if values_got.dtype != np.float64 or not np.array_equal(values_got, want):
            raise AssertionError(f"differs from NumPy's float64: {values_got.tolist()} != {want.tolist()}")
        return got

    return run


def edge_cases() -> dict[str, Case]:
    """``name -> fn(mx, rand)`` for every edge case (``rand`` as in :func:`.behaviour.run_cases`)."""
    cases: dict[str, Case] = {}
    for op in _SHAPE_OPS:
        cases[f"edge_shape_{op}"] = _shape_case(op)
    for op in _DTYPE_OPS:
        cases[f"edge_dtype_{op}"] = _dtype_case(op)
    for view in _VIEWS:
        for index in _INDICES:
            cases[f"edge_view_{view}_{index}"] = _view_case(view, index)
    for what in _ARGS:
        cases[f"edge_arg_{what}"] = _arg_case(what)
    for what in _F64:
        cases[f"edge_f64_{what}"] = _f64_case(what)
    return cases
