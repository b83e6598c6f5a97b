"""The :class:`Backend` protocol: what every backend answers.

One implementation per row of :mod:`mlx_portable.backend_table`: ``metal.py``,
``cuda.py`` and ``cpu.py`` here.  The plain data its members return lives in
:mod:`.results`, which the activation path loads; this module is imported
only by code that names the Protocol (``isinstance`` checks, type hints),
because ``typing`` is not loaded by ``import mlx.core`` and costs about 6 ms
on the CI machine, more than the whole first ``activate()`` budget allows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .results import DeviceInfo, MemoryLimit, MemoryStats, ProbeResult

if TYPE_CHECKING:
    from ..installed_probe import InstalledProbe, MachineFacts

__all__ = ["Backend", "DeviceInfo", "MemoryLimit", "MemoryStats", "ProbeResult"]


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

    def predict(self, facts: MachineFacts) -> InstalledProbe:
        """Say whether it can run here without importing mlx (:func:`mlx_portable.probe_installed`)."""
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
