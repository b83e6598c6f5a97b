"""Forking while other threads activate and deactivate: the child never deadlocks."""

from __future__ import annotations

import os
import sys

import pytest
from helpers.shim_helpers import run_script

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")

# Two threads activate and deactivate in a loop; the main thread forks N
# times; each child activates and deactivates once under an alarm, so a
# deadlocked child dies of SIGALRM instead of hanging.
FORKS = """
import os, signal, sys, threading, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads (3.12+)
import mlx_portable
from mlx_portable import _fork
_fork.set_enabled(sys.argv[1] == "on")
forks = int(sys.argv[2])
alarm = float(sys.argv[3])
mlx_portable.activate()
stop = threading.Event()
def churn():
    while not stop.is_set():
        mlx_portable.activate()
        mlx_portable.deactivate()
workers = [threading.Thread(target=churn) for _ in range(2)]
for w in workers: w.start()
codes = []
for _ in range(forks):
    pid = os.fork()
    if pid == 0:
        signal.setitimer(signal.ITIMER_REAL, alarm)
        mlx_portable.activate()
        mlx_portable.deactivate()
        os._exit(0)
    codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
stop.set()
for w in workers: w.join()
print("hung:", sum(code == -signal.SIGALRM for code in codes), "of", len(codes))
print("clean:", sum(code == 0 for code in codes), "of", len(codes), flush=True)
"""


@pytest.mark.slow_every_mlx
def test_fifty_forks_under_activate_deactivate_load_never_deadlock(python_env: dict[str, str]) -> None:
    done = run_script(FORKS, python_env, "on", "50", "10", timeout=300)
    assert done.returncode == 0, done.stdout
    assert "clean: 50 of 50" in done.stdout, done.stdout


@pytest.mark.slow
def test_without_the_handler_a_child_deadlocks(python_env: dict[str, str]) -> None:
    done = run_script(FORKS, python_env, "off", "2", "1.5", timeout=300)
    assert done.returncode == 0, done.stdout
    assert "hung: 0 of" not in done.stdout, done.stdout


def test_handlers_registered_once_on_import() -> None:
    import mlx_portable  # noqa: F401
    from mlx_portable import _fork

    assert _fork._installed
    _fork.install()  # idempotent
    assert sys.modules["mlx_portable._fork"] is _fork
