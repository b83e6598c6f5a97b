"""``activate(children=True)``: carry the activation into child processes.

Why: ``activate()`` patches this process only.  A program that starts
workers -- exo's runner is a ``multiprocessing`` spawn child that imports
mlx-lm before anything else -- gets unpatched children: on mlx < 0.31.2 the
runner dies with ``AttributeError: module 'mlx.core' has no attribute
'new_thread_local_stream'`` although the parent was activated.

How: the one switch children already understand, ``MLX_PORTABLE_AUTOACTIVATE=1``,
is put into ``os.environ``, with the settings this activation chose
(``MLX_PORTABLE_BACKEND`` when the backend was forced, ``MLX_PORTABLE_DISABLE``,
``MLX_PORTABLE_STRICT``).  Every child started afterwards inherits them
(``multiprocessing`` spawn and forkserver, ``subprocess``, ``mlx.launch``), and
the start-up hook the wheel installs (``mlx_portable_autoactivate.pth``)
activates it at its first ``import mlx``.  That hook is what does the work in
the child: where it is not installed (mlx-portable run from a source tree, or
an install that dropped the ``.pth``), the export cannot work, and the report
says so (``details["children"]``) and a :class:`~mlx_portable.PortabilityWarning`
is issued.  Children started with ``python -E``/``-I`` ignore the environment,
hence the switch, too.
"""

from __future__ import annotations

import os

from .settings import ENV_AUTOACTIVATE, ENV_BACKEND, ENV_DISABLE, ENV_STRICT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import MutableMapping
    from typing import Any

    from .settings import Settings

__all__ = ["HOOK_FILE", "export_to_children", "startup_hook"]

#: The ``.pth`` file the wheel installs at the top of site-packages.
HOOK_FILE = "mlx_portable_autoactivate.pth"
_HOOK_MODULE = "_mlx_portable_startup"


def _site_dirs() -> list[str]:
    import site

    dirs = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    # Only these: a folder put on sys.path by a .pth line is not a site dir, its .pth files never run.
    return dirs


def startup_hook() -> str | None:
    """Where the start-up hook a child interpreter of this Python would run lies, or ``None``.

    Both files are needed: the ``.pth`` line (processed by ``site`` at start)
    and the tiny module it imports, next to it.
    """
    for folder in _site_dirs():
        pth = os.path.join(folder, HOOK_FILE)
        if os.path.isfile(pth) and os.path.isfile(os.path.join(folder, _HOOK_MODULE + ".py")):
            return pth
    return None


def export_to_children(settings: Settings, environ: MutableMapping[str, str] | None = None) -> dict[str, Any]:
    """Put the switch and ``settings`` into ``environ`` (``os.environ``); what was done, for the report."""
    environ = os.environ if environ is None else environ
    exported = {ENV_AUTOACTIVATE: "1"}
    if settings.backend_forced:
        exported[ENV_BACKEND] = ",".join(settings.backend_order)
    if settings.disabled:
        exported[ENV_DISABLE] = ",".join(sorted(settings.disabled))
    if settings.strict:
        exported[ENV_STRICT] = "1"
    environ.update(exported)
    hook = startup_hook()
    detail: dict[str, Any] = {"exported": exported, "startup_hook": hook}
    if hook is None:
        detail["warning"] = (
            f"the start-up hook ({HOOK_FILE}) is not installed in this Python's site-packages, so child "
            "processes are NOT activated; install mlx-portable as a wheel (pip install mlx-portable), or "
            "call mlx_portable.activate() (or import mlx_portable) first thing in the child's code"
        )
        import warnings

        from .errors import PortabilityWarning

        warnings.warn(
            f"mlx-portable: activate(children=True): {detail['warning']}", PortabilityWarning, stacklevel=3
        )
    return detail
