"""The command line with standard output closed (``>&-``) or full (``> /dev/full``).

``doctor`` used to end with a traceback (``'NoneType' object has no attribute
'write'``, ``OSError: [Errno 28] No space left on device``) and ``--version``
said nothing and exited 0.  Now: one line on stderr and status 120, what
Python itself exits with when its final flush fails.  Real child processes,
real ``/dev/full``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest
from helpers.subproc import child_env

COMMANDS = [
    ["doctor"],
    ["doctor", "--json"],
    ["doctor", "--markdown"],
    ["doctor", "--verbose"],
    ["--version"],
    ["--help"],
]


def _shell(args: list[str], redirect: str) -> subprocess.CompletedProcess[str]:
    line = shlex.join([sys.executable, "-m", "mlx_portable", *args]) + " " + redirect
    return subprocess.run(
        ["sh", "-c", line], env=child_env(), capture_output=True, text=True, timeout=240, check=False
    )


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("redirect", [">&-", "> /dev/full"])
@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
@pytest.mark.slow_every_mlx
def test_unwritable_stdout_gives_one_line_and_120(args: list[str], redirect: str) -> None:
    done = _shell(args, redirect)
    assert done.returncode == 120, (done.returncode, done.stderr[-2000:])
    lines = [line for line in done.stderr.splitlines() if line.startswith("mlx-portable:")]
    assert len(lines) == 1, done.stderr
    assert "standard output" in lines[0]
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr


@pytest.mark.slow_every_mlx
def test_a_closed_pipe_reader_is_not_a_traceback() -> None:
    done = subprocess.run(
        [
            "sh",
            "-c",
            shlex.join([sys.executable, "-m", "mlx_portable", "doctor", "--verbose"]) + " | head -c 1",
        ],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
