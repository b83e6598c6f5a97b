"""The list of mlx-portable's own patches, in application order.

Each module named here defines its patches as module-level :class:`Patch`
objects listed in its ``PATCHES`` tuple, and imports nothing heavy (mlx is
reached through the patch context, mlx-lm only inside deferred patches).
"""

from __future__ import annotations

import importlib

from .registry import Patch

__all__ = ["BUILTIN_MODULES", "builtin_patches"]

#: Modules holding built-in patches, in the order they apply.
BUILTIN_MODULES: tuple[str, ...] = (
    "mlx_portable.patches.default_device",
)


def builtin_patches() -> list[Patch]:
    """Every built-in :class:`Patch`, in order."""
    found: list[Patch] = []
    for name in BUILTIN_MODULES:
        module = importlib.import_module(name)
        found.extend(module.PATCHES)
    return found
