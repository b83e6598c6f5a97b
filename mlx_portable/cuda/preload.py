"""Load planned NVIDIA libraries with ``RTLD_GLOBAL`` before ``mlx.core``.

Once a library is loaded, the dynamic loader satisfies every later request
for its soname with it, wherever the requester would have searched: that is
how libmlx gets libraries from a folder its RPATH does not name.  Changing
``LD_LIBRARY_PATH`` inside a running process would not help (the loader
reads it once, at start), and a loaded library cannot be unloaded safely, so
``deactivate()`` leaves them loaded.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .plan import LoadPlan

__all__ = ["PreloadResult", "preload", "preloaded"]

# Handles are kept so the libraries stay referenced for the process lifetime.
_handles: list[object] = []
_preloaded: dict[str, str] = {}


class PreloadResult:
    """``loaded``: paths loaded now, in order; ``failed``: ``(path, error)``."""

    __slots__ = ("failed", "loaded")

    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.failed: list[tuple[str, str]] = []

    def to_dict(self) -> dict[str, object]:
        return {"loaded": list(self.loaded), "failed": [{"path": p, "error": e} for p, e in self.failed]}


def preload(plan: LoadPlan) -> PreloadResult:
    """Load ``plan.preload`` in order; a library that fails is recorded and the rest still load."""
    import ctypes

    from ..regular_files import is_regular

    result = PreloadResult()
    for soname, path in plan.preload:
        if _preloaded.get(soname) == path:
            continue
        if not is_regular(path):
            # dlopen of a FIFO blocks forever; of a device, who knows.
            result.failed.append((path, "not a regular file (a FIFO, socket, device or folder)"))
            continue
        try:
            _handles.append(ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL))
        except OSError as exc:
            result.failed.append((path, str(exc)))
            continue
        _preloaded[soname] = path
        result.loaded.append(path)
    return result


def preloaded() -> dict[str, str]:
    """soname -> path of every library this process preloaded."""
    return dict(_preloaded)
