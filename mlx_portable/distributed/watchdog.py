"""A rank whose peer died must fail, not hang.

What MLX's ring backend does when a peer dies (reproduced with two ranks on
127.0.0.1, the peer ending with ``os._exit``):

* mlx < 0.32.1: the socket thread logs ``[ring] Too many send/recv errors.
  Aborting...`` and stops, but never fails the pending transfer, so
  ``mx.eval`` waits forever (upstream fix: ml-explore/mlx#4060).
* mlx >= 0.32.1: ``mx.eval`` raises ``RuntimeError: [ring] connection to a
  peer was lost``.

A peer that is alive but stuck hangs every version, and the wait happens
inside C++ where Python cannot interrupt it.  So, as PyTorch's NCCL watchdog
does, :class:`Watchdog` ends the process when a distributed evaluation
outlives its limit: it prints what was being waited for, the rank, the
backend, the Python stack and the variable that sets the limit, then exits
with :data:`WATCHDOG_EXIT_CODE`.  Exiting closes this rank's sockets, so its
own neighbours fail in turn, and ``mlx.launch`` stops the remaining ranks
when one exits non-zero.  :func:`eval` evaluates under the watchdog and turns
MLX's ``[ring] connection to a peer was lost`` into a
:class:`DistributedError` that names the rank.
"""

from __future__ import annotations

import faulthandler
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from .. import _mlx
from .errors import DistributedError
from .launch_env import ENV_TIMEOUT, rank_and_size, timeout_seconds

__all__ = ["WATCHDOG_EXIT_CODE", "GuardProcess", "Watchdog", "eval"]

#: Exit status of a rank ended by the watchdog (as ``timeout(1)``).
WATCHDOG_EXIT_CODE = 124

_UNSET: Any = object()


def _describe_unstarted() -> str:
    rank, size = rank_and_size()
    rank = rank if rank is not None else -1
    return f"rank {rank} of {size or 0} (distributed backend not initialized by mlx_portable)"


#: What the messages call this rank, and the limit when none is given.  The
#: group module (which imports this one, not the other way round) installs
#: its own answers through :func:`use_group_state` once ``init()`` can run;
#: until then nothing was started, and the launcher's environment answers.
_rank_description: Callable[[], str] = _describe_unstarted
_default_timeout: Callable[[], float | None] = timeout_seconds


def use_group_state(describe: Callable[[], str], default_timeout: Callable[[], float | None]) -> None:
    """Let messages and limits follow the group started by ``init()``."""
    global _rank_description, _default_timeout
    _rank_description, _default_timeout = describe, default_timeout


def _describe() -> str:
    return _rank_description()


class _Flight:
    """One thread's :func:`eval` calls: written only by that thread, read by the monitor."""

    __slots__ = ("entered", "left", "limit")

    def __init__(self) -> None:
        self.entered = 0  # evaluations started
        self.left = 0  # evaluations finished (or failed)
        self.limit: float | None = None  # seconds without progress that end the process


class _Monitor:
    """One long-lived daemon thread that polls the process's distributed evaluations.

    :func:`eval` costs two integer increments on its thread's :class:`_Flight`
    (no lock, no clock, no wake-up); the thread, waking once per interval (a
    quarter of the shortest limit, at most 1 s), sees an evaluation in flight
    whose counters have not moved for ``limit`` seconds and ends the process.
    Waking the thread on every evaluation through a condition variable, as
    this did before, cost ~10 us per ``eval`` and made a 4 KiB ring
    ``all_sum`` 1.3-1.5x slower on a loaded 2-core machine.  An evaluation
    cannot nest inside another on the same thread, so counters suffice;
    :class:`Watchdog` blocks, which may hold many evaluations, keep exact
    deadlines in a dict (one store and one pop, atomic under the GIL).
    """

    _MAX_INTERVAL = 1.0

    def __init__(self) -> None:
        self._armed: dict[int, tuple[float, float, str]] = {}  # token -> (deadline, started, what)
        self._tokens = itertools.count(1)
        self._local = threading.local()
        self._flights: list[_Flight] = []
        self._stalled: dict[int, tuple[int, int, float]] = {}  # id(flight) -> (entered, left, since)
        self._interval = self._MAX_INTERVAL
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def flight(self) -> _Flight:
        """This thread's :class:`_Flight`."""
        try:
            return self._local.flight  # type: ignore[no-any-return]
        except AttributeError:
            flight = self._local.flight = _Flight()
            self._flights.append(flight)
            return flight

    def set_limit(self, flight: _Flight, limit: float | None) -> None:
        """Watch ``flight`` with ``limit`` seconds (``None``: not at all) from now on."""
        flight.limit = limit
        if limit is not None:
            self._start(limit)

    def arm(self, timeout: float, what: str) -> int:
        """Watch a deadline ``timeout`` seconds from now; return the token that disarms it."""
        token = next(self._tokens)
        now = time.monotonic()
        self._armed[token] = (now + timeout, now, what)
        self._start(timeout)
        return token

    def disarm(self, token: int) -> None:
        self._armed.pop(token, None)

    def _start(self, timeout: float) -> None:
        if self._thread is not None and timeout >= 4 * self._interval:
            return
        self._interval = min(self._interval, max(timeout / 4, 0.005))
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="mlx-portable-distributed-watchdog", daemon=True
            )
            self._thread.start()
        self._wake.set()  # re-read the interval now

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            now = time.monotonic()
            for deadline, started, what in list(self._armed.values()):
                if now >= deadline:
                    _expire(what, now - started)
            for flight in list(self._flights):
                self._check(flight, now)

    def _check(self, flight: _Flight, now: float) -> None:
        limit, entered, left = flight.limit, flight.entered, flight.left
        key = id(flight)
        if limit is None or entered == left:
            self._stalled.pop(key, None)
            return
        seen = self._stalled.get(key)
        if seen is None or seen[:2] != (entered, left):
            # Progress since the last look (or a first look): the clock restarts,
            # so a stuck evaluation ends the process between ``limit`` and
            # ``limit`` plus one interval after it began, never earlier.
            self._stalled[key] = (entered, left, now)
        elif now - seen[2] >= limit:
            _expire(_EVAL_WHAT, now - seen[2])

    def _after_fork(self) -> None:
        # The thread does not survive fork(); the child starts its own on first use.
        self._thread = None
        self._armed.clear()
        self._flights = []
        self._stalled.clear()
        self._local = threading.local()


