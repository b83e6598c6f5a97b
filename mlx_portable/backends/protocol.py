"""The :class:`Backend` protocol and the plain data its members return.

One implementation per row of :mod:`mlx_portable.backend_table`: ``metal.py``
and ``cpu.py`` here, ``mlx_portable/cuda/backend.py`` with the rest of CUDA.
Probes return data (a :class:`ProbeResult` with a reason) rather than printing
or raising, so that every "no" can be shown to the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["Backend", "DeviceInfo", "MemoryLimit", "MemoryStats", "ProbeResult"]


@dataclass(frozen=True)
class ProbeResult:
    """Whether a backend can run here, and why (or why not)."""

    name: str
    available: bool
    reason: str
    remedy: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeviceInfo:
    """Device facts normalized across backends and mlx versions.

    Sizes are in bytes, ``None`` where this backend or mlx version cannot tell.
    ``raw`` is what mlx itself reported (``mx.device_info()`` from 0.30.4,
    ``mx.metal.device_info()`` before that on Metal, ``{}`` where neither
    applies).
    """

    backend: str
    device_name: str | None = None
    architecture: str | None = None
    memory_size: int | None = None
    recommended_working_set: int | None = None
    free_memory: int | None = None
    compute_capability: tuple[int, int] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["raw"] = dict(self.raw)
        if self.compute_capability is not None:
            out["compute_capability"] = list(self.compute_capability)
        return out


@dataclass(frozen=True)
class MemoryStats:
    """mlx's allocator counters, in bytes."""

    active: int
    peak: int
    cache: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class MemoryLimit:
    """What :meth:`Backend.set_memory_limit` did."""

    backend: str
    memory_limit: int | None
    wired_limit: int | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Backend(Protocol):
    """A place MLX can compute: Apple Metal, NVIDIA CUDA or the CPU."""

    @property
    def name(self) -> str:
        """``"metal"``, ``"cuda"`` or ``"cpu"``."""
        ...

    @property
    def device_type(self) -> str:
        """``"gpu"`` or ``"cpu"``: ask this instead of comparing names."""
        ...

    def built_into(self, mx: Any) -> bool:
        """Whether this ``mlx.core`` was built with this backend."""
        ...

    @property
    def supports_wired_memory(self) -> bool:
        """Whether ``mx.set_wired_limit`` means anything here (Metal only)."""
        ...

    def probe(self) -> ProbeResult:
        """Say whether this backend can run here; never raises."""
        ...

    def device_info(self) -> DeviceInfo:
        """Normalized facts about this backend's device."""
        ...

    def synchronize(self) -> None:
        """Wait for all work queued on this backend's default stream."""
        ...

    def memory(self) -> MemoryStats:
        """Active, peak and cache bytes of mlx's allocator."""
        ...

    def set_memory_limit(self, limit: int | float | None = None) -> MemoryLimit:
        """Limit mlx's memory: bytes (``int``) or a fraction of the device (``float``)."""
        ...
