"""``cuda_home``: mlx's CUDA header search per version, and the CUDA_HOME chosen when it fails.

Simulated CUDA installs (real wheel folder names, a ``cuda_runtime.h`` where
the ``nvidia-cuda-runtime`` wheels put it).  The machine's own
``/usr/local/cuda`` is replaced by a folder of the test's choosing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cuda_fake_site import FakeCudaInstall

from mlx_portable.cuda import headers
from mlx_portable.cuda.headers import cuda_home_candidates, mlx_header_search
from mlx_portable.cuda.layout import BackendPackage
from mlx_portable.patches.cuda_libraries import cuda_home
from mlx_portable.registry.registry import APPLIED, OBSOLETE, SKIPPED, Registry


@pytest.fixture
def no_system_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``/usr/local/cuda`` replaced by an absent folder; CUDA_HOME/CUDA_PATH unset."""
    root = tmp_path / "usr-local"
    root.mkdir()
    monkeypatch.setattr(headers, "SYSTEM_CUDA", str(root / "cuda"))
    monkeypatch.setattr(headers, "SYSTEM_CUDA_ROOT", str(root))
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    return root


def _backend(version: str, major: int = 13) -> BackendPackage:
    return BackendPackage(f"mlx-cuda-{major}", version, major, "/nowhere", "/nowhere/x.dist-info")


def _site_with(tmp_path: Path, sub: str) -> tuple[Path, str]:
    site = tmp_path / "site"
    (site / "nvidia" / sub / "include").mkdir(parents=True)
    (site / "nvidia" / sub / "include" / "cuda_runtime.h").write_text("")
    # The wheel's dist-info: headers are trusted only beside it, as a real install has.
    dist = "nvidia_cuda_runtime-13.0.48" if sub == "cu13" else "nvidia_cuda_runtime_cu12-12.9.79"
    (site / f"{dist}.dist-info").mkdir()
    libmlx = site / "mlx" / "lib" / "libmlx.so"
    libmlx.parent.mkdir(parents=True)
    libmlx.write_bytes(b"")
    return site, str(libmlx)


@pytest.mark.parametrize(
    ("version", "sub", "found"),
    [
        ("0.30.0", "cuda_runtime", False),  # before 0.30.1 mlx never looks at the pip wheels
        ("0.31.2", "cuda_runtime", True),
        ("0.32.0", "cu13", False),  # 0.32.0 looks only in nvidia/cuda_runtime
        ("0.32.4", "cu13", True),  # the CUDA 13 folder from 0.32.1
        ("0.32.4", "cuda_runtime", False),  # a CUDA 13 build from 0.32.1 looks in cu13 only
    ],
)
def test_simulated_mlx_header_search_per_version(
    no_system_cuda: Path, tmp_path: Path, version: str, sub: str, found: bool
) -> None:
    _, libmlx = _site_with(tmp_path, sub)
    search = mlx_header_search(_backend(version), libmlx, env={})
    assert search.usable is found


def test_simulated_header_search_checks_folders_as_mlx_does(no_system_cuda: Path, tmp_path: Path) -> None:
    home = no_system_cuda / "cuda"
    home.mkdir()  # a toolkit folder without headers, as in CUDA "runtime" container images
    old = mlx_header_search(_backend("0.31.2"), None, env={})
    assert old.include == str(home / "include") and not old.usable  # mlx accepts it, NVRTC then fails
    assert mlx_header_search(_backend("0.32.4"), None, env={}).include is None  # 0.32 wants home/include
    env = {"CUDA_PATH": str(tmp_path / "nope")}
    assert mlx_header_search(_backend("0.30.0"), None, env=env).source == "CUDA_PATH"


