"""A :class:`PortabilityWarning` shown where the user's code is, never at mlx-portable's insides.

A bad setting is found while ``import mlx_portable`` runs, several frames
deep in mlx-portable and in the import system; ``warnings.warn`` with a
fixed ``stacklevel`` then showed ``.../mlx_portable/__init__.py:126:
PortabilityWarning ... _bootstrap()``, a path and a line that mean nothing
to the user.  Here the warning is attributed to the first frame outside
mlx-portable, its start-up hook, ``importlib`` and ``runpy``: the user's own
``import`` line (or the library whose import loaded mlx).

When no such frame exists, the program is mlx-portable's own command line
(``mlx-portable doctor``, ``python -m mlx_portable``), which reports the
setting itself: the warning is one plain line on stderr there.
"""

from __future__ import annotations

import os
import sys

__all__ = ["warn_user"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_SKIPPED_MODULES = ("importlib", "runpy", "_mlx_portable_startup", "mlx_portable")
_CLI_SCRIPTS = ("mlx-portable", "mlx-portable.exe", "mlx-portable-script.py")


def _skipped(frame: object) -> bool:
    code = getattr(frame, "f_code", None)
    filename = getattr(code, "co_filename", "")
    if filename.startswith(_PACKAGE_DIR) or filename.startswith("<frozen "):
        return True
    module = str(getattr(frame, "f_globals", {}).get("__name__", ""))
    return module.split(".")[0] in _SKIPPED_MODULES


def warn_user(message: str) -> None:
    """Warn with :class:`PortabilityWarning`, attributed to the user's code (see the module docstring)."""
    import warnings

    from .errors import PortabilityWarning

    frame = sys._getframe(1)
    while frame is not None and _skipped(frame):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None or os.path.basename(frame.f_code.co_filename) in _CLI_SCRIPTS:
        sys.stderr.write(message.rstrip() + "\n")
        return
    globals_ = frame.f_globals
    warnings.warn_explicit(
        message,
        PortabilityWarning,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=str(globals_.get("__name__", "<unknown>")),
        registry=globals_.setdefault("__warningregistry__", {}),
    )
