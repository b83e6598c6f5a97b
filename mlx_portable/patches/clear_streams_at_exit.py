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
(``clear_streams_at_thread_end``, once ``threading`` is imported; a part of
``clear_streams_at_exit``, left out with it) after ``run()`` returned or
raised -- before ``join()`` returns, so a thread that is joined is clean --
and an ``atexit`` handler calls it in the main thread (``atexit`` runs
after the non-daemon threads were joined, and before mlx's own ``atexit``
handlers, which were registered earlier).
Threads started with ``_thread.start_new_thread`` or from C are not
covered (they must call ``mx.clear_streams()`` themselves), nor threads
already running when the patch applied -- as soon as ``mlx.core`` is
imported -- unless they call :func:`clear_this_thread`.

Why clearing is not enough before mlx 0.32.1: two of those thread-locals
take the GIL in their destructor -- the thread's random key (``mx.random``
in the thread, or sampling in mlx-lm) and the thread's compile cache once
the thread called ``mx.compile``.  ``clear_streams`` empties both only from
mlx 0.32.1 (ml-explore/mlx#4248); on 0.31.2 and 0.32.0 nothing public can.
The abort is then a race: ``threading`` lets the interpreter shut down as
soon as the Python side of a thread is gone, while its OS thread is still
running those destructors, waiting for the GIL; a thread that takes the GIL
of a finalizing interpreter is ended with ``pthread_exit``, whose unwinding
through the destructor (``noexcept``) is glibc's ``std::terminate``.  So the
``atexit`` handler also waits -- the GIL released -- until the OS threads of
the ``threading.Thread`` objects that ended are gone (Linux: their entry in
``/proc/self/task``; at most :data:`EXIT_WAIT` seconds, microseconds when the
destructors have nothing left to do).  Measured (CPU, 2 cores), 32 threads
drawing random numbers: ``clear_streams`` alone aborted 16 runs in 100 on
mlx 0.31.2 and 9 in 60 on 0.32.0; with the wait, none in 900 on 0.31.2
(three at once) and none in 60 on 0.32.0; ``mlx_lm.server`` stopped by
SIGINT or SIGTERM: 40/40 exit 0 on each (``benchmarks/clean_exit.py``).

Which: mlx >= 0.31.2 (detected by a native ``mx.clear_streams``), every
backend; below 0.31.2 streams and the random key are process-wide and
nothing needs clearing.  The wait is for Linux (where the abort is
glibc's); elsewhere only ``clear_streams`` runs.

Upstream: https://github.com/ml-explore/mlx/pull/3395 (the API),
ml-explore/mlx#3126 (exit from a sub-thread), Blaizzy/mlx-vlm#1945.
"""

from __future__ import annotations

import os
import sys

from ..registry.registry import Patch, get_original, obsolete

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..registry.registry import PatchContext, Verdict

__all__ = [
    "EXIT_WAIT",
    "PATCHES",
    "clear_streams_at_exit",
    "clear_streams_at_thread_end",
    "clear_this_thread",
]

_BOOTSTRAP = "_bootstrap_inner"

EXIT_WAIT = 2.0
"""Seconds the exit handler waits at most for ended threads' OS threads to be gone."""

_TASKS = "/proc/self/task"
_PRUNE_AT = 256
_ended: set[int] = set()
"""Native ids of threads whose ``run()`` returned; their OS thread may still be exiting."""
_TRACK = sys.platform.startswith("linux") and os.path.isdir(_TASKS)


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


def _os_thread_alive(native_id: int) -> bool:
    return os.path.exists(f"{_TASKS}/{native_id}")


def _note_ended(native_id: int | None) -> None:
    """Remember a thread that ends, for :func:`wait_for_ended_threads`; Linux only."""
    if native_id is None or not _TRACK:
        return
    if len(_ended) >= _PRUNE_AT:
        _ended.difference_update([tid for tid in list(_ended) if not _os_thread_alive(tid)])
    _ended.add(native_id)


def wait_for_ended_threads(timeout: float | None = None) -> int:
    """Wait, the GIL released, until ended threads' OS threads are gone; return how many were left.

    ``timeout`` defaults to :data:`EXIT_WAIT`, read at the call.

    Their C++ thread-locals are destroyed after the Python thread ended; before
    mlx 0.32.1 some of those destructors take the GIL, and must get it before
    the interpreter finalizes (see the module's docstring).
    """
    if not _ended:
        return 0
    import threading
    import time

    running = {thread.native_id for thread in threading.enumerate()}
    pending = [tid for tid in list(_ended) if tid not in running and _os_thread_alive(tid)]
    deadline = time.monotonic() + (EXIT_WAIT if timeout is None else timeout)
    while pending and time.monotonic() < deadline:
        time.sleep(0.001)
        pending = [tid for tid in pending if _os_thread_alive(tid)]
    _ended.clear()
    return len(pending)


def _daemons_running() -> bool:
    """Whether a thread other than the main one is still alive (at exit: a daemon thread)."""
    threading = sys.modules.get("threading")
    if threading is None:
        return False
    main = threading.main_thread()
    return any(t is not main and t.is_alive() for t in threading.enumerate())


def _at_exit() -> None:
    # With daemon threads still evaluating, the main thread's clear_streams() tears
    # down streams they may be using: exit aborted more often with it (measured,
    # benchmarks/clean_exit.py, the daemon row).  Leave them as mlx would.
    if not _daemons_running():
        clear_this_thread()
    wait_for_ended_threads()


def _wrap(original: Callable[[Any], None]) -> Callable[[Any], None]:
    def _bootstrap_inner(self: Any) -> None:
        try:
            original(self)
        finally:
            clear_this_thread()
            _note_ended(getattr(self, "native_id", None))

    return _bootstrap_inner


def _apply_threads(ctx: PatchContext) -> None:
    thread = ctx.module.Thread  # type: ignore[union-attr]
    if callable(getattr(thread, _BOOTSTRAP, None)):  # CPython 3.9-3.14
        ctx.wrap(thread, _BOOTSTRAP, _wrap)


def _apply(ctx: PatchContext) -> None:
    import atexit

    atexit.register(_at_exit)
    ctx.on_revert(lambda _ctx: atexit.unregister(_at_exit))


clear_streams_at_exit = Patch(
    name="clear_streams_at_exit",
    summary="calls mx.clear_streams() before interpreter exit, and waits for ended threads' OS threads",
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

# ``threading`` costs a millisecond and is not loaded by mlx: a patch of its
# own waits for it (no ``threading.Thread`` can exist before it is imported).
clear_streams_at_thread_end = Patch(
    name="clear_streams_at_thread_end",
    summary="calls mx.clear_streams() at the end of every threading.Thread, with clear_streams_at_exit",
    why=(
        "from mlx 0.31.2 a worker thread's streams are C++ thread-locals destroyed after Python let go of "
        "the thread: terminate called without an active exception (exit 134) at exit."
    ),
    apply=_apply_threads,
    check=_check,
    mlx_versions=">=0.31.2",
    when="import:threading",
    part_of="clear_streams_at_exit",
    upstream="https://github.com/ml-explore/mlx/pull/3395",
)

PATCHES = (clear_streams_at_exit, clear_streams_at_thread_end)
