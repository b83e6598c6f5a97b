"""The command line's help: copyable URLs and paths, 80 columns, ``-V``."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers.subproc import REPO, child_env

from mlx_portable.cli.links import DOCS_URL, ISSUES_URL


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = child_env(COLUMNS="80")
    return subprocess.run(
        [sys.executable, "-m", "mlx_portable", *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("command", ["", "doctor", "run", "check", "matrix"])
def test_help_fits_80_columns_and_never_splits_a_url(command: str) -> None:
    done = cli(*([command] if command else []), "--help")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    # textwrap's default breaks "https://mlx-portable..." after "mlx-": the link cannot be copied
    assert not [line for line in lines if line.rstrip().endswith(("mlx-", "/mlx-", ".mlx-"))], done.stdout
    for url in (DOCS_URL, ISSUES_URL):
        host = url.split("/")[2]
        for line in lines:
            if host in line:
                assert (
                    url.split("/")[2] + "/" in line and " " not in line[line.index("https://") :].split()[0]
                )


def test_top_help_gives_documentation_and_issues_on_their_own_lines() -> None:
    lines = cli("--help").stdout.splitlines()
    assert f"Documentation: {DOCS_URL}" in lines
    assert f"Issues: {ISSUES_URL}" in lines


@pytest.mark.slow_every_mlx
def test_short_version_flag() -> None:
    short, long = cli("-V"), cli("--version")
    assert short.returncode == long.returncode == 0
    assert short.stdout == long.stdout and short.stdout.startswith("mlx-portable ")


def test_run_usage_fits_80_columns() -> None:
    done = cli("run", "--bogus-option-for-usage")
    usage = [line for line in done.stderr.splitlines() if line.startswith(("usage:", " "))]
    assert usage and max(len(line) for line in usage) <= 80, done.stderr
