"""``mlx-portable matrix``: argument errors, builds that cannot exist, and a clean Ctrl-C.

The Ctrl-C case builds one small environment (mlx-cpu and mlx-portable,
from uv's cache) and sends a real SIGINT to the command's process group, as
a terminal does.  It is skipped inside the compatibility matrix's own
environments: what it checks does not depend on the mlx installed there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.subproc import child_env, sigint_default

not_in_nox_matrix = pytest.mark.skipif(
    bool(os.environ.get("MLX_PORTABLE_MATRIX_MLX")),
    reason="builds its own environments: run once, in the main suite, not in each matrix environment",
)
needs_uv = pytest.mark.skipif(
    shutil.which("uv") is None and not (Path(sys.executable).parent / "uv").exists(),
    reason="uv is not installed",
)


def _env() -> dict[str, str]:
    env = child_env(base={k: v for k, v in os.environ.items() if not k.startswith("MLX_PORTABLE")})
    env.pop("NO_COLOR", None)
    return env


def matrix(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlx_portable", "matrix", *args],
        cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A minimal installable project with no dependencies."""
    folder = tmp_path / "proj"
    (folder / "src" / "proj").mkdir(parents=True)
    (folder / "src" / "proj" / "__init__.py").write_text("")
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "proj"\nversion = "0"\n[tool.hatch.build.targets.wheel]\npackages = ["src/proj"]\n'
    )
    return folder


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no COMMAND given: e.g. mlx-portable matrix -- python -m pytest -q"),
        (["--mlx", "newest", "--", "true"], "'newest' is not an mlx version"),
        (["--extras", "docs", "--", "true"], "the project declares no extra docs (it has: none)"),
    ],
)
def test_bad_arguments_exit_2_with_what_to_do(project: Path, args: list[str], message: str) -> None:
    done = matrix(*args, cwd=project)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_no_project_here(tmp_path: Path) -> None:
    done = matrix("--", "true", cwd=tmp_path)
    assert done.returncode == 2
    assert "holds no Python project (no pyproject.toml, setup.py or setup.cfg)" in done.stderr


def test_a_build_that_does_not_exist_is_reported_per_version(project: Path) -> None:
    done = matrix("--mlx", "0.30.0", "--backend", "cuda13", "--json", "--", "true", cwd=project)
    assert done.returncode == 2, done.stderr
    data = json.loads(done.stdout)
    (row,) = data["results"]
    assert row["status"] == "no-wheel"
    assert "there is no CUDA 13 build of mlx 0.30.0: mlx-cuda-13 starts at mlx 0.30.1" in row["error"]
    assert row["exit"] is None


@pytest.mark.slow  # builds one environment (about 5 s from uv's cache)
@needs_uv
@not_in_nox_matrix
def test_ctrl_c_stops_the_command_and_reports(project: Path, tmp_path: Path) -> None:
    child = tmp_path / "child.pid"
    script = (
        "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
        "print('READY', flush=True); time.sleep(300)"
    )
    envs = tmp_path / "envs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlx_portable", "matrix", "--mlx", "0.32.4,0.26.5", "--envs", str(envs),
         "--", "python", "-c", script, str(child)],
        cwd=project, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, like a job in a terminal
        preexec_fn=sigint_default,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "READY" in line:
                break
        else:
            pytest.fail(f"the command never started: {proc.stderr.read() if proc.stderr else ''}")
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "mlx-portable matrix: interrupted" in err
    # The command's own KeyboardInterrupt traceback is its business; none comes from mlx-portable.
    assert "mlx_portable" not in err.replace("mlx-portable matrix", "")
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.strip().startswith("0.")}
    assert rows["0.32.4"][-1] == "interrupted"
    assert rows["0.26.5"][-1] == "run"  # "not run": the second version was never started
    pid = int(child.read_text())
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the command is gone, not orphaned
    # The environment was complete, so the next run reuses it.
    done = matrix("--mlx", "0.32.4", "--envs", str(envs), "--json", "--", "python", "-c", "pass", cwd=project)
    assert json.loads(done.stdout)["results"][0]["env_action"] == "reused", done.stderr


def _python39() -> str | None:
    for candidate in (
        shutil.which("python3.9"),
        *sorted(Path.home().glob(".pyenv/versions/3.9*/bin/python3.9")),
    ):
        if (
            candidate
            and subprocess.run([str(candidate), "-c", ""], capture_output=True, check=False).returncode == 0
        ):
            return str(candidate)
    return None


@pytest.mark.slow  # creates a venv and asks the index (a few seconds)
@needs_uv
@not_in_nox_matrix
def test_a_version_the_index_lacks_is_named(project: Path, tmp_path: Path) -> None:
    done = matrix("--mlx", "0.26.9", "--envs", str(tmp_path / "envs"), "--json", "--", "true", cwd=project)
    assert done.returncode == 2, done.stderr
    (row,) = json.loads(done.stdout)["results"]
    assert row["status"] == "no-version"
    assert row["error"].startswith("mlx==0.26.9 mlx-cpu==0.26.9 is not on the package index: ")
    assert "there is no version of mlx" in row["error"]


@pytest.mark.slow  # creates a venv and asks the index (a few seconds)
@needs_uv
@not_in_nox_matrix
def test_no_wheel_for_this_python_is_named(project: Path, tmp_path: Path) -> None:
    python = _python39()
    if python is None:
        pytest.skip("no Python 3.9 on this machine (mlx 0.32.4 has no cp39 wheel)")
    done = matrix(
        "--mlx", "0.32.4", "--python", python, "--envs", str(tmp_path / "envs"), "--json", "--", "true",
        cwd=project,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    (row,) = json.loads(done.stdout)["results"]
    assert row["status"] == "no-wheel"
    assert (
        "no wheel of mlx==0.32.4 mlx-cpu==0.32.4 for this platform and Python (Linux x86_64, Python 3.9)"
        in row["error"]
    )
    assert "cp39" in row["error"]
