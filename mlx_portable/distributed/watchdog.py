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


class _Monitor:
    """One daemon thread watching every armed deadline of the process.

    Arming and disarming cost a lock and a notify, not a thread start, so
    per-token evaluations in a pipeline pay microseconds for the watchdog.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, float, str]] = {}  # token -> (deadline, started, what)
        self._next = 0
        self._thread: threading.Thread | None = None

    def arm(self, timeout: float, what: str) -> int:
        now = time.monotonic()
        with self._cond:
            self._next += 1
            self._armed[self._next] = (now + timeout, now, what)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="mlx-portable-distributed-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
            return self._next

    def disarm(self, token: int) -> None:
        with self._cond:
            self._armed.pop(token, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                if not self._armed:
                    self._cond.wait()
                    continue
                token = min(self._armed, key=lambda t: self._armed[t][0])
                deadline, started, what = self._armed[token]
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                _expire(what, time.monotonic() - started)


_monitor = _Monitor()


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
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        self.timeout = timeout
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
    becomes a :class:`DistributedError` naming this rank.
    """
    if timeout == 0:
        timeout = None
    mx = _mlx.core()
    with Watchdog(timeout):
        try:
            mx.eval(*arrays)
        except RuntimeError as exc:
            text = str(exc)
            if "connection to a peer was lost" in text or text.startswith("[ring]"):
                raise DistributedError(
                    f"{_describe()}: a peer is gone ({text}); it probably died, see its output. "
                    "Restart the whole job."
                ) from exc
            raise
