"""``clear_streams_at_exit``: ``mx.clear_streams()`` at the end of every thread and before shutdown.

Why: from mlx 0.31.2 every thread owns its streams (thread-local command
encoders, each with a worker ``std::thread``), its compile cache and its
random key.  They are C++ ``thread_local`` objects, destroyed by the C
runtime after the Python thread has ended -- racing the interpreter's own
teardown.  A program that generates with mlx-lm in a worker thread, and
``mlx_lm.server`` stopped with Ctrl-C, then die at exit (exit 134, or -6 from
``subprocess``) in about half the runs, on every backend::

    terminate called without an active exception

mlx's answer (ml-explore/mlx#3395, "cleanup before exit"; restated in
ml-explore/mlx#4327) is that each thread calls ``mx.clear_streams()`` before
it ends, and the main thread before the interpreter shuts down; mlx's own
test runner does exactly that.  ``clear_streams`` destroys only the calling
thread's streams, compile cache and random key (and, from the main thread,
the thread-unsafe streams), so it is harmless in a thread that never used
mlx and costs microseconds.

What it does: ``threading.Thread``'s bootstrap calls ``mx.clear_streams()``
after ``run()`` returned or raised -- before ``join()`` returns, so a
thread that is joined is clean -- and an ``atexit`` handler calls it in the
main thread (``atexit`` runs after the non-daemon threads were joined, and
before mlx's own ``atexit`` handlers, which were registered earlier).
Threads started with ``_thread.start_new_thread`` or from C are not
covered (they must call ``mx.clear_streams()`` themselves), nor threads
already running when the patch applied -- as soon as ``mlx.core`` is
imported -- unless they call :func:`clear_this_thread`.

Which: mlx >= 0.31.2 (detected by a native ``mx.clear_streams``), every
backend; below 0.31.2 streams are process-wide and nothing needs clearing.
The abort seen most is the thread's random key (``mx.random`` in the thread,
or sampling in mlx-lm): its destructor takes the GIL of an interpreter that
is shutting down.  From mlx 0.32.1 ``clear_streams`` resets the key too
(ml-explore/mlx#4248); on 0.31.2-0.32.0 it does not, and nothing public can,
so there a thread that drew random numbers may still abort at exit (upgrade
mlx to >= 0.32.1).

Upstream: https://github.com/ml-explore/mlx/pull/3395 (the API),
ml-explore/mlx#3126 (exit from a sub-thread), Blaizzy/mlx-vlm#1945.
"""

from __future__ import annotations

import sys

from .registry import Patch, get_original, obsolete

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

    from .registry import PatchContext, Verdict

__all__ = ["PATCHES", "clear_streams_at_exit", "clear_this_thread"]

_BOOTSTRAP = "_bootstrap_inner"


def clear_this_thread() -> None:
    """``mx.clear_streams()`` for the calling thread, if mlx is loaded and has it; never raises."""
    mx = sys.modules.get("mlx.core")
    clear: Callable[[], None] | None = getattr(mx, "clear_streams", None)
    if clear is None:
        return
    try:
        clear()
    except Exception:  # at exit nothing must turn a clean stop into a traceback
        pass


def _native_clear_streams(mx: Any) -> bool:
    try:
        get_original(mx, "clear_streams")
    except AttributeError:
        return False
    return hasattr(mx, "clear_streams")


def _check(ctx: PatchContext) -> Verdict | None:
    if not _native_clear_streams(ctx.mx):
        return obsolete(f"mlx {ctx.mlx_version} keeps streams process-wide (no mx.clear_streams)")
    return None


def _wrap(original: Callable[[Any], None]) -> Callable[[Any], None]:
    def _bootstrap_inner(self: Any) -> None:
        try:
            original(self)
        finally:
            clear_this_thread()

    _bootstrap_inner.__wrapped__ = original  # type: ignore[attr-defined]
    _bootstrap_inner.__qualname__ = getattr(original, "__qualname__", _BOOTSTRAP)
    return _bootstrap_inner


def _wrap_threads(ctx: PatchContext, threading: ModuleType) -> None:
    thread = threading.Thread
    if callable(getattr(thread, _BOOTSTRAP, None)):  # CPython 3.9-3.14
        ctx.set_attr(thread, _BOOTSTRAP, _wrap(getattr(thread, _BOOTSTRAP)))


def _apply(ctx: PatchContext) -> None:
    import atexit

    atexit.register(clear_this_thread)
    ctx.on_revert(lambda _ctx: atexit.unregister(clear_this_thread))
    # ``threading`` costs a millisecond and is not loaded by mlx: wait for it
    # (no ``threading.Thread`` can exist before it is imported).
    ctx.after_import("threading", lambda module: _wrap_threads(ctx, module))


clear_streams_at_exit = Patch(
    name="clear_streams_at_exit",
    summary="calls mx.clear_streams() at the end of every threading.Thread and before interpreter exit",
    why=(
        "from mlx 0.31.2 each thread's streams are C++ thread-locals destroyed after Python let go of "
        "the thread; a program that used mlx in a worker thread then often aborts at exit: "
        "terminate called without an active exception (exit 134)."
    ),
    apply=_apply,
    check=_check,
    mlx_versions=">=0.31.2",
    when="import",
    upstream="https://github.com/ml-explore/mlx/pull/3395",
)

PATCHES = (clear_streams_at_exit,)
