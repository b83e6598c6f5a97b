"""Behaviour shared by the three backends: mlx access, memory counters, sync."""

from __future__ import annotations

from .. import _mlx
from .._log import logger
from .results import MemoryStats

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..installed_probe import InstalledProbe, MachineFacts

__all__ = [
    "MlxBackendBase",
    "gpu_count",
    "int_or_none",
    "logger",
    "raw_device_info",
    "resolve_limit",
    "str_or_none",
]


def raw_device_info(mx: Any, device: Any) -> dict[str, Any] | None:
    """``mx.device_info(device)`` where this mlx has it (0.30.4+), else ``None``.

    The device is always passed: from 0.30.4 to 0.31.1 the signature's
    default is the default device *at import time* (``Device(cpu, 0)`` on a
    CPU wheel), not the current one.
    """
    fn = getattr(mx, "device_info", None)
    if fn is None:
        return None
    return dict(fn(device))


class MlxBackendBase:
    """Common plumbing; subclasses set ``_name`` and ``_device_type``."""

    _name = ""
    _device_type = "gpu"

    def __init__(self, mx: Any | None = None) -> None:
        # ``mx`` lets tests hand in a fake ``mlx.core`` of a given version.
        self._mx_override = mx

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r}>"

    @property
    def name(self) -> str:
        return self._name

    @property
    def device_type(self) -> str:
        """``"gpu"`` or ``"cpu"``: the mlx device this backend computes on."""
        return self._device_type

    @classmethod
    def built_into(cls, mx: Any) -> bool:
        """Whether ``mx`` (an ``mlx.core``) was built with this backend (CPU: always)."""
        if cls._device_type == "cpu":
            return True
        namespace = getattr(mx, cls._name, None)
        try:
            return bool(namespace is not None and namespace.is_available())
        except Exception:  # a broken build answers "no", never raises
            return False

    def predict(self, facts: MachineFacts) -> InstalledProbe:
        """Whether this backend can run here, told without mlx: from its row's packages.

        The backends of the table know more (the OS, the NVIDIA driver) and
        override this; a backend added with ``add_backend()`` gets this answer.
        """
        from ..backend_table import row
        from ..installed_probe import InstalledProbe

        if facts.packages.get("mlx") is None:
            return InstalledProbe(self.name, False, "mlx is not installed", 'pip install "mlx"')
        packages = row(self.name).distributions
        found = next((p for p in packages if facts.packages.get(p) is not None), None)
        if found is None:
            return InstalledProbe(
                self.name,
                False,
                f"no {self.name} backend package ({', '.join(packages)}) is installed",
                f"pip install {packages[0]}" if packages else "",
            )
        return InstalledProbe(
            self.name,
            True,
            f"{found} {facts.packages[found]}",
            unconfirmed="that mlx.core loads with this backend: known when mlx.core loads",
        )

    @property
    def mx(self) -> Any:
        return self._mx_override if self._mx_override is not None else _mlx.core()

    @property
    def device(self) -> Any:
        """``mx.gpu`` or ``mx.cpu`` as the device type of this backend."""
        return getattr(self.mx, self._device_type)

    def synchronize(self) -> None:
        mx = self.mx
        mx.synchronize(mx.default_stream(mx.Device(self.device)))

    def memory(self) -> MemoryStats:
        mx = self.mx
        # Top-level names since 0.24.1; ``mx.metal.*`` before, which print a
        # deprecation line once from 0.24.1 on, so prefer the top level.
        ns = mx if hasattr(mx, "get_active_memory") else mx.metal
        return MemoryStats(
            active=int(ns.get_active_memory()),
            peak=int(ns.get_peak_memory()),
            cache=int(ns.get_cache_memory()),
        )

    def _set_limit(self, nbytes: int) -> int:
        mx = self.mx
        ns = mx if hasattr(mx, "set_memory_limit") else mx.metal
        return int(ns.set_memory_limit(nbytes))


def resolve_limit(
    limit: int | float | None, total: int | None, *, default_fraction: float, what: str
) -> int | None:
    """Bytes for ``limit``: ``int`` bytes, ``float`` in (0, 1] a fraction of ``total``.

    ``None`` means ``default_fraction`` of ``total``. Returns ``None`` when a
    fraction was asked for but ``total`` is unknown.
    """
    from ..validation import require_memory_limit

    limit = require_memory_limit(limit)  # the check every backend shares, the CPU's included
    if limit is None:
        limit = default_fraction
    if isinstance(limit, float):
        if not 0.0 < limit <= 1.0:
            raise ValueError(
                f"set_memory_limit({limit!r}): a fraction must be in (0, 1]; pass an int for a size in bytes"
            )
        if total is None:
            return None
        return int(total * limit)
    if isinstance(limit, int):
        if limit <= 0:
            raise ValueError(f"set_memory_limit({limit!r}): bytes must be positive")
        if total is not None and limit > total:
            raise ValueError(
                f"set_memory_limit({limit}): more than the {what} of {total} bytes; "
                "pass at most that, or a fraction such as 0.9"
            )
        return limit
    raise TypeError(f"set_memory_limit() takes bytes (int) or a fraction (float), not {type(limit).__name__}")


def gpu_count(mx: Any) -> int | None:
    """GPUs mlx can see: ``mx.device_count`` (0.30.4+), else ``mx.is_available``; ``None`` if neither."""
    if hasattr(mx, "device_count"):
        return int(mx.device_count(mx.gpu))
    if hasattr(mx, "is_available"):
        return 1 if mx.is_available(mx.gpu) else 0
    return None


def int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def str_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None
