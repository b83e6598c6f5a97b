"""float64 values: ``tolist``, arrays from Python numbers, ``linspace``.

Found by a client model or by the grown behaviour sweep
(``tools.apidiff.behaviour``, the ``edge_*`` probes); the version ranges
were measured on the real mlx-cpu wheels of every matrix mlx (0.26.5 0.27.1
0.28.0 0.29.4 0.30.0 0.30.6 0.31.2 0.32.0 0.32.4), and where a fix's first
release lies between two matrix versions the upstream commit names it.

``float64_tolist`` -- why: on mlx < 0.30.4 ``.tolist()`` of a float64 array
raises ``TypeError: data type cannot be converted to Python list.``
(ml-explore/mlx#3029; measured: 0.30.0 raises, 0.30.6 works).  The shim
reads float64 arrays through the buffer protocol (``memoryview``), which
every supported mlx exports for float64.

``float64_from_python`` -- why: on mlx < 0.30.1 ``mx.array(x, dtype=mx.float64)``
of Python floats goes through float32, silently: ``mx.array([0.1, 1e300],
dtype=mx.float64)`` holds ``[0.10000000149011612, inf]`` (ml-explore/mlx#2861;
measured: 0.30.0 rounds, 0.30.6 keeps).  The shim builds such arrays from a
float64 buffer (``array.array("d")``), bit for bit.  Costs one comparison per
``mx.array(..., dtype=...)`` call otherwise.

``float64_linspace`` -- why: on mlx < 0.30.4 ``mx.linspace(..., dtype=mx.float64)``
is computed in float32 (errors near 1e-8, silently; ml-explore/mlx#3029).  The
shim computes mlx 0.30.4's formula in float64.  (Python scalars combined with
float64 arrays, ``x + 0.1``, ``mx.full(s, 0.1, mx.float64)``, still go through
float32 on every mlx, 0.32.4 included: the same on every version, so not a
shim's business.)

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
    "exact_float64",
    "float64_from_python",
    "float64_linspace",
    "float64_tolist",
]


# -- float64_tolist ---------------------------------------------------------------------


def _tolist_apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    tolist = mx.array.tolist
    float64 = mx.float64

    def tolist_(self: Any) -> Any:
        """``mx.array.tolist`` that reads float64 arrays too (mlx-portable)."""
        if self.dtype == float64:
            return memoryview(self).tolist()
        return tolist(self)

    ctx.set_attr(mx.array, "tolist", tolist_)


float64_tolist = Patch(
    name="float64_tolist",
    summary="mx.array.tolist() of float64 arrays (read through the buffer protocol)",
    why="float64 .tolist(): TypeError: data type cannot be converted to Python list on mlx < 0.30.4.",
    apply=_tolist_apply,
    mlx_versions="<0.30.4",
    when="import",
    upstream="https://github.com/ml-explore/mlx/pull/3029",
)


# -- float64_from_python / float64_linspace --------------------------------------------


def exact_float64(mx: Any, val: Any) -> Any:
    """``val`` (a Python number or nested lists/tuples of them) as an exact float64 mx.array, or None.

    Through the buffer protocol: every supported mlx copies a float64
    buffer bit for bit when asked for float64.
    """
    import array as pyarray

    def nested(v: Any) -> tuple[list[float], tuple[int, ...]] | None:
        if isinstance(v, (float, int)) and not isinstance(v, bool):
            return [float(v)], ()
        if isinstance(v, (list, tuple)):
            if not v:
                return [], (0,)
            parts = [nested(item) for item in v]
            if any(p is None for p in parts):
                return None
            shapes = {p[1] for p in parts if p is not None}
            if len(shapes) != 1:
                return None  # ragged: mlx's own error
            flat = [x for p in parts if p is not None for x in p[0]]
            return flat, (len(v), *shapes.pop())
        return None

    found = nested(val)
    if found is None:
        return None
    flat, shape = found
    return mx.array(memoryview(pyarray.array("d", flat)), dtype=mx.float64).reshape(shape)


def _from_python_apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    init = mx.array.__init__
    float64 = mx.float64

    def __init__(self: Any, val: Any, dtype: Any = None) -> None:
        """``mx.array(...)`` keeping float64 precision of Python numbers (mlx >= 0.30.1's, mlx-portable)."""
        if dtype is None:
            init(self, val)
            return
        if dtype == float64 and isinstance(val, (float, list, tuple)):
            exact = exact_float64(mx, val)
            if exact is not None:
                val = exact
        init(self, val, dtype)

    ctx.set_attr(mx.array, "__init__", __init__)


float64_from_python = Patch(
    name="float64_from_python",
    summary="mx.array(python floats, dtype=mx.float64) keeps double precision",
    why=(
        "mx.array([0.1, 1e300], dtype=mx.float64) goes through float32 on mlx < 0.30.1: "
        "[0.10000000149011612, inf], silently."
    ),
    apply=_from_python_apply,
    mlx_versions="<0.30.1",
    when="import",
    upstream="https://github.com/ml-explore/mlx/pull/2861",
)


def _linspace_apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    linspace = mx.linspace
    float64 = mx.float64

    def linspace_(start: Any, stop: Any, num: int = 50, dtype: Any = None, **kwargs: Any) -> Any:
        """``mx.linspace`` computing float64 results in float64 (mlx >= 0.30.4's, mlx-portable)."""
        if dtype is None:
            return linspace(start, stop, num, **kwargs)
        if dtype != float64 or not isinstance(num, int) or num < 2:
            return linspace(start, stop, num, dtype, **kwargs)
        if not isinstance(start, (int, float)) or not isinstance(stop, (int, float)):
            return linspace(start, stop, num, dtype, **kwargs)

        def f64(x: float) -> Any:
            return exact_float64(mx, float(x))

        t = mx.arange(0, num, dtype=float64) / f64(num - 1)
        return (f64(1.0) - t) * f64(start) + t * f64(stop)  # mlx 0.30.4's formula, in float64

    ctx.set_attr(mx, "linspace", linspace_)


float64_linspace = Patch(
    name="float64_linspace",
    summary="mx.linspace(..., dtype=mx.float64) computed in float64",
    why=(
        "mx.linspace(0, 1, 7, dtype=mx.float64) is computed in float32 on mlx < 0.30.4: "
        "errors of 1e-8 in a float64 result, silently."
    ),
    apply=_linspace_apply,
    mlx_versions="<0.30.4",
    when="import",
    upstream="https://github.com/ml-explore/mlx/pull/3029",
)


PATCHES = (float64_tolist, float64_from_python, float64_linspace)
