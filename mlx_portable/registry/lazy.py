"""Patches decided when first read: what keeps ``import mlx_portable`` and the first ``activate()`` cheap.

Importing a shim module and running its check is most of what ``import
mlx_portable`` costs, and on a recent mlx most shims are obsolete.  The
generated :mod:`.import_index` says (from the patches' own ``mlx_versions``
and ``when=``) which shim modules hold only patches outside their range on
this mlx, or waiting for a module not imported yet (mlx-lm's); the import
(for the import-time modules, once ``mlx.core`` is loaded) and the first
``activate()`` (for the others) do not import those modules.  Each of their
patches gets a :class:`LazyRecord` in its place in the registry instead: the
first read of any of its fields, or the import of the module it waits for,
imports the shim module and decides the patch exactly as the import would
have (check, reason, the deferral of an ``import:<module>`` patch), then
replays the ``activate()`` passes it was left out of.  So the report,
doctor, ``is_patched`` and ``deactivate()`` see the same thing as before,
and nothing is applied late: the compatibility test holds that a patch
outside its ``mlx_versions`` is never applied, and a patch that waits is
applied when its module is imported, as a deferred patch is.
"""

from __future__ import annotations

import sys

from .context import PatchRecord

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

    from ..backends.protocol import Backend
    from .registry import Registry

__all__ = ["LazyRecord", "is_lazy", "resolver"]


class LazyRecord(PatchRecord):
    """A :class:`PatchRecord` whose patch module is imported when a field is first read.

    Its fields stay unset until then (``__getattr__`` runs only for those), so
    a resolved record costs what any record costs.
    """

    __slots__ = ("_disabled", "_registry", "lazy_module", "lazy_name", "missed", "resolving")

    def __init__(self, registry: Registry, module: str, name: str, disabled: frozenset[str]) -> None:
        self._registry = registry
        self._disabled = disabled
        self.lazy_module = module
        self.lazy_name = name
        self.resolving = False
        #: The ``apply()`` passes (backend, disabled) it sat out, replayed in order.
        self.missed: list[tuple[Backend | None, frozenset[str]]] = []

    def __getattr__(self, field: str) -> Any:
        if field not in PatchRecord.__slots__ or self.resolving:
            raise AttributeError(field)
        self.resolve()
        return getattr(self, field)

    @property
    def resolved(self) -> bool:
        return self.resolving or _has_patch(self)

    def resolve(self) -> None:
        """Import the module and decide the patch as the import would have, then the missed passes."""
        registry = self._registry
        with registry._lock:
            if self.resolved:
                return
            self.resolving = True
            try:
                __import__(self.lazy_module)
                module = sys.modules[self.lazy_module]
                patch = next((p for p in module.PATCHES if p.name == self.lazy_name), None)
                if patch is None:
                    raise RuntimeError(
                        f"mlx_portable/registry/import_index.py is out of date: {self.lazy_module} has no "
                        f"patch {self.lazy_name!r}; run python -m tools.import_index --write"
                    )
                PatchRecord.__init__(self, patch)
            finally:
                self.resolving = False
            registry.apply([patch.name], backend=None, disabled=self._disabled, import_time=True)
            for backend, disabled in self.missed:
                registry.apply([patch.name], backend=backend, disabled=disabled)
            self.missed.clear()

    def __repr__(self) -> str:
        if not _has_patch(self):
            return f"<PatchRecord {self.lazy_name} (not yet decided)>"
        return super().__repr__()


def _has_patch(record: PatchRecord) -> bool:
    try:
        object.__getattribute__(record, "patch")
    except AttributeError:
        return False
    return True


def is_lazy(record: PatchRecord) -> bool:
    """Whether ``record`` is a :class:`LazyRecord` not decided yet (reading a field would decide it)."""
    return type(record) is LazyRecord and not record.resolved


def resolver(record: LazyRecord) -> Callable[[ModuleType], None]:
    """A post-import hook that decides ``record`` (for a patch that waits for a module)."""

    def resolve(_module: ModuleType) -> None:
        record.resolve()

    return resolve
