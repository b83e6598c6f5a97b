"""The list of mlx-portable's own patches, in application order.

Each module named here defines its patches as module-level :class:`Patch`
objects listed in its ``PATCHES`` tuple, and imports nothing heavy (mlx is
reached through the patch context, mlx-lm only inside deferred patches).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .registry import Patch

__all__ = ["BUILTIN_MODULES", "ON_IMPORT_MODULES", "builtin_patches", "import_time_patches"]

#: The modules among BUILTIN_MODULES that hold ``on_import`` patches.  Only
#: these are imported by ``import mlx_portable``; they must stay cheap to
#: import (no ``typing``, ``dataclasses``, ``logging`` at run time).  A test
#: checks that no ``on_import`` patch lives anywhere else.
ON_IMPORT_MODULES: tuple[str, ...] = (
    "mlx_portable.cuda.patches",
    "mlx_portable.patches.thread_local_stream",
    "mlx_portable.patches.device_info",
    "mlx_portable.patches.metal_fast_synch",
    "mlx_portable.patches.missing_ops",
    "mlx_portable.patches.mlx_lm.thread_bound_streams",
)

#: Modules holding built-in patches, in the order they apply.
BUILTIN_MODULES: tuple[str, ...] = (
    "mlx_portable.cuda.patches",
    "mlx_portable.patches.default_device",
    "mlx_portable.patches.thread_local_stream",
    "mlx_portable.patches.device_info",
    "mlx_portable.patches.wired_limit",
    "mlx_portable.patches.metal_fast_synch",
    "mlx_portable.patches.sdpa_sinks",
    "mlx_portable.patches.rope_batch_offsets",
    "mlx_portable.patches.missing_ops",
    "mlx_portable.patches.mlx_lm.thread_bound_streams",
    "mlx_portable.patches.mlx_lm.kernels_build",
    "mlx_portable.patches.mlx_lm.kernels_bitlinear",
    "mlx_portable.patches.mlx_lm.kernels_muse_spark",
    "mlx_portable.patches.mlx_lm.kernels_losses",
    "mlx_portable.patches.mlx_lm.kernels_gated_delta",
)


def _patches_of(modules: Iterable[str]) -> list[Patch]:
    found: list[Patch] = []
    for name in modules:
        __import__(name)  # importlib.import_module would import importlib: not free
        found.extend(sys.modules[name].PATCHES)
    return found


def builtin_patches() -> list[Patch]:
    """Every built-in :class:`Patch`, in order."""
    return _patches_of(BUILTIN_MODULES)


def import_time_patches() -> list[Patch]:
    """The built-in patches ``import mlx_portable`` may apply, in order."""
    order = [m for m in BUILTIN_MODULES if m in ON_IMPORT_MODULES]
    return [p for p in _patches_of(order) if p.on_import]
