"""``mlx_portable.set_memory_limit``: one call, right for each backend.

Metal limits against the recommended working set and sets the wired limit;
CUDA has no wired memory and limits against total device memory (without a
limit, oversubscription surfaces as ``cudaMallocAsync ... out of memory``);
the CPU has no device limit.  The limit in force goes into the report
(``details["memory_limit"]``).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .backends.protocol import MemoryLimit

__all__ = ["set_memory_limit"]


def set_memory_limit(limit: int | float | None = None) -> MemoryLimit:
    """Limit mlx's memory on the active backend: bytes (``int``) or a fraction of the device (``float``).

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
