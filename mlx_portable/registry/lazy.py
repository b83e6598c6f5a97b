"""Import-time patches decided when first looked at: what keeps ``import mlx_portable`` cheap.

Importing a shim module and running its check is most of what ``import
mlx_portable`` costs, and on a recent mlx most import-time shims are
obsolete.  With ``mlx.core`` already loaded, the generated
:mod:`.import_index` says (from the patches' own ``mlx_versions``) which
shim modules hold only patches outside their range on this mlx; those
modules are not imported.  Each of their patches gets a :class:`LazyRecord`
in its place in the registry instead: the first read of any of its fields
imports the module and decides the patch exactly as the import would have
(check, reason, the deferral of an ``import:<module>`` patch), then replays
the ``activate()`` passes it was left out of.  So the report, doctor,
``is_patched`` and ``deactivate()`` see the same thing as before, and
nothing is applied late: the compatibility test holds that a patch outside
its ``mlx_versions`` is never applied.
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

__all__ = ["LazyRecord", "is_lazy", "register_import_time"]


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


def _resolver(record: LazyRecord) -> Callable[[ModuleType], None]:
    def resolve(_module: ModuleType) -> None:
        record.resolve()

    return resolve


def register_import_time(registry: Registry, disabled: frozenset[str], mx: object | None) -> frozenset[str]:
    """What ``import mlx_portable`` does: register and apply the import-time patches.

    With ``mx`` (``mlx.core``, already loaded) the modules whose every
    import-time patch is obsolete on it are left out, each patch a
    :class:`LazyRecord`; returns those modules (``activate()`` leaves them out too).
    """
    from .. import _mlx
    from .builtin import ON_IMPORT_MODULES, import_time_patches
    from .import_index import modules_to_leave_out

    lazy = modules_to_leave_out(None if mx is None else _mlx.mlx_version(mx))
    import_time_patches(leave_out=lazy)  # imports the other modules
    names: list[str] = []
    for module in ON_IMPORT_MODULES:
        if module in lazy:
            for name, waits in lazy[module]:
                record = registry._records[name] = LazyRecord(registry, module, name, disabled)
                if waits:  # decided when that module is imported, as its own hook would have been
                    from ..import_hooks import register_post_import_hook

                    register_post_import_hook(waits, _resolver(record))
            continue
        for patch in sys.modules[module].PATCHES:
            if patch.on_import:
                registry.register(patch)
                names.append(patch.name)
    registry.apply(names, backend=None, disabled=disabled, import_time=True)
    return frozenset(lazy)
