"""mlx and its backend package at different versions: found from dist-info names, with the pip command.

The crash itself is real: this environment's own ``mlx/core*.so`` over a
``libmlx.so`` that lacks its symbols (built with gcc, standing for a
backend package of another version) fails with ``undefined symbol``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers.cuda_fake_site import fake_cuda_env, gcc_shared, require_toolchain, write_dist_info
from helpers.subproc import run_python

from mlx_portable.versions import backend_package_mismatch, installed_mlx_packages


def test_matching_versions_are_not_a_mismatch(tmp_path: Path) -> None:
    write_dist_info(tmp_path, "mlx-0.32.4")
    write_dist_info(tmp_path, "mlx_cuda_13-0.32.4")
    write_dist_info(tmp_path, "mlx_lm-0.32.2")  # mlx-lm is not a backend package
    assert backend_package_mismatch([str(tmp_path)]) is None
    assert installed_mlx_packages([str(tmp_path)]) == {
        "mlx": ("0.32.4", str(tmp_path)),
        "mlx-cuda-13": ("0.32.4", str(tmp_path)),
    }


@pytest.mark.parametrize(
    ("backend", "command"),
    [
        ("mlx_cpu-0.31.2", 'pip install "mlx==0.32.0" "mlx-cpu==0.32.0"'),
        ("mlx_cuda_12-0.31.2", 'pip install "mlx==0.32.0" "mlx-cuda-12==0.32.0"'),
        ("mlx_cuda_13-0.32.4", 'pip install "mlx==0.32.0" "mlx-cuda-13==0.32.0"'),
        ("mlx_cuda-0.30.0", 'pip uninstall -y mlx-cuda && pip install "mlx==0.32.0" "mlx-cuda-12==0.32.0"'),
        ("mlx_metal-0.31.2", 'pip install "mlx==0.32.0" "mlx-metal==0.32.0"'),
    ],
)
def test_mismatch_gives_the_exact_pip_command(tmp_path: Path, backend: str, command: str) -> None:
    write_dist_info(tmp_path, "mlx-0.32.0")
    write_dist_info(tmp_path, backend)
    message = backend_package_mismatch([str(tmp_path)])
    assert message is not None and "undefined symbol" in message
    # "pip" is this interpreter's installer as the hint names it ("python -m pip", "uv pip --python")
    from mlx_portable.install_hint import pip_command

    expected = command.replace("pip uninstall", pip_command("uninstall")).replace(
        "pip install", pip_command()
    )
    assert message.endswith(expected)


def test_mismatch_across_site_folders_and_two_backends(tmp_path: Path) -> None:
    front, back = tmp_path / "a", tmp_path / "b"
    write_dist_info(front, "mlx-0.32.4")
    write_dist_info(front, "mlx_cpu-0.32.4")
    write_dist_info(front, "mlx_cuda_13-0.32.4")
    write_dist_info(back, "mlx_cuda_12-0.30.6")
    message = backend_package_mismatch([str(front), str(back)])
    assert message is not None
    assert f"mlx-cuda-12 0.30.6 are installed at different versions (in {back}" in message
    assert "overwrite each other's mlx/lib/libmlx.so" in message and "pip uninstall -y mlx-cpu" in message


#: The backend package version the mismatch tests pretend to have (never the installed one).
OTHER_VERSION = "0.26.5"


def _other(version: str) -> str:
    return OTHER_VERSION if version != OTHER_VERSION else "0.27.1"


def _mismatched_site(tmp_path: Path) -> tuple[Path, str]:
    """The real mlx front end of this environment over a libmlx.so of "another version"."""
    require_toolchain()
    mlx_core = pytest.importorskip("mlx.core")
    real = Path(mlx_core.__file__)
    site = tmp_path / "site"
    (site / "mlx").mkdir(parents=True)
    shutil.copy(real, site / "mlx" / real.name)
    gcc_shared(site / "mlx" / "lib" / "libmlx.so", soname="libmlx.so")
    version = str(mlx_core.__version__)
    write_dist_info(site, f"mlx-{version}")
    write_dist_info(site, f"mlx_cpu-{_other(version)}")
    return site, version


def test_simulated_backend_real_undefined_symbol_crash(tmp_path: Path) -> None:
    site, version = _mismatched_site(tmp_path)
    plain = run_python("import mlx.core", env=fake_cuda_env(site))
    assert plain.returncode != 0 and "undefined symbol" in plain.stderr  # the failure this prevents
    message = backend_package_mismatch([str(site)])
    assert message is not None and f'pip install "mlx=={version}" "mlx-cpu=={version}"' in message


def test_simulated_backend_import_failure_is_explained(tmp_path: Path) -> None:
    site, version = _mismatched_site(tmp_path)
    code = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "from mlx_portable import _mlx\n"
        "try:\n    _mlx.core()\nexcept ImportError as e:\n    print(e)\n"
    )
    done = run_python(code, env=fake_cuda_env(site))
    assert done.returncode == 0, done.stderr
    assert f"mlx {version} and mlx-cpu {_other(version)} are installed at different versions" in done.stdout
    assert f'pip install "mlx=={version}" "mlx-cpu=={version}"' in done.stdout
    assert "undefined symbol" in done.stdout
