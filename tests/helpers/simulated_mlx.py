"""A fake ``mlx.core`` with the API surface and error texts of a given mlx
version and backend, for the hardware this machine lacks (Metal, CUDA).

What each version has is taken from the reference table (and checked on the
real CPU wheels where they can show it): top-level memory API since 0.24.1,
``mx.is_available`` since 0.26.2, ``mx.cuda`` since 0.29.0, ``mx.device_info``
and ``mx.device_count`` since 0.30.4.  Tests using it say "simulated" in
their names.
"""

from __future__ import annotations

import types
from typing import Any

METAL_KEYS_M2 = {
    "device_name": "Apple M2 Max",
    "architecture": "applegpu_g14s",
    "max_buffer_length": 57_982_058_496,
    "max_recommended_working_set_size": 77_309_411_328,
    "memory_size": 103_079_215_104,
    "resource_limit": 499_000,
}

CUDA_KEYS_H100 = {
    "device_name": "NVIDIA H100 80GB HBM3",
    "uuid": "GPU-1f2e3d4c-0000-1111-2222-333344445555",
    "architecture": "sm_90",
    "pci_bus_id": "0000:19:00.0",
    "compute_capability_major": 9,
    "compute_capability_minor": 0,
    "free_memory": 84_282_802_176,
    "total_memory": 85_045_379_072,
}


def _vt(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


class DeviceType:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"DeviceType.{self.name}"


class Device:
    def __init__(self, type: Any, index: int = 0) -> None:
        self.type = type if isinstance(type, DeviceType) else type.type
        self.index = index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DeviceType):
            return self.type is other
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type.name, self.index))

    def __repr__(self) -> str:
        return f"Device({self.type.name}, {self.index})"


def make_fake_mlx(version: str, backend: str, *, gpus: int = 1, info: dict[str, Any] | None = None) -> Any:
    """``backend``: "metal", "cuda" or "cpu" (the wheel's build); ``gpus``: GPUs present."""
    v = _vt(version)
    mx = types.SimpleNamespace()
    mx.__version__ = version
    mx.__name__ = "mlx.core"
    mx.cpu = DeviceType("cpu")
    mx.gpu = DeviceType("gpu")
    mx.Device = Device
    has_gpu = backend in ("metal", "cuda") and gpus > 0
    state: dict[str, Any] = {
        "default": Device(mx.gpu if has_gpu else mx.cpu),
        "memory_limit": None,
        "wired_limit": 0,
        "synced": [],
    }
    mx._state = state
    gpu_info = dict(info if info is not None else (METAL_KEYS_M2 if backend == "metal" else CUDA_KEYS_H100))

    def default_device() -> Device:
        return state["default"]

    def set_default_device(device: Any) -> None:
        dev = device if isinstance(device, Device) else Device(device)
        if dev.type is mx.gpu and not has_gpu:
            raise ValueError("[set_default_device] Cannot set gpu device without gpu backend.")
        state["default"] = dev

    mx.default_device = default_device
    mx.set_default_device = set_default_device
    mx.default_stream = lambda device: (
        "stream",
        Device(device) if not isinstance(device, Device) else device,
    )
    mx.synchronize = lambda stream=None: state["synced"].append(stream)

    # memory API: top level since 0.24.1 (always, for our 0.26.5 floor)
    mx.get_active_memory = lambda: 1024
    mx.get_peak_memory = lambda: 4096
    mx.get_cache_memory = lambda: 512

    def set_memory_limit(limit: int) -> int:
        previous = state["memory_limit"] or 0
        state["memory_limit"] = limit
        return previous

    def set_wired_limit(limit: int) -> int:
        if backend == "metal" and has_gpu:
            if limit > gpu_info["max_recommended_working_set_size"]:
                raise ValueError(
                    "[metal::set_wired_limit] Setting a wired limit larger than "
                    "the maximum working set size is not allowed."
                )
            previous = state["wired_limit"]
            state["wired_limit"] = limit
            return int(previous)
        return 0

    mx.set_memory_limit = set_memory_limit
    mx.set_wired_limit = set_wired_limit
    mx.set_cache_limit = lambda limit: 0

    if v >= (0, 26, 2):
        mx.is_available = lambda d: (d is mx.cpu or getattr(d, "type", None) is mx.cpu) or has_gpu

    metal = types.SimpleNamespace()
    metal.is_available = lambda: backend == "metal"

    def metal_device_info() -> dict[str, Any]:
        if backend != "metal":
            if v < (0, 30, 4):
                raise RuntimeError("[metal::device_info] Cannot get device info without metal backend")
            return {}
        return dict(gpu_info)

    metal.device_info = metal_device_info
    metal.set_wired_limit = set_wired_limit
    mx.metal = metal

    if v >= (0, 29, 0):
        cuda = types.SimpleNamespace()
        # True whenever the wheel was built with CUDA, GPUs or not.
        cuda.is_available = lambda: backend == "cuda"
        mx.cuda = cuda

    if v >= (0, 30, 4):

        def device_count(device_type: Any) -> int:
            if device_type is mx.cpu:
                return 1
            return gpus if backend in ("metal", "cuda") else 0

        def device_info(d: Any = None) -> dict[str, Any]:
            dev = state["default"] if d is None else (d if isinstance(d, Device) else Device(d))
            if dev.type is mx.cpu:
                return {"architecture": "x86_64", "device_name": "Simulated CPU"}
            if not has_gpu:
                return {}  # what a real CPU wheel answers for mx.gpu
            return dict(gpu_info)

        mx.device_count = device_count
        mx.device_info = device_info
    return mx
