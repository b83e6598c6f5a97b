"""``mlx_portable.memory_pressure()``: used, limit and fraction per backend.

The CPU runs on the real mlx wheel of the test environment (every matrix
mlx); Metal and CUDA on the simulated ``mlx.core`` of a named version.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.simulated_mlx import CUDA_KEYS_H100, METAL_KEYS_M2, make_fake_mlx
from test_cuda_memory import GIB, _fake_nvml

import mlx_portable
from mlx_portable.backends import CpuBackend, CudaBackend, MetalBackend
from mlx_portable.cuda import nvml
from mlx_portable.memory import MemoryPressure, host_memory_use

mx = pytest.importorskip("mlx.core")


def _consistent(p: MemoryPressure) -> None:
    assert p.limit is not None and p.fraction is not None
    assert 0 < p.used <= p.limit
    assert p.fraction == p.used / p.limit
    assert 0.0 < p.fraction <= 1.0


def test_cpu_host_memory_and_mlx_allocations_are_seen() -> None:
    before = mlx_portable.memory_pressure(CpuBackend())
    assert before.backend == "cpu"
    _consistent(before)
    assert before.limit is not None and before.limit <= CpuBackend().device_info().memory_size  # type: ignore[operator]
    assert before.note.startswith(("host memory", "container memory limit"))
    block = mx.ones((16, 1024, 1024))  # 64 MiB of float32
    mx.eval(block)
    after = mlx_portable.memory_pressure(CpuBackend())
    _consistent(after)
    assert after.mlx_active - before.mlx_active >= block.nbytes
    assert after.limit == before.limit
    assert after.to_dict()["backend"] == "cpu"
    del block


def test_default_is_the_active_backend() -> None:
    assert mlx_portable.memory_pressure().backend == mlx_portable.current_backend().name


def test_host_memory_matches_proc_meminfo_or_the_cgroup() -> None:
    used, limit, source = host_memory_use()
    assert 0 < used <= limit
    assert "memory" in source


@pytest.mark.parametrize("version", ["0.26.5", "0.30.0", "0.30.6", "0.32.4"])
def test_simulated_metal_limit_is_the_recommended_working_set(version: str) -> None:
    fake = make_fake_mlx(version, "metal")  # mx.metal.device_info() before 0.30.4, mx.device_info after
    p = mlx_portable.memory_pressure(MetalBackend(fake))
    assert (p.backend, p.used, p.limit) == ("metal", 1024, METAL_KEYS_M2["max_recommended_working_set_size"])
    assert p.fraction == 1024 / METAL_KEYS_M2["max_recommended_working_set_size"]
    assert p.mlx_active == 1024 and p.note == "recommended working set"


def test_simulated_metal_without_working_set_uses_memory_size() -> None:
    info = {k: v for k, v in METAL_KEYS_M2.items() if k != "max_recommended_working_set_size"}
    p = mlx_portable.memory_pressure(MetalBackend(make_fake_mlx("0.32.4", "metal", info=info)))
    assert p.limit == METAL_KEYS_M2["memory_size"] and "memory size" in p.note


@pytest.mark.parametrize("version", ["0.30.6", "0.32.4"])
def test_simulated_cuda_device_memory_from_device_info(version: str) -> None:
    p = mlx_portable.memory_pressure(CudaBackend(make_fake_mlx(version, "cuda")))
    total, free = CUDA_KEYS_H100["total_memory"], CUDA_KEYS_H100["free_memory"]
    assert (p.backend, p.used, p.limit) == ("cuda", total - free, total)
    _consistent(p)
    assert p.mlx_active == 1024


def test_simulated_cuda_029_device_memory_from_nvml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvml, "NVML_LIBRARY", _fake_nvml(tmp_path, 80 * GIB))
    p = mlx_portable.memory_pressure(CudaBackend(make_fake_mlx("0.29.4", "cuda")))
    assert (p.used, p.limit, p.fraction) == (40 * GIB, 80 * GIB, 0.5)


def test_simulated_cuda_029_without_nvml_says_the_limit_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvml, "NVML_LIBRARY", "libnvidia-ml-absent.so.1")
    monkeypatch.setattr("mlx_portable.backends.cuda.proc_gpu_names", lambda: [])
    p = mlx_portable.memory_pressure(CudaBackend(make_fake_mlx("0.29.4", "cuda")))
    assert (p.used, p.limit, p.fraction) == (1024, None, None)
    assert "NVML did not answer" in p.note


def test_bad_argument_says_what_to_pass() -> None:
    with pytest.raises(TypeError, match=r"takes an mlx-portable Backend .* not str"):
        mlx_portable.memory_pressure("cuda")  # type: ignore[arg-type]
