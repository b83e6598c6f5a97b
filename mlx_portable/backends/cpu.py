"""The CPU: always available, no device memory of its own."""

from __future__ import annotations

import os

from ..validation import require_memory_limit
from ._common import MlxBackendBase, raw_device_info, str_or_none
from .results import DeviceInfo, MemoryLimit, ProbeResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["CpuBackend"]


def _physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or None


class CpuBackend(MlxBackendBase):
    """mlx's CPU backend (every wheel has it)."""

    _name = "cpu"
    _device_type = "cpu"

    @property
    def supports_wired_memory(self) -> bool:
        return False

    def probe(self) -> ProbeResult:
        return ProbeResult("cpu", True, "the CPU backend is always available")

    def device_info(self) -> DeviceInfo:
        mx = self.mx
        raw: dict[str, Any] = raw_device_info(mx, mx.cpu) or {}
        return DeviceInfo(
            backend="cpu",
            device_name=str_or_none(raw.get("device_name")) or _cpu_model(),
            architecture=str_or_none(raw.get("architecture"))
            or (os.uname().machine if hasattr(os, "uname") else None)
            or None,
            memory_size=_physical_memory(),
            raw=raw,
        )

    def set_memory_limit(self, limit: int | float | None = None) -> MemoryLimit:
        """A no-op: the CPU backend allocates from system RAM with no device limit.

        The value is still checked as on a GPU, so a bad one fails here too.
        """
        require_memory_limit(limit)
        return MemoryLimit(
            "cpu",
            None,
            None,
            "no limit set: the CPU backend allocates from system RAM; it has no device or wired memory",
        )
