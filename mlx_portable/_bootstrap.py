"""What ``import mlx_portable`` does: apply the always-safe patches.

Kept apart from :mod:`mlx_portable.activation` so that the import path loads
only this, the registry, the settings and the few patch modules listed in
``ON_IMPORT_MODULES``.  Patches that need mlx wait for ``mlx.core`` to be
imported (post-import hook), so importing the package works, and stays
cheap, with mlx absent or not yet loaded.
"""

from __future__ import annotations

import sys

from .patches.builtin import import_time_patches
from .patches.registry import registry
from .settings import Settings, read_settings

__all__ = ["bootstrap", "cancel"]

_cancelled = False


def cancel() -> None:
    """Stop import-time patches still waiting for ``mlx.core`` (``deactivate()``)."""
    global _cancelled
    _cancelled = True


def bootstrap() -> None:
    """Apply the always-safe patches; called once by ``import mlx_portable``."""
    from ._fork import install

    install()  # at-fork handling of the locks, whatever the settings
    try:
        settings = read_settings()
    except ValueError:
        return  # activate() raises it with the full message; import must not
    if not settings.enabled:
        return
    patches = import_time_patches()
    for patch in patches:
        registry.register(patch)
    registry.apply(
        [p.name for p in patches if not p.needs_mlx],
        backend=None,
        disabled=settings.disabled,
        import_time=True,
    )
    with_mlx = [p.name for p in patches if p.needs_mlx]
    if not with_mlx:
        return
    if "mlx.core" in sys.modules:
        apply_with_mlx(with_mlx, settings)
    else:
        from .hooks import register_post_import_hook

        register_post_import_hook("mlx.core", lambda _mod: apply_with_mlx(with_mlx, settings))


def apply_with_mlx(names: list[str], settings: Settings) -> None:
    if _cancelled:
        return
    registry.apply(names, backend=None, disabled=settings.disabled, import_time=True)
