"""Forking while another thread's first ``activate()`` is still importing mlx-portable's modules.

The child inherited the half-initialized module and its per-module import
lock, held by a thread that does not exist in the child: its first
``activate()`` waited forever (10 of 40 children in the audit), and the
at-fork handler printed ``partially initialized module
'mlx_portable.activation' has no attribute '_lock'``.  The handler now waits
for such an import before the fork, and for one whose finders are still
running (its lock held, the module not in ``sys.modules`` yet: the first
``activate()`` imports ``mlx_portable.activation``, then the backend and
report modules, one after the other, and a fork between two of them stuck 1
child in 12 until the handler looked at the held import locks too).  Each
round is a fresh interpreter (the first ``activate()`` happens once per
process); an import hook holds the other thread inside a nested import of
one of those modules for 1 s, so every fork lands there; each child runs
under an alarm, so a stuck child dies of SIGALRM and is counted.
"""

from __future__ import annotations

import os
import signal

import pytest
from helpers.subproc import child_env, run_python

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")

RACE = """
import os, signal, sys, threading, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads (3.12+)
import mlx_portable
from mlx_portable import _fork
mode = sys.argv[1]
_fork.set_enabled(mode != "off")
inside = threading.Event()


def initializing():
    return [
        m for n, m in list(sys.modules.items())
        if n.startswith("mlx_portable.") and getattr(getattr(m, "__spec__", None), "_initializing", False)
    ]


class SlowNestedImport:
    # Holds the worker inside a nested import of mlx-portable's modules: the fork lands there, every run.

    def find_spec(self, name, path=None, target=None):
        if (
            threading.current_thread() is not threading.main_thread()
            and name.startswith("mlx_portable.")
            and initializing()
            and not inside.is_set()
        ):
            inside.set()
            time.sleep(1.0)  # the fork comes long before this ends, even on a loaded machine
        return None


sys.meta_path.insert(0, SlowNestedImport())
worker = threading.Thread(target=lambda: mlx_portable.activate())  # the attribute is lazy: read it there
worker.start()
if not inside.wait(30):
    print("child", 0, "never-inside", flush=True)
    raise SystemExit(0)
state = "importing" if initializing() else "imported"
pid = os.fork()
if pid == 0:
    signal.setitimer(signal.ITIMER_REAL, 5)
    report = mlx_portable.activate()
    os._exit(0 if report.backend else 3)
code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
worker.join()
print("child", code, state, flush=True)
"""


def _rounds(mode: str, n: int) -> tuple[list[int], list[str], str]:
    codes, states, errors = [], [], ""
    for _ in range(n):
        done = run_python(RACE, mode, env=child_env(), timeout=120)
        words = done.stdout.split()
        assert done.returncode == 0 and len(words) == 3, done.stdout + done.stderr
        codes.append(int(words[1]))
        states.append(words[2])
        errors += done.stderr
    return codes, states, errors


@pytest.mark.slow_every_mlx
def test_fork_during_the_first_import_of_activation() -> None:
    rounds = 12  # every fork lands inside the import (the hook holds it there): no need for more
    codes, states, errors = _rounds("on", rounds)
    assert codes == [0] * rounds, f"children stuck (-{int(signal.SIGALRM)}) or failed: {codes}"
    assert "partially initialized" not in errors and "Traceback" not in errors, errors[-2000:]
    assert states == ["importing"] * rounds, states  # the fork did land inside the import


@pytest.mark.slow_every_mlx
def test_without_the_handler_children_get_stuck() -> None:
    codes, states, _ = _rounds("off", 2)
    stuck = [c for c, s in zip(codes, states, strict=True) if c == -signal.SIGALRM and s == "importing"]
    assert stuck, (codes, states)


def test_an_import_whose_finders_still_run_is_waited_for() -> None:
    """The window the race test hit 1 time in 12: the import lock held, the module not in sys.modules yet."""
    import sys
    import threading

    from mlx_portable import _fork

    name = "mlx_portable.zz_not_a_module"
    entered, release = threading.Event(), threading.Event()

    class HoldingFinder:
        def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
            if fullname == name:
                entered.set()
                release.wait(10)
            return None

    finder = HoldingFinder()
    sys.meta_path.insert(0, finder)

    def importing() -> None:
        try:
            __import__(name)
        except ImportError:
            pass

    worker = threading.Thread(target=importing)
    worker.start()
    try:
        assert entered.wait(10)
        assert name not in sys.modules
        assert name in _fork._importing_elsewhere()  # before the fix: [] (only sys.modules was looked at)
    finally:
        release.set()
        worker.join()
        sys.meta_path.remove(finder)
    assert name not in _fork._importing_elsewhere()
