"""``mlx-portable run script.py`` exits and reports exactly as ``python script.py`` does.

Findings: ``sys.exit(2**100)`` exited 0 where python exits 255 (a failure
turned into success), ``sys.exit(X())`` whose ``__str__`` raises gave a
traceback, the script's own ``sys.excepthook`` was bypassed, and a
``SyntaxError`` showed ``run.py``/``runpy`` frames.  Each row runs the same
script under real ``python`` and under ``python -m mlx_portable run`` and
compares the exit status and everything written to stderr.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers.subproc import child_env

PRELUDE = """
import sys
class BadStr:
    def __str__(self):
        raise RuntimeError("str fails")
class Named:
    def __str__(self):
        return "a named object"
class IntSub(int):
    def __int__(self):
        raise RuntimeError("not called by python")
"""

EXIT_VALUES = [
    "None",
    "0",
    "1",
    "2",
    "255",
    "256",
    "257",
    "-1",
    "-255",
    "-256",
    "2**31",
    "2**31 - 1",
    "2**32 + 3",
    "2**63 - 1",
    "2**63",
    "-2**63",
    "-2**63 - 1",
    "2**100",
    "-2**100",
    "True",
    "False",
    "IntSub(7)",
    "'a message'",
    "''",
    "1.5",
    "[1, 2]",
    "b'bytes'",
    "BadStr()",
    "Named()",
    "KeyError('k')",
]

SCRIPTS = {
    "uncaught exception": "def f():\n    raise ValueError('boom')\nf()\n",
    "the script's own excepthook": (
        "def hook(t, v, tb):\n    print('HOOK', t.__name__, v, tb is not None, file=sys.stderr)\n"
        "sys.excepthook = hook\nraise ValueError('hooked')\n"
    ),
    "an excepthook that raises": (
        "def hook(t, v, tb):\n    raise TypeError('hook broke')\n"
        "sys.excepthook = hook\nraise ValueError('orig')\n"
    ),
    "syntax error": "def (\n",
    "indentation error": "if True:\nprint('x')\n",
    "exit inside a finally": "try:\n    raise ValueError('x')\nfinally:\n    sys.exit(3)\n",
    "exit from a thread's excepthook run": "import threading\nsys.exit(4)\n",
}


def _both(
    script: Path, cwd: Path
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    env = child_env()
    plain = subprocess.run(
        [sys.executable, script.name],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    ours = subprocess.run(
        [sys.executable, "-m", "mlx_portable", "run", script.name],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return plain, ours


def _same_path(text: str, script: Path) -> str:
    # python names a script by its absolute path in tracebacks, runpy by the path as given.
    return text.replace(f'File "{script}"', f'File "{script.name}"')


@pytest.mark.parametrize("value", EXIT_VALUES)
@pytest.mark.slow_every_mlx
def test_exit_value_parity(value: str, tmp_path: Path) -> None:
    script = tmp_path / "exits.py"
    script.write_text(PRELUDE + f"sys.exit({value})\n")
    plain, ours = _both(script, tmp_path)
    assert ours.returncode == plain.returncode, (value, plain.returncode, ours.returncode)
    assert ours.stderr == plain.stderr, (value, plain.stderr, ours.stderr)


@pytest.mark.parametrize("name", list(SCRIPTS))
@pytest.mark.slow_every_mlx
def test_error_report_parity(name: str, tmp_path: Path) -> None:
    script = tmp_path / "errs.py"
    script.write_text("import sys\n" + SCRIPTS[name])
    plain, ours = _both(script, tmp_path)
    assert ours.returncode == plain.returncode, (name, plain.returncode, ours.returncode)
    assert _same_path(ours.stderr, script) == _same_path(plain.stderr, script), (
        name,
        plain.stderr,
        ours.stderr,
    )
    assert "runpy" not in ours.stderr and "mlx_portable" not in ours.stderr
