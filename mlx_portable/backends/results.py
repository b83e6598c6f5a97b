"""The plain data the :class:`~mlx_portable.backends.protocol.Backend` members return.

Probes return data (a :class:`ProbeResult` with a reason) rather than printing
or raising, so that every "no" can be shown to the user.
"""

from __future__ import annotations

from .._record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


__all__ = ["DeviceInfo", "MemoryLimit", "MemoryStats", "ProbeResult"]


class ProbeResult(Record):
    """Whether a backend can run here, and why (or why not)."""

    __slots__ = ("available", "name", "reason", "remedy")
    name: str
    available: bool
    reason: str
    remedy: str

    def __init__(self, name: str, available: bool, reason: str, remedy: str = "") -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "available", available)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "remedy", remedy)

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


class DeviceInfo(Record):
    """Device facts normalized across backends and mlx versions.

    Sizes are in bytes, ``None`` where this backend or mlx version cannot tell.
    ``raw`` is what mlx itself reported (``mx.device_info()`` from 0.30.4,
    ``mx.metal.device_info()`` before that on Metal, ``{}`` where neither
    applies).
    """

    __slots__ = (
        "architecture",
        "backend",
        "compute_capability",
        "device_name",
        "free_memory",
        "memory_size",
        "raw",
        "recommended_working_set",
    )
    backend: str
    device_name: str | None
    architecture: str | None
    memory_size: int | None
    recommended_working_set: int | None
    free_memory: int | None
    compute_capability: tuple[int, int] | None
    raw: Mapping[str, Any]

    def __init__(
        self,
        backend: str,
        device_name: str | None = None,
        architecture: str | None = None,
        memory_size: int | None = None,
        recommended_working_set: int | None = None,
        free_memory: int | None = None,
        compute_capability: tuple[int, int] | None = None,
        raw: Mapping[str, Any] | None = None,
    ) -> None:
        object.__setattr__(self, "backend", backend)
        object.__setattr__(self, "device_name", device_name)
        object.__setattr__(self, "architecture", architecture)
        object.__setattr__(self, "memory_size", memory_size)
        object.__setattr__(self, "recommended_working_set", recommended_working_set)
        object.__setattr__(self, "free_memory", free_memory)
        object.__setattr__(self, "compute_capability", compute_capability)
        object.__setattr__(self, "raw", {} if raw is None else raw)

    def to_dict(self) -> dict[str, Any]:
        out = self._asdict()
        out["raw"] = dict(self.raw)
        if self.compute_capability is not None:
            out["compute_capability"] = list(self.compute_capability)
        return out


class MemoryStats(Record):
    """mlx's allocator counters, in bytes."""

    __slots__ = ("active", "cache", "peak")
    active: int
    peak: int
    cache: int

    def __init__(self, active: int, peak: int, cache: int) -> None:
        object.__setattr__(self, "active", active)
        object.__setattr__(self, "peak", peak)
        object.__setattr__(self, "cache", cache)

    def to_dict(self) -> dict[str, int]:
        return {"active": self.active, "peak": self.peak, "cache": self.cache}


class MemoryLimit(Record):
    """What :meth:`Backend.set_memory_limit` did."""

    __slots__ = ("backend", "memory_limit", "note", "wired_limit")
    backend: str
    memory_limit: int | None
    wired_limit: int | None
    note: str

    def __init__(self, backend: str, memory_limit: int | None, wired_limit: int | None, note: str) -> None:
        object.__setattr__(self, "backend", backend)
        object.__setattr__(self, "memory_limit", memory_limit)
        object.__setattr__(self, "wired_limit", wired_limit)
        object.__setattr__(self, "note", note)

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()