_monitor = _Monitor()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_monitor._after_fork)


def _expire(what: str, waited: float) -> None:
    message = (
        f"mlx-portable: {_describe()}: {what} made no progress for {waited:.1f} s, so a peer "
        "probably died or hangs (check the other ranks' output). Ending this rank with exit status "
        f"{WATCHDOG_EXIT_CODE} so the others fail too instead of waiting forever. If the work is "
        f"legitimately that slow, raise {ENV_TIMEOUT} (seconds; 0 waits forever).\n"
    )
    try:
        sys.stdout.flush()
        sys.stderr.write(message)
        sys.stderr.write("Python stack of every thread at that moment:\n")
        sys.stderr.flush()
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
    finally:
        os._exit(WATCHDOG_EXIT_CODE)


class Watchdog:
    """Ends the process if the ``with`` block runs longer than ``timeout`` seconds.

    ``timeout`` left out uses ``init(timeout=...)`` or
    ``MLX_PORTABLE_DISTRIBUTED_TIMEOUT`` (default 600 s); ``None`` disables
    it.  ``what`` says what was being waited for.  Works only around calls
    that release the GIL, such as ``mx.eval`` (see :class:`GuardProcess`).
    """

    def __init__(self, timeout: float | None = _UNSET, *, what: str = "a distributed evaluation") -> None:
        if timeout is _UNSET:
            timeout = _default_timeout()
        from ..validation import require_timeout

        self.timeout = require_timeout(timeout, "timeout")
        self.what = what
        self._token: int | None = None

    def __enter__(self) -> Watchdog:
        if self.timeout is not None:
            self._token = _monitor.arm(self.timeout, self.what)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _monitor.disarm(self._token)
            self._token = None


# The guard's program: wait for the parent to close our stdin (done, or the
# parent died); past the deadline, explain and end the parent.
_GUARD_CODE = """
import os, select, signal, sys, time
ppid, timeout, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
ready, _, _ = select.select([sys.stdin], [], [], timeout)
if ready or os.getppid() != ppid:
    sys.exit(0)
sys.stderr.write(message)
sys.stderr.flush()
for sig in (signal.SIGTERM, signal.SIGKILL):
    try:
        os.kill(ppid, sig)
    except ProcessLookupError:
        break
    for _ in range(40):  # the parent is gone once this process is reparented
        if os.getppid() != ppid:
            sys.exit(0)
        time.sleep(0.05)
"""


class GuardProcess:
    """A watchdog for calls that hold the GIL, such as ``mx.distributed.init``.

    ``mx.distributed.init`` blocks in ``accept()`` until every peer connects,
    without releasing the GIL, so no Python thread can run meanwhile.  This
    guard is a small child process instead: past ``timeout`` seconds it
    prints ``message`` and ends this process (SIGTERM, then SIGKILL); leaving
    the ``with`` block in time dismisses it.
    """

    def __init__(self, timeout: float | None, message: str) -> None:
        self.timeout = timeout
        self.message = message
        self._proc: Any = None

    def __enter__(self) -> GuardProcess:
        if self.timeout is not None:
            import subprocess

            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    "-c",
                    _GUARD_CODE,
                    str(os.getpid()),
                    str(self.timeout),
                    self.message,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                close_fds=True,
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except Exception:
                proc.kill()
                proc.wait()


def eval(*arrays: Any, timeout: float | None = _UNSET) -> None:
    """``mx.eval(*arrays)`` that fails instead of hanging when a peer is gone.

    ``timeout`` (seconds) defaults to ``init(timeout=...)`` or
    ``MLX_PORTABLE_DISTRIBUTED_TIMEOUT`` (600 s); ``None`` or ``0`` waits
    forever.  MLX's ``[ring] connection to a peer was lost`` (mlx >= 0.32.1)
    becomes a :class:`DistributedError` naming this rank.  The watchdog's
    share is two integer increments (``benchmarks/all_sum.py`` measures it).
    """
    if timeout is _UNSET:
        timeout = _default_timeout()
    elif timeout is not None:
        from ..validation import require_timeout

        timeout = require_timeout(timeout, "eval(timeout=...)")
    try:
        flight = _monitor._local.flight
    except AttributeError:
        flight = _monitor.flight()
    if timeout != flight.limit:
        _monitor.set_limit(flight, timeout)
    flight.entered += 1
    try:
        (_mlx.loaded or _mlx.core()).eval(*arrays)
    except RuntimeError as exc:
        text = str(exc)
        if "connection to a peer was lost" in text or text.startswith("[ring]"):
            raise DistributedError(
                f"{_describe()}: a peer is gone ({text}); it probably died, see its output. "
                "Restart the whole job."
            ) from exc
        raise
    finally:
        flight.left += 1


_EVAL_WHAT = "a distributed evaluation"
