"""Backend probes and selection.

Priority is Metal, then CUDA, then CPU; ``MLX_PORTABLE_BACKEND`` names one
backend or an order.  Every probe's answer is kept with its reason so the
report can say why each backend was or was not picked.
"""

from __future__ import annotations

import _thread

from ..backend_table import backend_class, backend_names
from ..errors import BackendUnavailableError
from ..settings import ENV_BACKEND, Settings, read_settings
from ._common import logger
from .cpu import CpuBackend
from .metal import MetalBackend
from .protocol import DeviceInfo, MemoryLimit, MemoryStats, ProbeResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
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
    "current_backend",
    "probe_all",
    "reset_current_backend",
    "select_backend",
]


def __getattr__(name: str) -> Any:
    if name == "CudaBackend":  # lives with the rest of CUDA, in mlx_portable.cuda
        return backend_class("cuda")
    if name == "Backend":  # the Protocol needs typing: built on first use
        from ._backend_protocol import Backend

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


class Selection:
    """The chosen backend with every probe made on the way."""

    __slots__ = ("backend", "forced", "probes")

    def __init__(self, backend: Backend, probes: list[ProbeResult], forced: bool) -> None:
        self.backend = backend
        self.probes = probes
        self.forced = forced


def select_backend(
    order: Sequence[str] | None = None,
    *,
    forced: bool | None = None,
    mx: Any | None = None,
    settings: Settings | None = None,
) -> Selection:
    """Pick the first available backend in ``order``.

    In automatic mode (no ``MLX_PORTABLE_BACKEND``) CPU always answers.  When
    the order was given explicitly and none of it is available, raise
    :class:`BackendUnavailableError` with each probe's reason and a remedy.
    """
    if order is None:
        settings = settings or read_settings()
        order, forced = settings.backend_order, settings.backend_forced
    forced = bool(forced) if forced is not None else tuple(order) != backend_names()
    by_name = {b.name: b for b in all_backends(mx)}
    probes = {name: by_name[name].probe() for name in backend_names()}
    for name in order:
        result = probes[name]
        if result.available:
            logger.debug("backend %s chosen: %s", name, result.reason)
            return Selection(by_name[name], list(probes.values()), forced)
        logger.debug("backend %s not chosen: %s", name, result.reason)
    failed = [probes[name] for name in order]
    first = failed[0]
    details = "; ".join(f"{p.name}: {p.reason}" for p in failed)
    remedies = "; ".join(f"{p.name}: {p.remedy}" for p in failed if p.remedy)
    raise BackendUnavailableError(
        f"{ENV_BACKEND}={','.join(order)} asks for a backend that is not available here "
        f"({details}). To fix: {remedies or 'install a matching mlx'}; or unset {ENV_BACKEND} "
        "to choose automatically.",
        backend=first.name,
        reason=first.reason,
        remedy=first.remedy,
    )


_lock = _thread.allocate_lock()
_current: Selection | None = None


def current_selection() -> Selection:
    """The cached :class:`Selection`, probed once on first use (thread-safe)."""
    global _current
    sel = _current
    if sel is not None:
        return sel
    with _lock:
        if _current is None:
            _current = select_backend()
        return _current


def current_backend() -> Backend:
    """The backend mlx-portable runs on: lazily probed, cached, thread-safe."""
    return current_selection().backend


def reset_current_backend() -> None:
    """Forget the cached choice (after changing ``MLX_PORTABLE_BACKEND``)."""
    global _current
    with _lock:
        _current = None
