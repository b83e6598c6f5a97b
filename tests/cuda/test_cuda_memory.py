"""Memory limits on CUDA: against total device memory (mx.device_info, or NVML before mlx 0.30.4).

Simulated: a fake ``mlx.core`` of a given version (``simulated_mlx``) and a
fake ``libnvidia-ml.so.1`` compiled here with gcc, answering as NVML does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cuda_fake_site import gcc_shared, require_toolchain
from helpers.simulated_mlx import CUDA_KEYS_H100, make_fake_mlx

import mlx_portable
from mlx_portable.backends import cuda as cuda_backend
from mlx_portable.backends.cuda import CudaBackend
from mlx_portable.cuda import nvml

GIB = 1 << 30

_FAKE_NVML = r"""
#include <string.h>
typedef struct { unsigned long long total, free, used; } mem_t;
static const unsigned long long totals[] = {%(totals)s};
static int initialised = 0;
int nvmlInit_v2(void) { initialised = 1; return 0; }
int nvmlShutdown(void) { initialised = 0; return 0; }
int nvmlDeviceGetCount_v2(unsigned int *n) { *n = sizeof(totals) / sizeof(totals[0]); return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **h) {
    if (i >= sizeof(totals) / sizeof(totals[0])) return 2;
    *h = (void *)(unsigned long)(i + 1); return 0;
}
int nvmlDeviceGetHandleByUUID(const char *uuid, void **h) {
    if (strcmp(uuid, "GPU-0002") == 0) { *h = (void *)2; return 0; }
    return 6;
}
int nvmlDeviceGetMemoryInfo(void *h, mem_t *m) {
    if (!initialised) return 1;
    m->total = totals[(unsigned long)h - 1]; m->free = m->total / 2; m->used = m->total - m->free; return 0;
}
int nvmlDeviceGetName(void *h, char *name, unsigned int n) {
    strncpy(name, (unsigned long)h == 1 ? "NVIDIA A100-SXM4-80GB" : "NVIDIA A10", n); return 0;
}
"""


def _fake_nvml(tmp_path: Path, *totals: int) -> str:
    require_toolchain()
    source = _FAKE_NVML % {"totals": ", ".join(f"{t}ULL" for t in totals)}
    # Its own soname: loaded into this process, it must not answer later lookups of the real one.
    name = f"libnvidia-ml-simulated-{len(totals)}.so.1"
    return str(gcc_shared(tmp_path / name, soname=name, source=source))


@pytest.fixture(autouse=True)
def own_report_details(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Details set here go to a throwaway dict, not into the process-wide report."""
    from mlx_portable import activation

    monkeypatch.setattr(activation, "_details", {})
    yield
    monkeypatch.undo()
    activation._invalidate()  # drop a cached report built from the throwaway dict


def test_simulated_cuda_029_limit_from_nvml_total(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvml, "NVML_LIBRARY", _fake_nvml(tmp_path, 80 * GIB))
    backend = CudaBackend(make_fake_mlx("0.29.4", "cuda"))  # no mx.device_info before 0.30.4
    info = backend.device_info()
    assert (info.device_name, info.memory_size, info.free_memory) == (
        "NVIDIA A100-SXM4-80GB",
        80 * GIB,
        40 * GIB,
    )
    limit = backend.set_memory_limit(0.5)
    assert limit.memory_limit == 40 * GIB and limit.wired_limit is None


def test_simulated_nvml_picks_the_device_cuda_would(tmp_path: Path) -> None:
    library = _fake_nvml(tmp_path, 80 * GIB, 24 * GIB)
    by_uuid = nvml.gpu_memory({"CUDA_VISIBLE_DEVICES": "GPU-0002"}, library=library)
    assert by_uuid is not None and by_uuid.total == 24 * GIB and by_uuid.name == "NVIDIA A10"
    in_pci_order = nvml.gpu_memory(
        {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "0"}, library=library
    )
    assert in_pci_order is not None and in_pci_order.total == 80 * GIB
    # CUDA may number two GPUs differently from NVML: the smaller one is the safe answer.
    ambiguous = nvml.gpu_memory({}, library=library)
    assert ambiguous is not None and ambiguous.total == 24 * GIB and "smallest" in ambiguous.note


def test_nvml_absent_means_bytes_are_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvml, "NVML_LIBRARY", "libnvidia-ml-absent.so.1")
    monkeypatch.setattr(cuda_backend, "proc_gpu_names", lambda: ["NVIDIA A100"])
    backend = CudaBackend(make_fake_mlx("0.30.0", "cuda"))
    assert backend.device_info().device_name == "NVIDIA A100"
    limit = backend.set_memory_limit(0.9)
    assert limit.memory_limit is None and "pass bytes" in limit.note
    assert backend.set_memory_limit(8 * GIB).memory_limit == 8 * GIB


def test_simulated_public_set_memory_limit_reports_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = make_fake_mlx("0.32.4", "cuda")
    backend = CudaBackend(fake)
    monkeypatch.setattr("mlx_portable.backends.current_backend", lambda: backend)
    result = mlx_portable.set_memory_limit(0.75)
    total: int = CUDA_KEYS_H100["total_memory"]  # type: ignore[assignment]
    expected = int(total * 0.75)
    assert result.memory_limit == expected == fake._state["memory_limit"]
    detail = mlx_portable.report().details["memory_limit"]
    assert detail["backend"] == "cuda" and detail["memory_limit"] == expected
    with pytest.raises(ValueError, match="fraction must be in"):
        mlx_portable.set_memory_limit(0.0)
