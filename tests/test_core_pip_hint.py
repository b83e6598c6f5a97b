"""The installer command every install hint names: the one that reaches *this* interpreter.

Real environments made with ``python -m venv --without-pip`` (what a venv made
by uv looks like: no pip), then the same with a pip package and a ``pip``
script in its ``bin``; ``PATH`` decides whether a bare ``pip`` is this
environment's own.  A folder with a space shows the quoting.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from helpers.subproc import REPO

pytestmark = pytest.mark.slow

_SITE = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"


def _env_without_pip(where: Path) -> Path:
    venv.EnvBuilder(with_pip=False, symlinks=True).create(where)
    return where / "bin" / "python"


def _with_pip(where: Path) -> Path:
    python = _env_without_pip(where)
    (where / _SITE / "pip").mkdir(parents=True)
    (where / _SITE / "pip" / "__init__.py").write_text("", encoding="utf-8")
    script = where / "bin" / "pip"
    script.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    script.chmod(0o755)
    return python


def _hint(python: Path, path: str, *extra: str) -> str:
    """``pip_command()`` as printed by ``python`` (the checkout on its path, mlx absent there)."""
    env = {"PATH": path, "PYTHONPATH": str(REPO), "HOME": os.environ.get("HOME", "/tmp"), "MLX_PORTABLE": "0"}
    code = "from mlx_portable.pip_hint import pip_command; print(pip_command('uninstall'))"
    done = subprocess.run(
        [str(python), *extra, "-c", code],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(os.name != "posix", reason="POSIX venv layout")
def test_no_pip_in_the_environment_names_uv_with_this_interpreter(tmp_path: Path) -> None:
    python = _env_without_pip(tmp_path / "no pip")
    assert _hint(python, "/usr/bin:/bin") == f"uv pip uninstall --python {shlex.quote(str(python))}"


@pytest.mark.skipif(os.name != "posix", reason="POSIX venv layout")
def test_this_environments_pip_first_on_path_is_a_bare_pip(tmp_path: Path) -> None:
    python = _with_pip(tmp_path / "env")
    assert _hint(python, f"{python.parent}:/usr/bin:/bin") == "pip uninstall"


@pytest.mark.skipif(os.name != "posix", reason="POSIX venv layout")
def test_another_pip_first_on_path_names_this_interpreter(tmp_path: Path) -> None:
    python = _with_pip(tmp_path / "with space")
    other = _with_pip(tmp_path / "other")
    expected = f"{shlex.quote(str(python))} -m pip uninstall"
    assert "'" in expected
    assert _hint(python, f"{other.parent}:{python.parent}:/usr/bin:/bin") == expected
    assert _hint(python, "/usr/bin:/bin") == expected


@pytest.mark.skipif(os.name != "posix", reason="POSIX venv layout")
def test_pip_found_under_python_dash_s(tmp_path: Path) -> None:
    """``python -S`` leaves site-packages off ``sys.path``: pip is looked for there all the same."""
    python = _with_pip(tmp_path / "env")
    assert _hint(python, f"{python.parent}:/usr/bin", "-S") == "pip uninstall"