def test_simulated_candidates_match_the_cuda_major(no_system_cuda: Path, tmp_path: Path) -> None:
    site, _ = _site_with(tmp_path, "cu13")
    cu12 = tmp_path / "cu12site"
    (cu12 / "nvidia" / "cuda_runtime" / "include").mkdir(parents=True)
    (cu12 / "nvidia" / "cuda_runtime" / "include" / "cuda_runtime.h").write_text("")
    (cu12 / "nvidia_cuda_runtime_cu12-12.9.79.dist-info").mkdir()
    toolkit = no_system_cuda / "cuda-12.8" / "include"
    toolkit.mkdir(parents=True)
    (toolkit / "cuda_runtime.h").write_text("")
    (toolkit / "cuda_runtime_api.h").write_text("#define CUDART_VERSION 12080\n")
    path = [str(cu12), str(site)]
    assert cuda_home_candidates(13, path) == [str(site / "nvidia" / "cu13")]
    assert cuda_home_candidates(12, path) == [
        str(cu12 / "nvidia" / "cuda_runtime"),
        str(no_system_cuda / "cuda-12.8"),
    ]


@pytest.fixture(autouse=True)
def own_report_details(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Details set here go to a throwaway dict, not into the process-wide report."""
    from mlx_portable import activation

    monkeypatch.setattr(activation, "_details", {})
    yield
    monkeypatch.undo()
    activation._invalidate()  # drop a cached report built from the throwaway dict


@pytest.fixture
def private_registry() -> Iterator[Registry]:
    registry = Registry()
    registry.register(cuda_home)
    yield registry
    registry.revert_all()


def _apply(registry: Registry) -> tuple[str, str]:
    registry.apply(["cuda_home"], backend=None, import_time=True)
    record = registry.record("cuda_home")
    return record.status, record.reason


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="cuda_home is for Linux")
def test_simulated_cuda_home_set_to_the_pip_headers(
    fake_cuda: FakeCudaInstall,
    no_system_cuda: Path,
    private_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    monkeypatch.setattr(sys, "path", [*fake_cuda.path, *sys.path])
    # mlx 0.32.4 looks in site-mlx/nvidia/cu13/include: the headers are in the other site.
    status, _ = _apply(private_registry)
    assert status == APPLIED
    assert os.environ["CUDA_HOME"] == str(fake_cuda.nvidia_site / "nvidia" / "cu13")
    private_registry.revert_all()
    assert "CUDA_HOME" not in os.environ  # deactivate() restores the environment


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="cuda_home is for Linux")
def test_simulated_cuda_home_left_alone_when_set_or_found(
    fake_cuda: FakeCudaInstall,
    no_system_cuda: Path,
    private_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "path", [*fake_cuda.path, *sys.path])
    monkeypatch.setenv("CUDA_HOME", str(no_system_cuda / "mine"))
    status, reason = _apply(private_registry)
    assert status == SKIPPED and "CUDA_HOME is set" in reason and "mlx finds no CUDA headers there" in reason
    private_registry.revert_all()
    monkeypatch.delenv("CUDA_HOME")
    (no_system_cuda / "cuda" / "include").mkdir(parents=True)
    (no_system_cuda / "cuda" / "include" / "cuda_runtime.h").write_text("")
    status, reason = _apply(private_registry)
    assert status == OBSOLETE and "mlx finds the CUDA headers itself" in reason


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="cuda_home is for Linux")
def test_simulated_no_headers_anywhere_names_the_package(
    fake_cuda: FakeCudaInstall,
    no_system_cuda: Path,
    private_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import os

    bare = fake_cuda.copy(tmp_path / "bare")
    for name in ("cuda_runtime.h", "cuda_runtime_api.h"):
        (bare.nvidia_site / "nvidia" / "cu13" / "include" / name).unlink()
    monkeypatch.setattr(sys, "path", [*bare.path, *sys.path])
    status, reason = _apply(private_registry)
    assert status == SKIPPED
    assert 'pip install "nvidia-cuda-runtime==13.*"' in reason
    assert "CUDA_HOME" not in os.environ
