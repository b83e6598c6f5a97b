"""`mlx-portable matrix` from every way of installing mlx-portable, with warnings as errors.

A downstream maintainer installs mlx-portable from a local folder, a wheel
or a git URL (it is not on the package index yet), then runs
``mlx-portable matrix --mlx 0.26.5,0.30.0,0.32.4 -- python -m pytest -q``
in a project whose pytest configuration says ``filterwarnings = ["error"]``.
It must pass the first time: each environment gets the very mlx-portable
that runs the command (read from its ``direct_url.json``), the table says
which, and no warning reaches pytest (before the fix pytest warned that
``_mlx_portable_startup`` was imported before it could rewrite it, and
that warning, made an error, stopped pytest in every environment).

The project is lean (mlx and pytest only): it uses two APIs that mlx-portable
adds where an old mlx lacks them (``mx.new_thread_local_stream``,
``mx.device_info``), in the test process and in a child Python process,
and the plugin's ``mlx`` marker.  The environments share one folder and
uv's cache, so each build after the first reuses mlx's wheels.
(The editable install, from a checkout, is covered by
``test_matrix_downstream.py``.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.subproc import REPO, env_without_checkout
from helpers.tool_paths import uv_binary

VERSIONS = ("0.26.5", "0.30.0", "0.32.4")
UV = uv_binary()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(os.environ.get("MLX_PORTABLE_MATRIX_MLX")),
        reason="builds its own environments: run once, in the main suite, not in each matrix environment",
    ),
    pytest.mark.skipif(UV is None, reason="uv is not installed (the dev extra installs it)"),
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.21"]
build-backend = "hatchling.build"

[project]
name = "strictproj"
version = "0.0.1"
dependencies = ["mlx>=0.26.5"]

[tool.hatch.build.targets.wheel]
packages = ["src/strictproj"]

[tool.pytest.ini_options]
testpaths = ["tests"]
filterwarnings = ["error"]
"""

PACKAGE = """\
import mlx.core as mx


def add_on_a_thread_stream(a, b):
    stream = mx.new_thread_local_stream(mx.cpu)  # mlx >= 0.31.2; mlx-portable adds it before
    with mx.stream(stream):
        return (mx.array(a) + mx.array(b)).item()


def device_facts():
    return mx.device_info()  # mlx >= 0.30.4; mlx-portable adds it before
"""

TESTS = """\
import subprocess
import sys

import pytest
from strictproj import add_on_a_thread_stream, device_facts


def test_adds():
    assert add_on_a_thread_stream(2, 3) == 5


def test_device_info():
    assert isinstance(device_facts(), dict)


def test_in_a_child_process():
    code = "from strictproj import add_on_a_thread_stream as f; print(f(4, 5))"
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "9"


@pytest.mark.mlx(backend="cpu")
def test_plugin_marker(mlx_backend):
    assert mlx_backend == "cpu"
"""


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{argv}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """This checkout's working tree as a folder, a git repository (``git+file://``) and a wheel."""
    assert UV is not None
    root = tmp_path_factory.mktemp("sources")
    tree = root / "mlx-portable"
    listed = _run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
    for name in filter(None, listed.stdout.split("\0")):
        source = REPO / name
        if source.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)
    git = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    _run([*git, "init", "-q"])
    _run([*git, "add", "-A"])
    _run([*git, "commit", "-q", "-m", "the working tree"])
    _run([UV, "build", "--wheel", "--out-dir", str(root / "dist"), str(tree)])
    (wheel,) = (root / "dist").glob("mlx_portable-*.whl")
    return {"git": f"git+{tree.as_uri()}", "folder": str(tree), "wheel": str(wheel)}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("strictproj")
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (folder / "src" / "strictproj").mkdir(parents=True)
    (folder / "src" / "strictproj" / "__init__.py").write_text(PACKAGE)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_strict.py").write_text(TESTS)
    return folder


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("envs")


@pytest.mark.parametrize("kind", ["git", "wheel", "folder"])
def test_matrix_passes_first_time_with_warnings_as_errors(
    kind: str, sources: dict[str, str], project: Path, envs: Path, tmp_path: Path
) -> None:
    assert UV is not None
    outer = tmp_path / "venv"
    _run([UV, "venv", "-q", "--python", sys.executable, str(outer)])
    python = outer / "bin" / "python"
    _run([UV, "pip", "install", "-q", "--python", str(python), sources[kind]])
    tools = tmp_path / "tools"  # uv on PATH, nothing else of this test environment
    tools.mkdir()
    (tools / "uv").symlink_to(UV)
    env = env_without_checkout(NO_COLOR="1")
    env["PATH"] = os.pathsep.join([str(tools), env.get("PATH", "")])
    done = subprocess.run(
        [str(outer / "bin" / "mlx-portable"), "matrix", "--mlx", ",".join(VERSIONS), "--envs", str(envs),
         "--", "python", "-m", "pytest", "-q"],
        cwd=project, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "Warning" not in output, output[-6000:]
    assert done.stdout.count("4 passed") == len(VERSIONS), done.stdout[-3000:]
    table = done.stdout[done.stdout.index("mlx-portable matrix") :].splitlines()
    rows = [line.split() for line in table[2 : 2 + len(VERSIONS)]]
    assert [(r[0], r[-1]) for r in rows] == [(v, "passed") for v in VERSIONS], table
    # The table says which mlx-portable each environment got: this one, from where it came.
    shown = {
        "git": f"from {sources['git']}@",
        "wheel": f"from {sources['wheel']}",
        "folder": f"from {sources['folder']}",
    }
    footer = table[2 + len(VERSIONS)]
    assert footer.startswith("mlx-portable: ") and shown[kind] in footer, footer
    assert "package index" not in output


def test_without_mlx_portable_the_project_fails_on_old_mlx(
    sources: dict[str, str], project: Path, envs: Path
) -> None:
    """The same project with mlx-portable switched off: the APIs it uses are missing below 0.31.2."""
    done = subprocess.run(
        [sys.executable, "-m", "mlx_portable", "matrix", "--mlx", "0.30.0", "--envs", str(envs),
         "--mlx-portable", sources["wheel"], "--no-activate", "--", "python", "-m", "pytest", "-q", "-x"],
        cwd=project, env=env_without_checkout(NO_COLOR="1", PYTHONPATH=str(REPO)), capture_output=True,
        text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "has no attribute 'new_thread_local_stream'" in done.stdout
