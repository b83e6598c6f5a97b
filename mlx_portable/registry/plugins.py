"""Patches from other packages: the ``mlx_portable.patches`` entry-point group.

A package that ships patches declares, in its ``pyproject.toml``::

    [project.entry-points."mlx_portable.patches"]
    my_patches = "my_package.mlx_patches:PATCHES"

The first ``activate()`` loads each such entry point (a :class:`Patch`, a
list of them, or a callable returning either) and registers what it finds.
A broken plugin, even one that raises ``SystemExit``, must not break
activation: it is left out with a warning naming the package to fix.
"""

from __future__ import annotations

from .patch import Patch
from .registry import registry

__all__ = ["ENTRY_POINT_GROUP", "load_plugins"]

ENTRY_POINT_GROUP = "mlx_portable.patches"

_loaded = False


def load_plugins() -> None:
    """Register the patches of every installed ``mlx_portable.patches`` entry point, once per process."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from ..distributions import entry_points  # not importlib.metadata: 36 ms to import

    for ep in entry_points(ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, Patch):
                obj = obj()
            found = [obj] if isinstance(obj, Patch) else list(obj)
            for patch in found:
                if not isinstance(patch, Patch):
                    raise TypeError(f"{patch!r} is not an mlx_portable.Patch")
                registry.register(patch)
        except (Exception, SystemExit, GeneratorExit) as exc:  # a broken plugin must not break activation
            import warnings

            from ..errors import PortabilityWarning

            warnings.warn(
                f"mlx-portable: the patch plugin {ep.name!r} ({ep.value}) could not be loaded: "
                f"{type(exc).__name__}: {exc}. Fix or uninstall the package that provides it.",
                PortabilityWarning,
                stacklevel=3,
            )
