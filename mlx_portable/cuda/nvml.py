"""GPU name and memory from NVML (``libnvidia-ml.so.1``, part of the driver) via ``ctypes``.

mlx has no device query on CUDA before 0.30.4 (``mx.device_info``), so
without this a memory limit given as a fraction of the device cannot be
computed there.  NVML creates no CUDA context and needs no pip package; the
``nvidia-ml-py`` bindings would add a dependency for four calls.

NVML numbers devices in PCI bus order and ignores ``CUDA_VISIBLE_DEVICES``;
CUDA numbers them fastest first unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``.  The
device mlx uses (CUDA device 0) is therefore found by UUID when
``CUDA_VISIBLE_DEVICES`` names one, by index when the two orders agree (one
GPU, or ``CUDA_DEVICE_ORDER=PCI_BUS_ID``), and otherwise the smallest of the
visible GPUs is reported, so that a fraction of it is safe on any of them.
"""

from __future__ import annotations

import ctypes
import os

from .driver import visible_devices

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["GpuMemory", "gpu_memory"]

NVML_LIBRARY = "libnvidia-ml.so.1"


class GpuMemory:
    """What NVML says about the GPU mlx would use."""

    __slots__ = ("free", "name", "note", "total")

    def __init__(self, name: str | None, total: int, free: int, note: str) -> None:
        self.name = name
        self.total = total
        self.free = free
        self.note = note

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "total_memory": self.total, "free_memory": self.free, "source": self.note}


def gpu_memory(env: Mapping[str, str] | None = None, library: str = NVML_LIBRARY) -> GpuMemory | None:
    """The GPU mlx would use, per NVML; ``None`` where NVML is absent or fails."""
    env = os.environ if env is None else env
    try:
        nvml = ctypes.CDLL(library)
    except OSError:
        return None
    if nvml.nvmlInit_v2() != 0:
        return None
    try:
        return _query(nvml, env)
    finally:
        nvml.nvmlShutdown()


class _Memory(ctypes.Structure):
    _fields_ = (("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong))


def _query(nvml: Any, env: Mapping[str, str]) -> GpuMemory | None:
    count = ctypes.c_uint(0)
    if nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0 or count.value == 0:
        return None
    found = visible_devices(env)
    if found == []:
        return None  # every GPU hidden
    visible = found or []
    handles: list[ctypes.c_void_p] = []
    note = "NVML"
    if visible and visible[0].startswith(("GPU-", "MIG-")):
        handle = ctypes.c_void_p()
        if nvml.nvmlDeviceGetHandleByUUID(visible[0].encode(), ctypes.byref(handle)) == 0:
            handles, note = [handle], f"NVML, device {visible[0]}"
    if not handles:
        indices = [int(v) for v in visible if v.isdigit()] or list(range(count.value))
        pci_order = count.value == 1 or env.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID"
        if pci_order:
            indices, note = indices[:1], f"NVML, device {indices[0]}"
        else:
            note = f"NVML, smallest of {len(indices)} GPUs (CUDA and NVML may number them differently)"
        for index in indices:
            handle = ctypes.c_void_p()
            if nvml.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index), ctypes.byref(handle)) == 0:
                handles.append(handle)
    best: GpuMemory | None = None
    for handle in handles:
        memory = _Memory()
        if nvml.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(memory)) != 0:
            continue
        name_buffer = ctypes.create_string_buffer(96)
        got_name = nvml.nvmlDeviceGetName(handle, name_buffer, ctypes.c_uint(96)) == 0
        name = name_buffer.value.decode("utf-8", "replace") if got_name else None
        if best is None or memory.total < best.total:
            best = GpuMemory(name, int(memory.total), int(memory.free), note)
    return best
