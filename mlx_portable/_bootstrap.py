"""What ``import mlx_portable`` does: apply the always-safe patches.

Kept apart from :mod:`mlx_portable.activation` so that the import path loads
only this, the registry, the settings and the few patch modules listed in
``ON_IMPORT_MODULES``.  ``before-mlx`` patches apply at once; ``import``
patches are deferred until ``mlx.core`` is imported, by the registry like any
other deferred patch (so ``deactivate()`` removes the wait), which keeps
importing the package working, and cheap, with mlx absent or not yet loaded.
"""

from __future__ import annotations

from .registry.builtin import import_time_patches
from .registry.registry import registry
from .settings import settings_for_import

__all__ = ["bootstrap"]


def bootstrap() -> None:
    """Apply the always-safe patches; called once by ``import mlx_portable``."""
    from ._fork import install

    install()  # at-fork handling of the locks, whatever the settings
    settings = settings_for_import()  # bad values: the defaults, and one warning naming them
    if not settings.enabled:
        return
    patches = import_time_patches()
    for patch in patches:
        registry.register(patch)
    registry.apply([p.name for p in patches], backend=None, disabled=settings.disabled, import_time=True)
