"""``compile_constants``: functions made by ``mx.compile`` accept ``None`` arguments on mlx < 0.29.

Why: mlx 0.29 lets a compiled function take ``None`` anywhere in its
arguments (top level, keyword, or inside a tuple, list or dict), as it takes
ints, floats, bools and strings.  mlx-lm 0.32 relies on it: its compiled
helpers are called with optional arguments left at ``None`` (the gated-delta
step's ``mask``, the SSM and RWKV-7 steps' optional state, activation
helpers with optional gates).  On older mlx every such call fails::

    ValueError: [compile] Function arguments must be trees of arrays or
    constants (floats, ints, or strings), but received type NoneType.

Which: mlx < 0.29.0, every backend.  ``None`` is the only constant newer mlx
accepts that older mlx rejects (checked on 0.26.5, 0.28.0, 0.29.4 and
0.32.4 for ``None``, bool, int, float, str, bytes, complex and arbitrary
objects at the top level, as keywords and inside containers; outputs were
never restricted).

How: ``mx.compile`` is wrapped.  The function it returns replaces each
``None`` in the arguments by a private string constant before calling the
real compiled function, and the traced function turns that string back into
``None`` before calling the user's function -- so the trace sees exactly what
it would on newer mlx, a constant is part of the compile cache key as there,
and calls without ``None`` go straight through.  ``inputs=``, ``outputs=``
and ``shapeless=`` are passed on unchanged.  This replaces the narrower
``gated_delta_ops_compile_none`` patch, which rerouted one mlx-lm function.

Upstream: ml-explore/mlx 0.29.0 (``compile`` accepts ``None`` arguments).
"""

from __future__ import annotations

import functools  # loaded by mlx.core already

from ..registry.registry import Patch, obsolete

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext, Verdict

__all__ = ["PATCHES", "compile_constants"]

#: What a ``None`` argument travels as through the compiled function.
NONE_MARK = "\x00mlx_portable.None\x00"


def _has_none(tree: Any) -> bool:
    if tree is None:
        return True
    if isinstance(tree, (list, tuple)):
        return any(_has_none(t) for t in tree)
    if isinstance(tree, dict):
        return any(_has_none(t) for t in tree.values())
    return False


def _swap(tree: Any, old: Any, new: Any) -> Any:
    if tree is old or (old is not None and isinstance(tree, str) and tree == old):
        return new
    if isinstance(tree, tuple):
        return tuple(_swap(t, old, new) for t in tree)
    if isinstance(tree, list):
        return [_swap(t, old, new) for t in tree]
    if isinstance(tree, dict):
        return {k: _swap(v, old, new) for k, v in tree.items()}
    return tree


def _wrap(original: Any) -> Any:
    def compile(fun: Any, inputs: Any = None, outputs: Any = None, shapeless: bool = False) -> Any:
        def traced(*args: Any, **kwargs: Any) -> Any:
            return fun(*_swap(args, NONE_MARK, None), **_swap(kwargs, NONE_MARK, None))

        compiled = original(traced, inputs=inputs, outputs=outputs, shapeless=shapeless)

        @functools.wraps(fun)
        def call(*args: Any, **kwargs: Any) -> Any:
            if _has_none(args) or _has_none(kwargs):
                args, kwargs = _swap(args, None, NONE_MARK), _swap(kwargs, None, NONE_MARK)
            return compiled(*args, **kwargs)

        return call

    return compile


def _release(ctx: PatchContext) -> tuple[int, ...]:
    # A plain tuple, not packaging's Version: this check runs on ``import mlx_portable``.
    return tuple(int(p) for p in ctx.mlx_version.split(".")[:3] if p.isdigit())


def _check(ctx: PatchContext) -> Verdict | None:
    if _release(ctx) >= (0, 29, 0):
        return obsolete(f"mx.compile accepts None arguments on mlx {ctx.mlx_version}")
    return None


def _apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    ctx.wrap(
        mx,
        "compile",
        _wrap,
        doc="\n\nmlx-portable: the returned function accepts None arguments, as mlx >= 0.29's does.",
    )


compile_constants = Patch(
    name="compile_constants",
    summary="functions from mx.compile accept None arguments (passed through the trace as a constant)",
    why=(
        "mlx-lm 0.32 calls compiled functions with None arguments; mlx < 0.29.0: ValueError: [compile] "
        "Function arguments must be trees of arrays or constants (floats, ints, or strings), but received "
        "type NoneType."
    ),
    apply=_apply,
    check=_check,
    mlx_versions="<0.29.0",
    when="import",
    upstream="https://github.com/ml-explore/mlx/releases/tag/v0.29.0",
)

PATCHES = (compile_constants,)
