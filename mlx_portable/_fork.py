"""At-fork handling of mlx-portable's locks: a forked child never inherits a held lock.

Why: ``os.fork()`` copies only the calling thread.  If another thread of the
parent was inside ``activate()``, ``deactivate()``, ``register()`` or a
post-import hook at that moment, the child's copy of that lock stays held
by a thread that does not exist there, and the child's first
``activate()`` -- or its first import of a module with a pending hook --
waits forever (measured: 50 of 50 children forked during a
``deactivate()`` loop hung).  ``multiprocessing``'s ``fork`` start method
(the default on Linux before Python 3.14), ``os.fork`` in servers and
pre-fork workers all do this.

What it does, as the standard library does for its own locks (``logging``,
``threading``): before the fork the forking thread takes the locks, in the
order ``activate()`` takes them, so the child gets the registry and the
hooks in a consistent state; the parent releases them after the fork; the
child gets fresh locks.  A lock that another thread holds for more than
:data:`WAIT_S` seconds is not waited for further (a thread that never lets
go must not block every fork); the child still gets fresh locks.

A module of mlx-portable or mlx that another thread is still importing at
the fork (the first ``activate()`` imports ``mlx_portable.activation``, then
``mlx.core``) is
waited for the same way, up to :data:`WAIT_S`: the child inherits that
module half-initialized and its per-module import lock held by a thread
that does not exist there, so its first ``activate()`` would wait forever
(measured: stuck children, and ``partially initialized module
'mlx_portable.activation' has no attribute '_lock'`` from this handler).
So is an import that has begun and is not in ``sys.modules`` yet (its
finders still running, its import lock already held: a child's import of
that module would wait forever the same way), which the first
``activate()`` does several times in a row.  An import that is still not
done after :data:`WAIT_S` is not waited for further (as for a lock).

Registered once by ``import mlx_portable`` (``os.register_at_fork``, POSIX
only); it costs nothing until a fork happens.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["WAIT_S", "install", "set_enabled"]

#: How long the forking thread waits for each lock another thread holds.
WAIT_S = 2.0

_installed = False
_enabled = True
_taken: list[Any] = []


def set_enabled(enabled: bool) -> None:
    """Turn the handler off (tests show the deadlock it prevents) or back on."""
    global _enabled
    _enabled = enabled


#: (module, attribute) of each lock, in the order ``activate()`` takes them.
_LOCKS: tuple[tuple[str, str], ...] = (
    ("mlx_portable.activation", "_lock"),
    ("mlx_portable.backends.selection", "_lock"),
    ("mlx_portable.registry.registry", "registry._lock"),
    ("mlx_portable.import_hooks", "_lock"),
)


def _owner(module: str, path: str) -> tuple[Any, str] | None:
    """The object holding the lock and the lock's attribute name, if that module has defined it."""
    obj: Any = sys.modules.get(module)
    if obj is None:
        return None
    *parents, attr = path.split(".")
    for name in parents:
        obj = getattr(obj, name, None)
        if obj is None:
            return None  # a module still being imported: not defined yet
    if not hasattr(obj, attr):
        return None
    return obj, attr


#: Modules whose import by another thread a fork waits for: mlx-portable's, and mlx's, which
#: ``activate()`` imports (a child would wait forever on either's import lock).
_WAIT_FOR = ("mlx_portable", "mlx")


def _importing_elsewhere() -> list[str]:
    """Modules of :data:`_WAIT_FOR` that another thread is importing right now."""
    import _thread

    me = _thread.get_ident()
    try:
        from importlib import _bootstrap

        locks: Any = getattr(_bootstrap, "_module_locks", {})
    except ImportError:  # pragma: no cover - every CPython has it
        locks = {}
    found = []
    for name, module in list(sys.modules.items()):
        if not any(name == top or name.startswith(top + ".") for top in _WAIT_FOR):
            continue
        if not getattr(getattr(module, "__spec__", None), "_initializing", False):
            continue
        ref = locks.get(name)
        lock = ref() if ref is not None else None
        if lock is not None and getattr(lock, "owner", None) == me:
            continue  # this thread forks from inside that import: nothing to wait for
        found.append(name)
    # A module whose import has begun but is not in sys.modules yet (its finders are running):
    # its import lock is already held, and a child would wait on it forever just the same.
    for name, ref in list(locks.items()):
        if name in sys.modules or not any(name == top or name.startswith(top + ".") for top in _WAIT_FOR):
            continue
        lock = ref()
        owner = getattr(lock, "owner", None)
        held = bool(getattr(lock, "count", 0))  # an int; a list of owners from Python 3.13
        if lock is not None and owner not in (None, 0, me) and held:
            found.append(name)
    return found


def _wait_for_imports() -> None:
    """Let another thread finish importing mlx-portable's modules (up to :data:`WAIT_S`)."""
    if not _importing_elsewhere():
        return
    import time

    deadline = time.monotonic() + WAIT_S
    while _importing_elsewhere() and time.monotonic() < deadline:
        time.sleep(0.001)  # lets the importing thread run


def _locks() -> list[Any]:
    """The loaded locks, in the order ``activate()`` takes them."""
    found = []
    for module, path in _LOCKS:
        owner = _owner(module, path)
        if owner is not None:
            found.append(getattr(*owner))
    return found


def _before() -> None:
    if not _enabled:
        return
    _wait_for_imports()
    for lock in _locks():
        if lock.acquire(timeout=WAIT_S):
            _taken.append(lock)


def _after_in_parent() -> None:
    while _taken:
        _taken.pop().release()


def _after_in_child() -> None:
    _taken.clear()
    if not _enabled:
        return
    import _thread

    for module, path in _LOCKS:
        owner = _owner(module, path)
        if owner is not None:
            old = getattr(*owner)
            # The same kind of lock, fresh: RLock where it was re-entrant.
            setattr(*owner, _thread.RLock() if type(old).__name__ == "RLock" else _thread.allocate_lock())


def install() -> None:
    """Register the handlers (once; a no-op where ``os.register_at_fork`` does not exist)."""
    global _installed
    if _installed or not hasattr(os, "register_at_fork"):
        return
    os.register_at_fork(before=_before, after_in_parent=_after_in_parent, after_in_child=_after_in_child)
    _installed = True
