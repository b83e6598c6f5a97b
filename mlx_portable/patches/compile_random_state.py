"""``compile_random_state``: compiled random functions advance the calling thread's key on mlx 0.31.2-0.32.0.

Why: mlx 0.31.2 gave each thread its own random key, and ``mx.random.state``
became the *calling thread's* list ``[key]``.  A function compiled with
``mx.compile(fun, inputs=mx.random.state, outputs=mx.random.state)`` (what
mlx-lm's ``make_sampler`` builds for every temperature > 0) captures the list
of the thread that built it.  Called from another thread, the trace draws
from that other thread's key, which is not among the compiled inputs, so it is
frozen into the graph as a constant: the random state never advances there,
and ``mx.random.seed`` in that thread has no effect.  Nothing fails; sampling
silently repeats itself -- 16 draws from fixed logits give 1 distinct token
(14-15 in the building thread).  ``mlx_lm.server`` generates in a worker
thread, so every sampled response there draws correlated numbers.  mlx-lm's
own ``test_sample_utils.py::test_sampler_prng_across_threads`` fails.

Which: mlx 0.31.2 and 0.32.0 (the versions with a thread-local key whose
``mx.random.state`` is a per-thread list), every backend.

How: ``mx.compile`` is wrapped.  When its ``inputs=`` or ``outputs=`` hold the
building thread's ``mx.random.state`` list (directly or inside lists, tuples
and dicts), the returned function compiles once per calling thread, with that
list replaced by the calling thread's own ``mx.random.state``; every other
captured object is passed on as the same object, so in-place updates of
captured model state keep working.  The building thread calls the original
compiled function.  Calls that capture no random state are not wrapped.  The
wrapper must be in place when the function is compiled: mlx-lm compiles its
samplers when ``mlx_lm.sample_utils`` is imported, which ``import
mlx_portable`` (or the start-up hook) precedes.

Upstream: ml-explore/mlx#3828 (0.32.1) made ``mx.random.state`` one
process-wide object that compiled functions resolve to the calling thread's
key; mlx-lm#1537 added the test.
"""

from __future__ import annotations

from _thread import _local  # threading.local itself; ``threading`` is not cheap to import

from ..registry.registry import Patch, obsolete

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext, Verdict

__all__ = ["PATCHES", "compile_random_state"]


def _holds(tree: Any, target: Any) -> bool:
    if tree is target:
        return True
    if isinstance(tree, (list, tuple)):
        return any(_holds(t, target) for t in tree)
    if isinstance(tree, dict):
        return any(_holds(t, target) for t in tree.values())
    return False


def _swap(tree: Any, old: Any, new: Any) -> Any:
    """``tree`` with ``old`` replaced by ``new``; containers off that path stay the same objects."""
    if tree is old:
        return new
    if not _holds(tree, old):
        return tree
    if isinstance(tree, tuple):
        return tuple(_swap(t, old, new) for t in tree)
    if isinstance(tree, list):
        return [_swap(t, old, new) for t in tree]
    return {k: _swap(v, old, new) for k, v in tree.items()}


def _wrap(original: Any, mx: Any) -> Any:
    def compile(fun: Any, inputs: Any = None, outputs: Any = None, shapeless: bool = False) -> Any:
        compiled = original(fun, inputs=inputs, outputs=outputs, shapeless=shapeless)
        if inputs is None and outputs is None:
            return compiled
        builder_state = mx.random.state
        if not (_holds(inputs, builder_state) or _holds(outputs, builder_state)):
            return compiled
        per_thread = _local()

        def call(*args: Any, **kwargs: Any) -> Any:
            state = mx.random.state
            if state is builder_state:
                return compiled(*args, **kwargs)
            mine = getattr(per_thread, "compiled", None)
            if mine is None:
                mine = original(
                    fun,
                    inputs=_swap(inputs, builder_state, state),
                    outputs=_swap(outputs, builder_state, state),
                    shapeless=shapeless,
                )
                per_thread.compiled = mine
            return mine(*args, **kwargs)

        for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
            try:
                setattr(call, attr, getattr(fun, attr))
            except (AttributeError, TypeError):
                pass
        call.__wrapped__ = fun  # type: ignore[attr-defined]
        return call

    compile.__doc__ = (original.__doc__ or "") + (
        "\n\nmlx-portable: a function capturing mx.random.state draws from the calling thread's key, "
        "as on mlx >= 0.32.1."
    )
    compile.__wrapped__ = original  # type: ignore[attr-defined]
    return compile


def _release(ctx: PatchContext) -> tuple[int, ...]:
    # A plain tuple, not packaging's Version: this check runs on ``import mlx_portable``.
    return tuple(int(p) for p in ctx.mlx_version.split(".")[:3] if p.isdigit())


def _check(ctx: PatchContext) -> Verdict | None:
    if _release(ctx) < (0, 31, 2):
        return obsolete(f"mlx {ctx.mlx_version} has one random key for every thread")
    # 0.32.1 registers the process-wide state object's class; reading
    # mx.random.state itself would create the key (and start the device).
    if hasattr(ctx.mx.random, "_RandomState"):
        return obsolete(f"mx.random.state is one object for every thread on mlx {ctx.mlx_version}")
    return None


def _apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    ctx.set_attr(mx, "compile", _wrap(mx.compile, mx))


compile_random_state = Patch(
    name="compile_random_state",
    summary="a function compiled with inputs/outputs=mx.random.state draws from the calling thread's key",
    why=(
        "mlx 0.31.2-0.32.0: a function compiled with inputs=mx.random.state in one thread does not advance "
        "the random state in another (mlx-lm's sampler repeats the same token in mlx_lm.server's worker "
        "thread), silently."
    ),
    apply=_apply,
    check=_check,
    mlx_versions=">=0.31.2,<0.32.1",
    when="import",
    upstream="https://github.com/ml-explore/mlx/pull/3828",
)

PATCHES = (compile_random_state,)
