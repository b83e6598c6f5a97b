"""Forking while another thread's first ``activate()`` is still importing ``mlx_portable.activation``.

The child inherited the half-initialized module and its per-module import
lock, held by a thread that does not exist in the child: its first
``activate()`` waited forever (10 of 40 children in the audit), and the
at-fork handler printed ``partially initialized module
'mlx_portable.activation' has no attribute '_lock'``.  The handler now waits
for that import before the fork.  Each round is a fresh interpreter (the first
``activate()`` happens once per process); an import hook holds the other
thread inside that import for 1 s, so every fork lands there; each child
runs under an alarm, so a stuck child dies of SIGALRM and is counted.
"""

from __future__ import annotations

import os
import signal

import pytest
from subproc import child_env, run_python

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")

RACE = """
import os, signal, sys, threading, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads (3.12+)
import mlx_portable
from mlx_portable import _fork
mode = sys.argv[1]
_fork.set_enabled(mode != "off")
inside = threading.Event()


class SlowNestedImport:
    # Holds the worker inside the import of mlx_portable.activation: the fork lands there, every run.

    def find_spec(self, name, path=None, target=None):
        module = sys.modules.get("mlx_portable.activation")
        if (
            threading.current_thread() is not threading.main_thread()
            and name.startswith("mlx_portable.")
            and module is not None
            and getattr(module.__spec__, "_initializing", False)
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
module = sys.modules.get("mlx_portable.activation")
state = "importing" if module is not None and getattr(module.__spec__, "_initializing", False) else "imported"
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


def test_fork_during_the_first_import_of_activation() -> None:
    rounds = 40
    codes, states, errors = _rounds("on", rounds)
    assert codes == [0] * rounds, f"children stuck (-{int(signal.SIGALRM)}) or failed: {codes}"
    assert "partially initialized" not in errors and "Traceback" not in errors, errors[-2000:]
    assert states == ["importing"] * rounds, states  # the fork did land inside the import


def test_without_the_handler_children_get_stuck() -> None:
    codes, states, _ = _rounds("off", 4)
    stuck = [c for c, s in zip(codes, states, strict=True) if c == -signal.SIGALRM and s == "importing"]
    assert stuck, (codes, states)
