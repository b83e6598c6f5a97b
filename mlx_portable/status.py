"""``patch_status()``: the answer to "is anything patched here, or will it be?".

``is_active()`` answers a narrower question: whether ``activate()`` has run
(and ``deactivate()`` has not since).  It is ``False`` after a plain
``import mlx_portable`` although the always-safe patches may be applied
(six on mlx 0.30.0 once ``mlx_lm`` is imported), and ``False`` under
``MLX_PORTABLE_AUTOACTIVATE=1`` until the program's first ``import mlx``
although activation is certain to happen then.  :func:`patch_status` says
all three things: what is patched now, what waits for a module's import,
and whether ``activate()`` will run by itself.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

__all__ = ["PatchStatus", "patch_status"]


@dataclass(frozen=True)
class PatchStatus:
    """What mlx-portable has done, and will do, in this process; true when anything is or will be patched."""

    active: bool  #: ``activate()`` has run (``is_active()``)
    applied: tuple[str, ...]  #: patches in effect now
    waiting: tuple[str, ...]  #: patches decided when the module they patch is imported
    activates_on_import: (
        bool  #: ``MLX_PORTABLE_AUTOACTIVATE=1``: ``activate()`` runs at the first ``import mlx``
    )
    enabled: bool  #: ``False`` under ``MLX_PORTABLE=0``: nothing is or will be patched

    def __bool__(self) -> bool:
        return bool(self.applied or self.waiting or self.activates_on_import)

    def __str__(self) -> str:
        if not self.enabled:
            return "mlx-portable is off (MLX_PORTABLE=0): nothing is or will be patched"
        if self.active:
            how = "active (activate() has run)"
        elif self.activates_on_import:
            how = "activates at the first import of mlx (MLX_PORTABLE_AUTOACTIVATE=1)"
        else:
            how = "not activated (only the import-time patches)"
        return f"mlx-portable {how}; {len(self.applied)} applied, {len(self.waiting)} waiting for an import"


def patch_status() -> PatchStatus:
    """What is patched now, what waits for an import, and whether ``activate()`` will run by itself."""
    from .activation import is_active
    from .registry.registry import registry
    from .settings import settings_for_import

    records = registry.records()
    enabled = settings_for_import().enabled
    active = is_active()
    return PatchStatus(
        active=active,
        applied=tuple(r.patch.name for r in records if r.status == "applied"),
        waiting=tuple(r.patch.name for r in records if r.status == "deferred"),
        activates_on_import=enabled and not active and _armed(),
        enabled=enabled,
    )


def _armed() -> bool:
    """The start-up hook waits for ``import mlx``, or its hook waits for ``mlx.core``."""
    if "mlx.core" in sys.modules:
        return False  # it would have run already
    watcher = next((f for f in sys.meta_path if type(f).__name__ == "MlxImportWatcher"), None)
    if watcher is not None and not getattr(watcher, "done", True):
        return True
    return "mlx_portable._autoactivate" in sys.modules
