"""The :class:`Backend` protocol (built on first use: ``typing`` costs milliseconds).

Reached as :data:`mlx_portable.backends.protocol.Backend`; kept in a module of
its own so that the data classes of :mod:`.protocol` load without ``typing``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .protocol import DeviceInfo, MemoryLimit, MemoryStats, ProbeResult

__all__ = ["Backend"]


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
