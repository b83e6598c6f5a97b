"""Memory on the active backend: how full it is (``memory_pressure()``), its limit (``set_memory_limit()``).

``memory_pressure()``: how full the memory mlx computes in is, per backend.

Why: an inference engine evicts KV-cache entries when memory runs short.
Measuring that with the host's RAM (``psutil.virtual_memory()``) is wrong on
CUDA, where the model and the cache live in device memory, and on a Mac,
where what the GPU may keep resident is bounded by the recommended working
set (the wired-memory ceiling), well below the RAM size.  One call gives the
number such an engine needs on every backend and every supported mlx:

* Metal: ``used`` is mlx's active memory (``mx.get_active_memory()``,
  ``mx.metal.get_active_memory()`` before 0.24.1), ``limit`` the device's
  recommended working set (``max_recommended_working_set_size``; its memory
  size where that is unknown);
* CUDA: ``used`` is the device memory in use by every process (total minus
  free, from ``mx.device_info`` on mlx >= 0.30.4, from the driver's NVML
  before), ``limit`` the device's total memory;
* CPU: ``used`` and ``limit`` are the host's memory in use and its size, or
  the container's (cgroup) memory use and limit where one is set.

``fraction`` is ``used / limit``.  Where the limit cannot be known (CUDA on
mlx < 0.30.4 without NVML), ``limit`` and ``fraction`` are ``None`` and
``note`` says why, never a made-up number.  ``mlx_active`` is mlx's own
allocator count in every case.

The host figures are read from ``/proc/meminfo`` and the cgroup files (and
``sysconf`` elsewhere) rather than through psutil, which would be a run-time
dependency for three numbers.
"""

from __future__ import annotations

import os

from ._record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .backends.protocol import Backend
    from .backends.results import MemoryLimit

__all__ = ["MemoryPressure", "memory_pressure", "set_memory_limit"]


class MemoryPressure(Record):
    """Memory in use against the limit that matters on a backend, in bytes."""

    __slots__ = ("backend", "fraction", "limit", "mlx_active", "note", "used")
    backend: str
    used: int
    limit: int | None
    fraction: float | None
    mlx_active: int
    note: str

    def __init__(self, backend: str, used: int, limit: int | None, mlx_active: int, note: str) -> None:
        object.__setattr__(self, "backend", backend)
        object.__setattr__(self, "used", used)
        object.__setattr__(self, "limit", limit)
        object.__setattr__(self, "fraction", used / limit if limit else None)
        object.__setattr__(self, "mlx_active", mlx_active)
        object.__setattr__(self, "note", note)

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None  # "max" (no limit) is not a number


def _meminfo() -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    found[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    except (OSError, UnicodeDecodeError):
        pass
    return found


def host_memory_use() -> tuple[int, int, str]:
    """``(used, limit, where from)`` for the host, or the container's cgroup where it sets a limit.

    The host's size where ``/proc/meminfo`` is missing is
    :func:`~mlx_portable.installed_probe.host_memory`, the one reader of it.
    """
    info = _meminfo()
    if "MemTotal" in info and "MemAvailable" in info:
        total, used = info["MemTotal"], info["MemTotal"] - info["MemAvailable"]
        source = "host memory (/proc/meminfo: MemTotal - MemAvailable)"
    else:
        from .installed_probe import host_memory

        total = host_memory() or 0
        used = total - int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_AVPHYS_PAGES"))
        source = "host memory (sysconf: physical - free pages)"
    for limit_file, current_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        limit, current = _read_int(limit_file), _read_int(current_file)
        if limit is not None and current is not None and 0 < limit < total:
            return current, limit, f"container memory limit ({limit_file})"
    return used, total, source


def _mlx_active(mx: Any) -> int:
    ns = mx if hasattr(mx, "get_active_memory") else mx.metal
    return int(ns.get_active_memory())


def memory_pressure(backend: Backend | None = None) -> MemoryPressure:
    """Used and limit in bytes, and their ratio, for ``backend`` (default: the active one).

    Cheap enough to call before every eviction decision (no allocation, no
    synchronization).  See :class:`MemoryPressure` and ``docs/backends.md``.
    """
    if backend is None:
        from .backends import current_backend

        backend = current_backend()
    mx = getattr(backend, "mx", None)
    if mx is None:
        raise TypeError(
            f"memory_pressure() takes an mlx-portable Backend (such as mlx_portable.current_backend()), "
            f"not {type(backend).__name__}"
        )
    active = _mlx_active(mx)
    name = backend.name
    if name == "metal":
        info = backend.device_info()
        if info.recommended_working_set:
            return MemoryPressure(
                "metal", active, info.recommended_working_set, active, "recommended working set"
            )
        return MemoryPressure(
            "metal", active, info.memory_size, active, "device memory size (no recommended working set)"
        )
    if name == "cuda":
        info = backend.device_info()
        total, free = info.memory_size, info.free_memory
        if total is not None and free is not None:
            return MemoryPressure("cuda", total - free, total, active, "device memory (total - free)")
        return MemoryPressure(
            "cuda",
            active,
            None,
            active,
            "device memory unknown: mlx < 0.30.4 has no mx.device_info and NVML did not answer; "
            "used is mlx's active memory only",
        )
    if name == "cpu":
        used, limit, source = host_memory_use()
        return MemoryPressure("cpu", used, limit, active, source)
    raise ValueError(f"memory_pressure(): no memory model for the backend {name!r}; use metal, cuda or cpu")


def set_memory_limit(limit: int | float | None = None) -> MemoryLimit:
    """Limit mlx's memory on the active backend: bytes (``int``) or a fraction of the device (``float``).

    One call, right for each backend: Metal limits against the recommended
    working set and sets the wired limit; CUDA has no wired memory and limits
    against total device memory (without a limit, oversubscription surfaces as
    ``cudaMallocAsync ... out of memory``); the CPU has no device limit.
    ``None`` uses the backend's default share (95% of total memory on CUDA).
    Returns what was set; ``mlx_portable.report().details["memory_limit"]``
    shows it too.
    """
    from .activation import set_detail
    from .backends import current_backend
    from .validation import require_memory_limit

    require_memory_limit(limit)  # the same check on every backend, before any is asked
    result = current_backend().set_memory_limit(limit)
    set_detail("memory_limit", result.to_dict())
    return result
