"""Loading mlx for the command line, and the optional modules doctor shows.

A missing or broken mlx is the commonest failure users meet, so every
subcommand checks it first and answers with the exact install command for
this machine (exit status 2) instead of a traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["EXIT_CANNOT_RUN", "mlx_load_problem", "optional_function", "print_mlx_problem"]

#: Exit status when mlx (or what a subcommand needs) cannot be used at all.
EXIT_CANNOT_RUN = 2


def mlx_load_problem() -> str | None:
    """``None`` when ``mlx.core`` imports, else a message naming the fix."""
    from .. import _mlx
    from ..install_hint import explain_import_failure

    try:
        _mlx.core()
    except _mlx.MlxUnavailableError as exc:
        return str(exc)
    except Exception as exc:  # a broken extension can raise more than ImportError
        return explain_import_failure(exc)
    return None


def print_mlx_problem(problem: str, stream: TextIO | None = None) -> None:
    stream = sys.stderr if stream is None else stream
    stream.write(f"mlx-portable: {problem}\n")
    stream.write(f"  (this Python: {sys.executable})\n")


def optional_function(module: str, name: str) -> tuple[Callable[..., Any] | None, str | None]:
    """``mlx_portable.<module>.<name>`` if that module exists: ``(function, None)``.

    ``(None, None)`` when the module or function is absent (an older
    mlx-portable), ``(None, error)`` when the module exists but fails to import.
    """
    full = f"mlx_portable.{module}"
    try:
        mod = importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name == full:
            return None, None
        return None, f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"
    fn = getattr(mod, name, None)
    return (fn if callable(fn) else None), None
