"""Import hooks: run a callback when a module has been imported, explain its import errors.

The one import-hook mechanism of the package: a single finder first on
``sys.meta_path`` that answers only for modules someone waits for (deferred
patches, the ``import`` patches' wait for ``mlx.core``) or whose import errors
someone explains (the ``cuda_libraries`` patch turns a missing NVIDIA library
into a message that names the package and the command).

mlx-lm and its submodules must not be imported by ``import mlx_portable``
(they pull in transformers, hundreds of milliseconds), yet some patches
target them.  A hook registered here fires right after the module's body has
run, or at once when the module is already in ``sys.modules`` -- the design of
wrapt's ``when_imported``.

Why the callbacks run where they do: Python 3 holds no global import lock
while a module body executes, only that module's own lock, which
``_find_and_load`` keeps until the module is fully initialised.  Callbacks are
called from :meth:`_HookedLoader.exec_module` *after* the module body
finished, with the module complete in ``sys.modules``, and outside our own
lock, so a callback may import other modules (and fire other hooks) freely.

This module is on the ``import mlx_portable`` path: it uses ``_thread``
rather than ``threading``, and duck-typed finder/loader classes rather than
``importlib.abc``, to stay cheap.
"""

from __future__ import annotations

import _thread
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

    Hook = Callable[[ModuleType], None]
    Explain = Callable[[ImportError], ImportError]

__all__ = [
    "HookHandle",
    "add_import_error_hook",
    "fire_completed",
    "pending",
    "register_post_import_hook",
    "remove_import_error_hook",
    "remove_post_import_hook",
]

_lock = _thread.RLock()
_hooks: dict[str, list[HookHandle]] = {}
_explainers: dict[str, list[Explain]] = {}
_busy = _thread._local()


class HookHandle:
    """A registered hook; pass it to :func:`remove_post_import_hook`."""

    __slots__ = ("callback", "fired", "module", "removed")

    def __init__(self, module: str, callback: Hook) -> None:
        self.module = module
        self.callback = callback
        self.fired = False
        self.removed = False

    def __repr__(self) -> str:
        state = "fired" if self.fired else "removed" if self.removed else "pending"
        return f"<HookHandle {self.module} {state}>"


def _initializing(mod: ModuleType) -> bool:
    """Whether ``mod``'s body is still running (in ``sys.modules`` already, not complete)."""
    spec = getattr(mod, "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def register_post_import_hook(module: str, callback: Hook) -> HookHandle:
    """Call ``callback(mod)`` once ``module`` is imported (at once if it already is).

    A module whose body is still running (it is in ``sys.modules`` but
    ``__spec__._initializing`` is set: the hook is registered from code that
    module is importing) is not complete: a patch applied now would be
    overwritten by the rest of its body, and reverting it would delete the
    module's own attribute.  Such a hook waits, and fires at the next import
    that passes the finder, or at the next :func:`fire_completed` (which
    ``activate()`` and ``report()`` call), whichever comes first.
    """
    handle = HookHandle(module, callback)
    with _lock:
        mod = sys.modules.get(module)
        if mod is None or _initializing(mod):
            _hooks.setdefault(module, []).append(handle)
            _install_finder()
            return handle
    _fire(handle, mod)
    return handle


def fire_completed() -> None:
    """Fire the hooks of modules that have finished importing since the hooks were registered.

    Only hooks registered while their module was still initializing can be
    in that state (see :func:`register_post_import_hook`); every other hook
    fires from the module's loader.
    """
    with _lock:
        if not _hooks:
            return
        ready = [
            (name, mod)
            for name in list(_hooks)
            if (mod := sys.modules.get(name)) is not None and not _initializing(mod)
        ]
    for name, mod in ready:
        _run_hooks(name, mod)


def remove_post_import_hook(handle: HookHandle) -> None:
    """Forget a hook that has not fired yet (no effect on one that has)."""
    with _lock:
        handle.removed = True
        hooks = _hooks.get(handle.module)
        if hooks and handle in hooks:
            hooks.remove(handle)
            if not hooks:
                del _hooks[handle.module]


def add_import_error_hook(module: str, explain: Explain) -> None:
    """Let ``explain(exc)`` replace an ``ImportError`` raised while importing ``module`` (idempotent).

    The replacement is raised ``from`` the original; returning ``exc``
    itself leaves the error as it was.
    """
    with _lock:
        found = _explainers.setdefault(module, [])
        if explain not in found:
            found.append(explain)
        _install_finder()


def remove_import_error_hook(module: str, explain: Explain) -> None:
    with _lock:
        found = _explainers.get(module, [])
        if explain in found:
            found.remove(explain)
        if not found:
            _explainers.pop(module, None)


def _explained(name: str, exc: ImportError) -> ImportError:
    with _lock:
        explainers = list(_explainers.get(name, ()))
    for explain in explainers:
        better = explain(exc)
        if better is not exc:
            return better
    return exc


def pending() -> list[str]:
    """Module names that still have hooks waiting."""
    with _lock:
        return sorted(_hooks)


def _fire(handle: HookHandle, mod: ModuleType) -> None:
    with _lock:
        if handle.fired or handle.removed:
            return
        handle.fired = True
    handle.callback(mod)


def _run_hooks(name: str, mod: ModuleType) -> None:
    # The module's body has run.  A hook may register another hook for it (a
    # patch decided now that waits for this module, such as a part waiting
    # after its parent): that one fires here too, not at some later import.
    while True:
        with _lock:
            handles = _hooks.pop(name, [])
        if not handles:
            return
        for handle in handles:
            _fire(handle, mod)


class _HookedLoader:
    """Wraps the real loader; fires the hooks once the module body has run."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        if create is None:
            return None
        try:
            return create(spec)  # type: ignore[no-any-return]
        except ImportError as exc:
            better = _explained(spec.name, exc)
            if better is exc:
                raise
            raise better from exc

    def exec_module(self, module: ModuleType) -> None:
        # Give the module its real loader back, as if we had never been here:
        # importlib.reload, pkgutil and importlib.resources look at it.
        spec = module.__spec__
        if spec is not None:
            spec.loader = self._loader
        module.__loader__ = self._loader
        try:
            self._loader.exec_module(module)
        except ImportError as exc:
            better = _explained(module.__name__, exc)
            if better is exc:
                raise
            raise better from exc
        _run_hooks(module.__name__, sys.modules.get(module.__name__, module))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _PostImportFinder:
    """First on ``sys.meta_path``; answers only for modules that have hooks or explainers."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if _hooks:
            fire_completed()  # hooks of a module that was still initializing when they were registered
        if fullname not in _hooks and fullname not in _explainers:
            return None
        busy: set[str] | None = getattr(_busy, "names", None)
        if busy is None:
            busy = _busy.names = set()
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = _find_with_the_others(fullname, path, target)
        finally:
            busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _HookedLoader(spec.loader)  # type: ignore[assignment]
        return spec

    def invalidate_caches(self) -> None:
        return None


def _find_with_the_others(
    fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    for finder in sys.meta_path:
        if finder is _finder:
            continue
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        spec = find(fullname, path, target)
        if spec is not None:
            return spec  # type: ignore[no-any-return]
    return None


_finder = _PostImportFinder()


def _install_finder() -> None:
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
