"""Which BLAS mlx's CPU backend calls in this process (for ``doctor``), and the fix for the reference one."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["INSTALL_FIX", "blas_status"]

INSTALL_FIX = "pip install scipy-openblas32 (or pip install 'mlx-portable[cpu]'), then run again"


def _called_now(mx: Any) -> str | None:
    """The file mlx's ``cblas_sgemm`` slot points into now, or ``None`` if it cannot be told."""
    from ..cuda.elf import NotAnElfFile, read_relocations
    from .binding import mlx_objects
    from .process import address_owner, read_slot

    try:
        for obj in mlx_objects(mx):
            for relocation in read_relocations(obj.path, "cblas_sgemm".__eq__).imports():
                return address_owner(read_slot(obj.base + relocation.offset))
    except (OSError, NotAnElfFile, AttributeError):
        return None
    return None


def blas_status(mx: Any, detail: dict[str, Any] | None, disabled: bool) -> dict[str, Any]:
    """What mlx's CPU backend calls: ``state``, the library, ``reason`` and ``fix``.

    ``state`` is ``bound``, ``reference``, ``other`` (an optimized library
    bound by someone else), ``accelerate``, ``cuda`` or ``unknown``.

    ``detail`` is the report's ``details["cpu_blas"]`` (absent when the patch
    never ran its check: disabled, or mlx-portable off); ``disabled``: the
    patch was left out by ``MLX_PORTABLE_DISABLE``/``MLX_PORTABLE=0``.
    """
    detail = dict(detail or {})
    state = detail.get("state")
    if state == "bound":
        from .binding import current

        binding = current()
        return {**detail, "path": binding.library.path if binding is not None else None, "fix": None}
    if state in ("accelerate", "cuda", "unsupported"):
        return {"state": state, "reason": detail.get("reason"), "fix": None}
    if sys.platform == "darwin":
        return {"state": "accelerate", "reason": "mlx on macOS calls Apple's Accelerate", "fix": None}
    if not sys.platform.startswith("linux"):
        return {"state": "unknown", "reason": f"no BLAS inspection on {sys.platform}", "fix": None}
    from .binding import is_reference

    owner = _called_now(mx)
    if owner is None:
        return {
            "state": "unknown",
            "reason": detail.get("reason") or "mlx's BLAS slot was not found",
            "fix": None,
        }
    reason = detail.get("reason") or ""
    if not is_reference(owner):
        return {"state": "other", "library": owner, "reason": reason, "fix": None}
    if disabled:
        fix = "take cpu_blas out of MLX_PORTABLE_DISABLE (and leave MLX_PORTABLE unset)"
    elif "pip install" in reason:
        fix = INSTALL_FIX
    elif reason:
        fix = reason
    else:
        fix = "activate mlx-portable (import mlx_portable) to bind an optimized BLAS"
    return {
        "state": "reference",
        "library": os.path.basename(owner),
        "path": owner,
        "reason": reason,
        "fix": fix,
    }
