"""The backends (one module each, one row each in :mod:`mlx_portable.backend_table`) and their probes.

The choice among them, and the one cache of it, is :mod:`.selection`.
"""

from __future__ import annotations

from ..backend_table import backend_class, backend_names
from .cpu import CpuBackend
from .metal import MetalBackend
from .results import DeviceInfo, MemoryLimit, MemoryStats, ProbeResult
from .selection import (
    Selection,
    cached_selection,
    current_backend,
    current_selection,
    reset_current_backend,
    select_backend,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .protocol import Backend

__all__ = [
    "Backend",
    "CpuBackend",
    "CudaBackend",
    "DeviceInfo",
    "MemoryLimit",
    "MemoryStats",
    "MetalBackend",
    "ProbeResult",
    "Selection",
    "all_backends",
    "cached_selection",
    "current_backend",
    "current_selection",
    "probe_all",
    "reset_current_backend",
    "select_backend",
]


def __getattr__(name: str) -> Any:
    if name == "CudaBackend":  # lives with the rest of CUDA, in mlx_portable.cuda
        return backend_class("cuda")
    if name == "Backend":  # the Protocol imports typing (6 ms): only for those who name it
        from .protocol import Backend

        return Backend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def all_backends(mx: Any | None = None) -> list[Backend]:
    """One instance of each backend of the table, in default priority order."""
    return [backend_class(name)(mx) for name in backend_names()]


def probe_all(mx: Any | None = None, *, import_mlx: bool = True) -> list[ProbeResult]:
    """Probe every backend; each result says why it is or is not available.

    ``import_mlx=False`` answers from installed packages, the OS and the
    NVIDIA driver only (:func:`mlx_portable.probe_installed`, which is faster
    still and says more); each reason then ends with what stays unconfirmed
    until mlx loads.
    """
    from ..validation import require_bool, require_mx

    require_mx(mx, "probe_all(mx=...)")
    require_bool(import_mlx, "probe_all(import_mlx=...)")
    if not import_mlx:
        from ..installed_probe import probe_installed

        return [
            ProbeResult(
                p.name,
                p.available,
                _with_unconfirmed(p.reason, p.unconfirmed),
                p.remedy,
            )
            for p in probe_installed().backends
        ]
    return [b.probe() for b in all_backends(mx)]


def _with_unconfirmed(reason: str, unconfirmed: str) -> str:
    """``mlx 0.32.4; not yet known: that mlx.core imports (...)``: said once, not "until ...: known when"."""
    if not unconfirmed:
        return reason
    what = unconfirmed.removesuffix(": known when mlx.core loads")
    return f"{reason}; known only when mlx loads: {what}"
