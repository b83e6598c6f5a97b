"""Activation for ``MLX_PORTABLE_AUTOACTIVATE=1``: what runs at the first ``import mlx``.

The ``mlx_portable_autoactivate.pth`` file the wheel installs imports the
tiny top-level ``_mlx_portable_startup`` module at interpreter start (only
when the variable is on and ``-E``/``-I`` were not given), which waits for
the first ``import mlx`` and then calls :func:`activate_when_mlx_loads`:

1. ``import mlx_portable`` -- before mlx loads, so the ``before-mlx`` patches
   (the CUDA library preload) run in time, and the ``import`` patches wait
   for ``mlx.core``;
2. a post-import hook on ``mlx.core`` calls ``activate()`` as soon as
   ``mlx.core`` is imported: the backend is chosen and every patch applied
   before the program (or mlx-lm) uses mlx.

Children inherit the variable, so ``multiprocessing`` spawn children,
``subprocess`` Python children and ``mlx.launch`` ranks come up activated
the same way.  An activation failure must not stop the program: it is written
to stderr with what to do, and the program runs unpatched.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["activate_now", "activate_when_mlx_loads"]


def activate_now() -> None:
    """``activate()``, reported on stderr instead of raised."""
    try:
        import mlx_portable

        mlx_portable.activate()
    except Exception as exc:  # reported, never fatal: the program still starts
        sys.stderr.write(
            f"mlx-portable: MLX_PORTABLE_AUTOACTIVATE=1, but activate() failed: {type(exc).__name__}: {exc}\n"
            "mlx-portable: continuing without it; fix the cause, or unset MLX_PORTABLE_AUTOACTIVATE.\n"
        )


def activate_when_mlx_loads(watcher: object | None = None) -> None:
    """Import mlx-portable now (mlx not loaded yet) and activate once ``mlx.core`` is imported."""
    import mlx_portable  # noqa: F401  (the import-time patches, before libmlx loads)

    from .import_hooks import register_post_import_hook

    def on_mlx_core(_module: ModuleType) -> None:
        if watcher is not None and watcher in sys.meta_path:
            sys.meta_path.remove(watcher)  # inert since the first import of mlx
        activate_now()

    register_post_import_hook("mlx.core", on_mlx_core)
