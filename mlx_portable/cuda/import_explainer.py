"""Turn a failing ``import mlx.core`` into an error that says what to do.

Installed by the ``cuda_libraries`` patch: the user's own ``import mlx.core``
(after ``import mlx_portable``) then fails with
:class:`mlx_portable._mlx.MlxUnavailableError` (an ``ImportError``) whose
message names the missing library, the pip package and the command, instead
of the bare ``libcublasLt.so.13: cannot open shared object file``.  The
original error is chained as ``__cause__``.  The hook itself is the package's
one import-hook mechanism (:mod:`mlx_portable.import_hooks`).
"""

from __future__ import annotations

from ..import_hooks import add_import_error_hook, remove_import_error_hook

__all__ = ["install", "uninstall"]

_TARGET = "mlx.core"


def _explained(exc: ImportError) -> ImportError:
    from .._mlx import MlxUnavailableError
    from ..install_hint import explain_import_failure

    if isinstance(exc, MlxUnavailableError):
        return exc
    return MlxUnavailableError(explain_import_failure(exc), name=_TARGET)


def install() -> None:
    """Explain ``import mlx.core`` failures from now on (idempotent)."""
    add_import_error_hook(_TARGET, _explained)


def uninstall() -> None:
    remove_import_error_hook(_TARGET, _explained)
