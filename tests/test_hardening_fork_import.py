"""Forking while another thread's first ``activate()`` is still importing ``mlx_portable.activation``.

The child inherited the half-initialized module and its per-module import
lock, held by a thread that does not exist in the child: its first
``activate()`` waited forever (10 of 40 children in the audit), and the
at-fork handler printed ``partially initialized module
'mlx_portable.activation' has no attribute '_lock'``.  The handler now waits
for that import before the fork (and, should it not end in time, the child
imports the module afresh).  Each round is a fresh interpreter (the first
``activate()`` happens once per process); the fork is timed to land inside
the import; each child runs under an alarm, so a stuck child dies of
SIGALRM and is counted.
"""

from __future__ import annotations

import os
import signal

import pytest
from subproc import child_env, run_python

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")

RACE = """
import os, signal, sys, threading, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads (3.12+)
sys.setswitchinterval(1e-5)
import mlx_portable
from mlx_portable import _fork
mode = sys.argv[1]
_fork.set_enabled(mode != "off")
if mode == "no-wait":
    _fork.WAIT_S = 0.0  # the fallback: the child imports the half-imported modules afresh
go = threading.Event()
def first_activate():
    go.wait()
    mlx_portable.activate()
worker = threading.Thread(target=first_activate)
worker.start()
go.set()
state = "absent"
while state == "absent":  # fork as soon as the other thread is inside the import
    module = sys.modules.get("mlx_portable.activation")
    if module is not None:
        state = "importing" if getattr(module.__spec__, "_initializing", False) else "imported"
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


@pytest.mark.parametrize(("mode", "rounds"), [("on", 40), ("no-wait", 10)])
def test_fork_during_the_first_import_of_activation(mode: str, rounds: int) -> None:
    codes, states, errors = _rounds(mode, rounds)
    assert codes == [0] * rounds, f"children stuck (-{int(signal.SIGALRM)}) or failed: {codes}"
    assert "partially initialized" not in errors and "Traceback" not in errors, errors[-2000:]
    assert states.count("importing") >= rounds // 2, states  # the fork did land inside the import


def test_without_the_handler_children_get_stuck() -> None:
    codes, states, _ = _rounds("off", 4)
    stuck = [c for c, s in zip(codes, states, strict=True) if c == -signal.SIGALRM and s == "importing"]
    assert stuck, (codes, states)
