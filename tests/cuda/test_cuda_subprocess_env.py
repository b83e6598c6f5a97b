"""``subprocess_env()``: a child process gets the NVIDIA folders, CUDA_HOME, the settings, and
(opt-in) comes up activated through the ``.pth`` file the wheel ships.  Real child processes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cuda_fake_site import FakeCudaInstall, fake_cuda_env
from helpers.subproc import env_without_checkout, linked_venv, run_python
from helpers.tool_paths import uv_binary

import mlx_portable
from mlx_portable.cuda import headers

ROOT = Path(mlx_portable.__file__).resolve().parent.parent
PTH_SOURCE = ROOT / "pth" / "mlx_portable_autoactivate.pth"
STARTUP_SOURCE = ROOT / "pth" / "_mlx_portable_startup.py"

# Nothing is loaded at start-up; the first import of mlx loads and activates mlx-portable.
_CHECK_ACTIVE = (
    "import sys\n"
    "print('at start:', 'mlx_portable' in sys.modules)\n"
    "import mlx.core\n"
    "mod = sys.modules.get('mlx_portable')\n"
    "print('loaded' if mod else 'not loaded', mod.is_active() if mod else False)\n"
)


@pytest.fixture
def on_fake_path(fake_cuda: FakeCudaInstall, monkeypatch: pytest.MonkeyPatch) -> FakeCudaInstall:
    monkeypatch.setattr(sys, "path", [*fake_cuda.path, *sys.path])
    monkeypatch.setattr(headers, "SYSTEM_CUDA", "/nonexistent/cuda")
    monkeypatch.setattr(headers, "SYSTEM_CUDA_ROOT", "/nonexistent")
    return fake_cuda


def test_simulated_subprocess_env_prepends_folders_once(on_fake_path: FakeCudaInstall) -> None:
    cu13 = on_fake_path.folder("cu13")
    env = mlx_portable.subprocess_env({"LD_LIBRARY_PATH": f"/opt/a:{cu13}:/opt/b", "PATH": "/bin"})
    entries = env["LD_LIBRARY_PATH"].split(":")
    assert entries == [cu13, on_fake_path.folder("cudnn"), on_fake_path.folder("nccl"), "/opt/a", "/opt/b"]
    assert env["CUDA_HOME"] == str(on_fake_path.nvidia_site / "nvidia" / "cu13")
    assert env["PATH"] == "/bin"
    assert "MLX_PORTABLE_AUTOACTIVATE" not in env
    kept = mlx_portable.subprocess_env({"CUDA_PATH": "/opt/cuda"})
    assert "CUDA_HOME" not in kept  # the caller's choice stands


def test_subprocess_env_carries_mlx_portable_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLX_PORTABLE_BACKEND", "cpu")
    monkeypatch.setenv("MLX_PORTABLE_DISABLE", "default_device")
    env = mlx_portable.subprocess_env({"HOME": "/root"}, autoactivate=True)
    assert env["MLX_PORTABLE_BACKEND"] == "cpu" and env["MLX_PORTABLE_DISABLE"] == "default_device"
    assert env["MLX_PORTABLE_AUTOACTIVATE"] == "1" and env["HOME"] == "/root"
    assert mlx_portable.subprocess_env({"MLX_PORTABLE_BACKEND": "metal"})["MLX_PORTABLE_BACKEND"] == "metal"


def test_simulated_child_imports_mlx_core_with_subprocess_env(on_fake_path: FakeCudaInstall) -> None:
    # A child that never imports mlx_portable: only LD_LIBRARY_PATH from subprocess_env() helps it.
    base = fake_cuda_env(*on_fake_path.path)
    plain = run_python("import mlx.core", env=base)
    assert plain.returncode != 0 and "cannot open shared object file" in plain.stderr
    done = run_python("import mlx.core; print(mlx.core.fake_entry)", env=mlx_portable.subprocess_env(base))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"


@pytest.mark.skipif(
    not sys.platform.startswith("linux") and sys.platform != "darwin", reason="POSIX venv layout"
)
def test_pth_file_activates_a_child_only_when_asked(tmp_path: Path) -> None:
    # The file the wheel ships (pyproject force-include), placed in a real site-packages.
    python, site = linked_venv(tmp_path / "venv")
    shutil.copy(PTH_SOURCE, site / PTH_SOURCE.name)
    shutil.copy(STARTUP_SOURCE, site / STARTUP_SOURCE.name)
    (site / "01_checkout.pth").write_text(str(ROOT) + "\n")
    off = subprocess.run(
        [str(python), "-c", _CHECK_ACTIVE],
        env=env_without_checkout(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert off.returncode == 0, off.stderr
    assert off.stdout.split() == ["at", "start:", "False", "not", "loaded", "False"]  # costs nothing
    env = mlx_portable.subprocess_env(env_without_checkout(), autoactivate=True)
    on = subprocess.run(
        [str(python), "-c", _CHECK_ACTIVE], env=env, capture_output=True, text=True, timeout=120
    )
    assert on.returncode == 0, on.stderr
    assert on.stdout.split() == ["at", "start:", "False", "loaded", "True"]


def test_pth_file_is_what_the_wheel_ships() -> None:
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    force = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force["pth/mlx_portable_autoactivate.pth"] == "mlx_portable_autoactivate.pth"
    assert force["pth/_mlx_portable_startup.py"] == "_mlx_portable_startup.py"
    line = PTH_SOURCE.read_text().strip()
    assert line.startswith("import ") and "\n" not in line  # site.py runs a .pth line only if it starts so


@pytest.mark.slow
def test_wheel_installed_in_a_venv_autoactivates_a_child(tmp_path: Path) -> None:
    uv = uv_binary()
    if uv is None:
        pytest.skip('uv is needed to build and install the wheel: pip install -e ".[dev]"')
    dist = tmp_path / "dist"
    built = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if built.returncode != 0:
        pytest.skip(
            f"could not build the wheel here (no network for the build backend?): {built.stderr[-300:]}"
        )
    (wheel,) = dist.glob("mlx_portable-*.whl")
    python, site = linked_venv(tmp_path / "venv")
    subprocess.run(
        [uv, "pip", "install", "--python", str(python), "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (site / "mlx_portable_autoactivate.pth").is_file()
    env = mlx_portable.subprocess_env(env_without_checkout(), autoactivate=True)
    code = _CHECK_ACTIVE + "print(mod.__file__)\n"
    on = subprocess.run(
        [str(python), "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert on.returncode == 0, on.stderr
    start, state, where = on.stdout.strip().splitlines()
    assert start == "at start: False" and state == "loaded True" and where.startswith(str(site))
