"""A CUDA driver too old for the installed build: the message names the real fixes.

Reproduced with the real mlx-cuda-13 0.32.4, the NVIDIA wheels it requires and
a stub ``libcuda.so.1`` reporting CUDA 12.2: ``import mlx.core`` fails with
``ImportError: cudaMallocManaged(&data, size) failed: CUDA driver version is
insufficient for CUDA runtime version``; a stub lacking a newer driver entry
point fails earlier with ``undefined symbol: cuGraphKernelNodeSetAttribute``.
The only fix doctor used to give was ``pip install "mlx[cpu]"``.  Simulated
here: the backend package and the driver's answers are substituted.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from mlx_portable.cli import doctor
from mlx_portable.cuda import diagnose
from mlx_portable.cuda.layout import BackendPackage
from mlx_portable.install_hint import explain_import_failure

INSUFFICIENT = (
    "cudaMallocManaged(&data, size) failed: CUDA driver version is insufficient for CUDA runtime version"
)
MISSING_ENTRY = "/site/mlx/lib/libmlx.so: undefined symbol: cuGraphKernelNodeSetAttribute"


@pytest.fixture
def old_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    package = BackendPackage("mlx-cuda-13", "0.32.4", 13, "/site", "/site/mlx_cuda_13-0.32.4.dist-info")
    monkeypatch.setattr(diagnose, "cuda_backend_package", lambda: package)
    monkeypatch.setattr(diagnose, "driver_cuda_version", lambda: (12, 2))
    monkeypatch.setattr("mlx_portable.install_hint.nvidia_driver_version", lambda: (535, 104))


@pytest.mark.parametrize("error", [INSUFFICIENT, MISSING_ENTRY])
def test_simulated_driver_too_old_names_the_driver_the_build_and_the_fixes(
    old_driver: None, error: str
) -> None:
    message = explain_import_failure(ImportError(error))
    assert "driver 535.104 runs CUDA up to 12.2" in message
    assert "mlx-cuda-13 0.32.4 is built with CUDA 13 and needs driver 580 or newer" in message
    assert "Upgrade the NVIDIA driver to 580 or newer" in message
    assert 'pip uninstall -y mlx-cuda-13 && pip install "mlx[cuda12]==0.32.4"' in message
    assert error in message


def test_simulated_doctor_next_steps_for_an_old_driver(old_driver: None) -> None:
    message = explain_import_failure(ImportError(INSUFFICIENT))
    data = {"mlx_error": message, "versions": {"mlx": "0.32.4"}}
    steps = doctor._next_steps(data)
    assert steps[0] == "upgrade the NVIDIA driver to 580 or newer"
    assert any("mlx[cuda12]==0.32.4" in s for s in steps)


def test_an_undefined_mlx_symbol_is_still_a_version_mismatch() -> None:
    message = explain_import_failure(ImportError("libmlx.so: undefined symbol: _ZN3mlx4core5arrayC1Ev"))
    assert "driver" not in message and "different versions" in message


def test_no_driver_at_all_keeps_its_message() -> None:
    error = "libcuda.so.1: cannot open shared object file: No such file or directory"
    message = explain_import_failure(ImportError(error))
    assert "no NVIDIA driver" in message and "docker run --gpus all" in message


def test_simulated_driver_cuda_version_from_a_stub_driver(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux") or shutil.which("gcc") is None:
        pytest.skip("gcc builds the stub driver, a Linux shared object")
    from helpers.cuda_fake_site import gcc_shared

    stub = gcc_shared(
        tmp_path / "libcuda.so.1",
        soname="libcuda.so.1",
        source="int cuDriverGetVersion(int *v) { *v = 12020; return 0; }\n",
    )
    assert diagnose.driver_cuda_version(str(stub)) == (12, 2)
    assert diagnose.driver_cuda_version(str(tmp_path / "absent.so")) is None
