"""Environment-wide activation: wait for the first ``import mlx``, then activate mlx-portable.

Installed next to ``mlx_portable_autoactivate.pth`` at the top of
site-packages.  The ``.pth`` line imports this module only when
``MLX_PORTABLE_AUTOACTIVATE`` is set to something other than off (a value
that is not a valid switch is reported on stderr here) and Python was not started with ``-E``
or ``-I`` (which ignore the environment); this module then puts one small
finder first on ``sys.meta_path`` and returns.  That is all an interpreter
that never imports mlx pays (one environment lookup and one finder object, a
fraction of a millisecond): mlx-portable itself is not imported.

The finder answers nothing.  The first time anything imports ``mlx`` (an
``import mlx.core``, ``import mlx_lm``, ...) it imports ``mlx_portable``
*before* mlx loads -- so the CUDA library preload runs before libmlx is
loaded -- and arranges ``mlx_portable.activate()`` to run as soon as
``mlx.core`` has been imported.  From then on it is inert.

Kept apart from the ``mlx_portable`` package on purpose (importing the
package is what must not happen at start-up), with nothing imported beyond
``sys``.  A failure is written to stderr and never stops the program.

PYTEST_DONT_REWRITE: this module ships in the same distribution as a
``pytest11`` plugin, so pytest marks every top-level module of the
distribution for assertion rewriting; this one is always imported before
pytest starts, and without this marker every run with the switch on warns
"Module already imported so cannot be rewritten: _mlx_portable_startup"
(an error under ``filterwarnings = error``).  It holds no assert to rewrite.
"""

import sys  # no ``from __future__ import annotations``: importing __future__ costs 0.2 ms

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType


class MlxImportWatcher:
    """First on ``sys.meta_path``; starts mlx-portable at the first ``import mlx``."""

    done = False

    def find_spec(
        self, fullname: str, path: "Sequence[str] | None" = None, target: "ModuleType | None" = None
    ) -> "ModuleSpec | None":
        if fullname != "mlx" or self.done:
            return None
        # Never unlink ourselves here: the import system is iterating over
        # sys.meta_path right now, and a removal would make it skip a finder.
        self.done = True
        try:
            from mlx_portable._autoactivate import activate_when_mlx_loads

            activate_when_mlx_loads(self)
        except Exception as exc:  # reported, never fatal
            sys.stderr.write(
                f"mlx-portable: MLX_PORTABLE_AUTOACTIVATE is on, but mlx-portable could not be loaded: "
                f"{type(exc).__name__}: {exc}\nmlx-portable: mlx runs without it; reinstall mlx-portable "
                "or unset MLX_PORTABLE_AUTOACTIVATE.\n"
            )
        return None  # the ordinary finders find mlx

    def invalidate_caches(self) -> None:
        return None


def _requested() -> bool:
    """Whether the switch is on; a value that is neither on nor off is reported, not ignored."""
    import os

    value = os.environ.get("MLX_PORTABLE_AUTOACTIVATE", "").strip()
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    shown = repr(value if len(value) <= 80 else value[:80] + "...")
    sys.stderr.write(
        f"mlx-portable: MLX_PORTABLE_AUTOACTIVATE={shown} is not a valid value; use one of "
        "'1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'. Starting without activating.\n"
    )
    return False


def install() -> None:
    if not _requested():
        return
    if "mlx" in sys.modules:  # mlx imported already (a sitecustomize?): activate now
        from mlx_portable._autoactivate import activate_now

        activate_now()
        return
    if not any(isinstance(f, MlxImportWatcher) for f in sys.meta_path):
        sys.meta_path.insert(0, MlxImportWatcher())


install()
