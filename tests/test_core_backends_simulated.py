"""Backends on hardware this machine lacks, with a simulated ``mlx.core``.

Each fake reproduces the API surface and error texts of a named mlx version
(see tests/helpers/simulated_mlx.py); every test here says "simulated" in its name.
"""

from __future__ import annotations

import sys

import pytest
from helpers.simulated_mlx import CUDA_KEYS_H100, METAL_KEYS_M2, make_fake_mlx

from mlx_portable import BackendUnavailableError, DeviceInfo
from mlx_portable.backends import (
    Backend,
    CpuBackend,
    CudaBackend,
    MetalBackend,
    select_backend,
)


@pytest.fixture
def on_macos(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")


@pytest.fixture
def no_nvidia_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlx_portable.backends.cuda.nvidia_driver_version", lambda: None)
    monkeypatch.setattr("mlx_portable.install_hint.nvidia_driver_version", lambda: None)


# -- CUDA ---------------------------------------------------------------------


def test_simulated_cuda_029_available_without_device_count_uses_driver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mx = make_fake_mlx("0.29.4", "cuda")
    assert not hasattr(mx, "device_count") and not hasattr(mx, "device_info")
    monkeypatch.setattr("mlx_portable.backends.cuda.proc_gpu_names", lambda: ["NVIDIA H100 80GB HBM3"])
    result = CudaBackend(mx).probe()
    assert result.available, result
    info = CudaBackend(mx).device_info()
    assert info.device_name == "NVIDIA H100 80GB HBM3"
    assert info.memory_size is None and info.compute_capability is None


def test_simulated_cuda_029_wheel_without_gpu_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    # mx.cuda.is_available() is True on a CUDA wheel with zero GPUs.
    mx = make_fake_mlx("0.29.4", "cuda", gpus=0)
    assert mx.cuda.is_available()
    monkeypatch.setattr("mlx_portable.backends.cuda.proc_gpu_names", lambda: [])
    result = CudaBackend(mx).probe()
    assert not result.available
    assert "no GPU is visible" in result.reason
    assert "MLX_PORTABLE_BACKEND=cpu" in result.remedy


def test_simulated_cuda_0304_wheel_with_zero_gpus_uses_device_count() -> None:
    mx = make_fake_mlx("0.30.6", "cuda", gpus=0)
    result = CudaBackend(mx).probe()
    assert not result.available and "no GPU is visible" in result.reason


def test_simulated_cuda_visible_devices_hides_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    result = CudaBackend(make_fake_mlx("0.32.4", "cuda")).probe()
    assert not result.available and "CUDA_VISIBLE_DEVICES" in result.reason


def test_simulated_cuda_mlx_028_has_no_cuda_namespace(no_nvidia_driver: None) -> None:
    result = CudaBackend(make_fake_mlx("0.28.0", "cpu")).probe()
    assert not result.available
    assert "0.29.0" in result.reason
    assert 'pip install "mlx[cuda13]"' in result.remedy


def test_simulated_cuda_0324_device_info_normalized() -> None:
    info = CudaBackend(make_fake_mlx("0.32.4", "cuda")).device_info()
    assert info == DeviceInfo(
        backend="cuda",
        device_name="NVIDIA H100 80GB HBM3",
        architecture="sm_90",
        memory_size=CUDA_KEYS_H100["total_memory"],
        recommended_working_set=None,
        free_memory=CUDA_KEYS_H100["free_memory"],
        compute_capability=(9, 0),
        raw=CUDA_KEYS_H100,
    )


def test_simulated_cuda_memory_limit_is_fraction_of_total_memory() -> None:
    mx = make_fake_mlx("0.32.4", "cuda")
    backend = CudaBackend(mx)
    limit = backend.set_memory_limit(0.5)
    assert limit.memory_limit == CUDA_KEYS_H100["total_memory"] // 2
    assert mx._state["memory_limit"] == limit.memory_limit
    assert limit.wired_limit is None
    default = backend.set_memory_limit()
    assert default.memory_limit == int(CUDA_KEYS_H100["total_memory"] * 0.95)
    assert backend.set_memory_limit(1 << 30).memory_limit == 1 << 30
    with pytest.raises(ValueError, match="more than the total device memory"):
        backend.set_memory_limit(CUDA_KEYS_H100["total_memory"] + 1)
    with pytest.raises(ValueError, match="fraction must be in"):
        backend.set_memory_limit(1.5)
    with pytest.raises(TypeError, match="bytes"):
        backend.set_memory_limit("half")  # type: ignore[arg-type]


def test_simulated_cuda_029_memory_limit_needs_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlx_portable.backends.cuda.proc_gpu_names", lambda: ["NVIDIA A100"])
    limit = CudaBackend(make_fake_mlx("0.29.4", "cuda")).set_memory_limit(0.9)
    assert limit.memory_limit is None and "pass bytes" in limit.note


# -- Metal --------------------------------------------------------------------


def test_simulated_metal_probe_needs_macos() -> None:
    if sys.platform == "darwin":
        pytest.skip("this machine is a Mac")
    result = MetalBackend(make_fake_mlx("0.32.4", "metal")).probe()
    assert not result.available and "macOS" in result.reason


@pytest.mark.parametrize("version", ["0.26.5", "0.29.4", "0.30.6", "0.32.4"])
def test_simulated_metal_available_and_device_info(on_macos: None, version: str) -> None:
    backend = MetalBackend(make_fake_mlx(version, "metal"))
    assert backend.probe().available
    info = backend.device_info()
    assert info.backend == "metal"
    assert info.device_name == "Apple M2 Max"
    assert info.memory_size == METAL_KEYS_M2["memory_size"]
    assert info.recommended_working_set == METAL_KEYS_M2["max_recommended_working_set_size"]
    assert info.free_memory is None and info.compute_capability is None


def test_simulated_metal_vm_without_gpu(on_macos: None) -> None:
    result = MetalBackend(make_fake_mlx("0.32.4", "metal", gpus=0)).probe()
    assert not result.available and "no GPU device" in result.reason


def test_simulated_metal_wheel_without_metal(on_macos: None) -> None:
    result = MetalBackend(make_fake_mlx("0.32.4", "cpu")).probe()
    assert not result.available and "built without Metal" in result.reason
    assert 'pip install "mlx"' in result.remedy


def test_simulated_metal_memory_limit_sets_wired_only_with_gpu_default(on_macos: None) -> None:
    mx = make_fake_mlx("0.32.4", "metal")
    rws = METAL_KEYS_M2["max_recommended_working_set_size"]
    limit = MetalBackend(mx).set_memory_limit(0.5)
    assert limit.memory_limit == rws // 2
    assert limit.wired_limit == rws // 2 and mx._state["wired_limit"] == rws // 2
    # A Mac whose default device is the CPU: no wired limit.
    mx2 = make_fake_mlx("0.32.4", "metal")
    mx2.set_default_device(mx2.cpu)
    limit2 = MetalBackend(mx2).set_memory_limit()
    assert limit2.memory_limit == rws and limit2.wired_limit is None
    assert mx2._state["wired_limit"] == 0


# -- CPU and selection -------------------------------------------------------


def test_simulated_cpu_backend_on_cuda_wheel_reports_cpu() -> None:
    info = CpuBackend(make_fake_mlx("0.32.4", "cuda")).device_info()
    assert info.backend == "cpu" and info.device_name == "Simulated CPU"
    assert info.memory_size and info.memory_size > 0


def test_simulated_cuda_machine_selects_cuda(no_nvidia_driver: None) -> None:
    selection = select_backend(["metal", "cuda", "cpu"], forced=False, mx=make_fake_mlx("0.32.4", "cuda"))
    assert selection.backend.name == "cuda"
    assert [p.name for p in selection.probes] == ["metal", "cuda", "cpu"]
    assert isinstance(selection.backend, Backend)


def test_simulated_cuda_wheel_without_gpu_falls_back_to_cpu_in_auto_mode() -> None:
    selection = select_backend(
        ["metal", "cuda", "cpu"], forced=False, mx=make_fake_mlx("0.32.4", "cuda", gpus=0)
    )
    assert selection.backend.name == "cpu"
    cuda = next(p for p in selection.probes if p.name == "cuda")
    assert not cuda.available and cuda.reason


def test_simulated_forced_cuda_without_gpu_raises_with_reason_and_remedy() -> None:
    with pytest.raises(BackendUnavailableError) as info:
        select_backend(["cuda"], forced=True, mx=make_fake_mlx("0.30.6", "cuda", gpus=0))
    err = info.value
    assert err.backend == "cuda"
    assert "no GPU is visible" in str(err) and "MLX_PORTABLE_BACKEND" in str(err)
    assert "nvidia-smi" in err.remedy


def test_simulated_forced_cuda_on_cpu_wheel_names_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlx_portable.backends.cuda.nvidia_driver_version", lambda: (580, 65))
    monkeypatch.setattr("mlx_portable.install_hint.nvidia_driver_version", lambda: (580, 65))
    with pytest.raises(BackendUnavailableError) as info:
        select_backend(["cuda"], forced=True, mx=make_fake_mlx("0.32.4", "cpu"))
    assert 'pip install "mlx[cuda13]"' in str(info.value)


def test_simulated_forced_order_takes_first_available() -> None:
    selection = select_backend(["cuda", "cpu"], forced=True, mx=make_fake_mlx("0.30.6", "cuda", gpus=0))
    assert selection.backend.name == "cpu" and selection.forced


def test_simulated_every_backend_is_a_backend() -> None:
    mx = make_fake_mlx("0.32.4", "cuda")
    for cls in (MetalBackend, CudaBackend, CpuBackend):
        backend = cls(mx)
        assert isinstance(backend, Backend)
        stats = backend.memory()
        assert (stats.active, stats.peak, stats.cache) == (1024, 4096, 512)
        backend.synchronize()
    assert len(mx._state["synced"]) == 3
