"""Turn a failing ``import mlx.core`` into an error that says what to do.

Installed by the ``cuda_libraries`` patch: the user's own ``import mlx.core``
(after ``import mlx_portable``) then fails with
:class:`mlx_portable._mlx.MlxUnavailableError` (an ``ImportError``) whose
message names the missing library, the pip package and the command, instead
of the bare ``libcublasLt.so.13: cannot open shared object file``.  The
original error is chained as ``__cause__``.
"""

from __future__ import annotations

import importlib.abc
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

__all__ = ["install", "uninstall"]

_TARGET = "mlx.core"


def _explained(exc: ImportError) -> ImportError:
    from .._mlx import MlxUnavailableError
    from ..install_hint import explain_import_failure

    if isinstance(exc, MlxUnavailableError):
        return exc
    return MlxUnavailableError(explain_import_failure(exc), name=_TARGET)


class _ExplainingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        if create is None:
            return None
        try:
            return create(spec)  # type: ignore[no-any-return]
        except ImportError as exc:
            raise _explained(exc) from exc

    def exec_module(self, module: ModuleType) -> None:
        spec = module.__spec__
        if spec is not None and spec.loader is self:
            spec.loader = self._loader  # as if never wrapped (importlib.reload reads it)
        module.__loader__ = self._loader
        try:
            self._loader.exec_module(module)
        except ImportError as exc:
            raise _explained(exc) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _Finder:
    """Finds ``mlx.core`` through the other finders and wraps its loader."""

    _busy = False

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname != _TARGET or self._busy:
            return None
        self._busy = True
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self._busy = False
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ExplainingLoader(spec.loader)
        return spec


_finder = _Finder()


def install() -> None:
    """Explain ``import mlx.core`` failures from now on (idempotent)."""
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    while _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
