"""The CPU: always available, no device memory of its own."""

from __future__ import annotations

import os

from ..validation import require_memory_limit
from ._common import MlxBackendBase, raw_device_info, str_or_none
from .results import DeviceInfo, MemoryLimit, ProbeResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..installed_probe import InstalledProbe, MachineFacts

__all__ = ["CpuBackend"]


class CpuBackend(MlxBackendBase):
    """mlx's CPU backend (every wheel has it)."""

    _name = "cpu"
    _device_type = "cpu"

    @property
    def supports_wired_memory(self) -> bool:
        return False

    def predict(self, facts: MachineFacts) -> InstalledProbe:
        """Whether mlx's CPU backend can run here, told from the packages (no mlx)."""
        from ..backend_table import backend_distributions, row
        from ..installed_probe import InstalledProbe

        open_until = (
            "that mlx.core imports (matching mlx and backend package versions): known when mlx.core loads"
        )
        own = row(self.name).distributions
        if facts.packages["mlx"] is None:
            return InstalledProbe(self.name, False, "mlx is not installed", 'pip install "mlx[cpu]"')
        # On Linux `pip install mlx` alone brings no libmlx: some backend package must be there.
        if facts.os.startswith("linux") and not any(facts.packages.get(d) for d in backend_distributions()):
            return InstalledProbe(
                self.name,
                False,
                f"mlx is installed without a backend package ({', '.join(own)})",
                f'pip install "{own[0]}=={facts.packages["mlx"]}"',
            )
        return InstalledProbe(self.name, True, f"mlx {facts.packages['mlx']}", unconfirmed=open_until)

    def probe(self) -> ProbeResult:
        return ProbeResult("cpu", True, "the CPU backend is always available")

    def device_info(self) -> DeviceInfo:
        from ..installed_probe import cpu_model, host_memory

        mx = self.mx
        raw: dict[str, Any] = raw_device_info(mx, mx.cpu) or {}
        return DeviceInfo(
            backend="cpu",
            device_name=str_or_none(raw.get("device_name")) or cpu_model(),
            architecture=str_or_none(raw.get("architecture"))
            or (os.uname().machine if hasattr(os, "uname") else None)
            or None,
            memory_size=host_memory(),
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
