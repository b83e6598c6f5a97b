"""``mlx-portable matrix`` day to day: ``--list``, ``-x``, ``-j``, ``--mlx-portable``, and what it says.

Real environments (uv, mlx-cpu wheels from uv's cache) on a project with no
dependencies; the command is a tiny Python program, so each run is quick.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.subproc import REPO, child_env
from helpers.tool_paths import uv_binary

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(os.environ.get("MLX_PORTABLE_MATRIX_MLX")),
        reason="builds its own environments: run once, in the main suite, not in each matrix environment",
    ),
    pytest.mark.skipif(uv_binary() is None, reason="uv is not installed (the dev extra installs it)"),
]

#: Fails on mlx below 0.31.2 unless mlx-portable is active (it adds the API there).
NEEDS_NEW_API = "import mlx.core as mx; mx.new_thread_local_stream(mx.cpu); print('ran')"


def matrix(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = child_env(base={k: v for k, v in os.environ.items() if not k.startswith("MLX_PORTABLE")})
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "mlx_portable", "matrix", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    (folder / "src" / "proj").mkdir(parents=True)
    (folder / "src" / "proj" / "__init__.py").write_text("")
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "proj"\nversion = "0"\n[tool.hatch.build.targets.wheel]\npackages = ["src/proj"]\n'
    )
    return folder


def test_list_says_what_would_run_and_builds_nothing(project: Path, tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    done = matrix(
        "--mlx", "0.26.5,0.32.4", "--envs", str(envs), "--list", "--", "python", "-c", "pass", cwd=project
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["mlx", "backend", "environment", "state"]
    assert [line.split()[0] for line in lines[1:3]] == ["0.26.5", "0.32.4"]
    assert all(line.split()[-1] == "build" for line in lines[1:3])
    assert f"mlx-portable in each: editable {REPO}" in done.stdout
    assert "command in each: python -c pass" in done.stdout
    assert not any(envs.glob("mlx*")), "--list built something"
    assert max(len(line) for line in lines if str(envs) not in line) <= 80


def test_exitfirst_stops_at_the_first_failure_and_jobs_builds_in_parallel(
    project: Path, tmp_path: Path
) -> None:
    envs = tmp_path / "envs"
    # -j 2: both environments built first, two at a time; --no-activate: 0.26.5 fails, -x stops there.
    done = matrix(
        "--mlx", "0.26.5,0.32.4", "--envs", str(envs), "-j", "2", "-x", "--no-activate", "--json",
        "--", "python", "-c", NEEDS_NEW_API, cwd=project,
    )  # fmt: skip
    data = json.loads(done.stdout)
    status = {r["mlx"]: r["status"] for r in data["results"]}
    assert status == {"0.26.5": "failed", "0.32.4": "not run"}, done.stderr[-3000:]
    assert done.returncode == 1
    assert "building 2 environments, 2 at a time" in done.stderr
    assert "stopping here (-x)" in done.stderr
    assert "failed (exit 1) in" in done.stderr  # the time each run took, as it ends
    # Both were built (in parallel) although only one ran: the list now says "reuse" for both.
    listed = matrix(
        "--mlx",
        "0.26.5,0.32.4",
        "--envs",
        str(envs),
        "--list",
        "--",
        "python",
        "-c",
        NEEDS_NEW_API,
        cwd=project,
    )
    assert [line.split()[-1] for line in listed.stdout.splitlines()[1:3]] == ["reuse", "reuse"]
    # Activated, the same command passes on both, reusing the environments.
    done = matrix(
        "--mlx",
        "0.26.5,0.32.4",
        "--envs",
        str(envs),
        "-x",
        "--json",
        "--",
        "python",
        "-c",
        NEEDS_NEW_API,
        cwd=project,
    )
    data = json.loads(done.stdout)
    assert [(r["status"], r["env_action"]) for r in data["results"]] == [("passed", "reused")] * 2
    assert data["mlx_portable"]["kind"] == "editable"


def test_bad_jobs_and_a_missing_mlx_portable_source_are_clear(project: Path, tmp_path: Path) -> None:
    done = matrix("-j", "-1", "--", "true", cwd=project)
    assert done.returncode == 2 and "-j -1: give a number" in done.stderr
    done = matrix("--mlx-portable", str(tmp_path / "nothing.whl"), "--", "true", cwd=project)
    assert done.returncode == 2 and "no such file" in done.stderr
    assert "Traceback" not in done.stderr
