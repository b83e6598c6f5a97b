"""The patch registry: declarative patches, applied at most once, revertible.

Modelled on gevent.monkey's state keeping: every attribute a patch replaces is
recorded with its original (``setdefault``: the first original wins), so
``deactivate()`` restores the very same objects, and ``get_original()`` can
hand the unpatched function to code that needs it.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .. import _mlx
from ..errors import PatchError, PortabilityWarning

__all__ = [
    "ALL_BACKENDS",
    "Patch",
    "PatchContext",
    "PatchRecord",
    "Registry",
    "Verdict",
    "get_original",
    "is_patched",
    "obsolete",
    "registry",
    "skip",
]

ALL_BACKENDS: frozenset[str] = frozenset({"metal", "cuda", "cpu"})

#: Status names, in the order the report lists them.
APPLIED, SKIPPED, FAILED, DEFERRED, OBSOLETE, PENDING = (
    "applied",
    "skipped",
    "failed",
    "deferred",
    "obsolete",
    "pending",
)

_MISSING: Any = object()


@dataclass(frozen=True)
class Verdict:
    """What a feature check decided when a patch is *not* to be applied."""

    status: str  # OBSOLETE or SKIPPED
    reason: str


def obsolete(reason: str) -> Verdict:
    """The feature this patch provides exists natively: not needed on this mlx."""
    return Verdict(OBSOLETE, reason)


def skip(reason: str) -> Verdict:
    """The patch does not fit this machine or configuration."""
    return Verdict(SKIPPED, reason)


Check = Callable[["PatchContext"], "Verdict | None"]
Action = Callable[["PatchContext"], None]


@dataclass(frozen=True)
class Patch:
    """One shim, declared as data.

    ``check`` is the feature check (``hasattr`` first): it returns ``None``
    when the patch is needed, or a :class:`Verdict` (``obsolete(...)`` /
    ``skip(...)``).  Without one, ``mlx_versions`` decides.  ``mlx_versions``
    is a PEP 440 specifier set of the mlx versions that need the patch; it is
    also what the compatibility table in the docs is generated from, so keep
    it exact even when ``check`` decides.
    """

    name: str
    summary: str
    why: str
    apply: Action
    mlx_versions: str = ""
    backends: frozenset[str] = ALL_BACKENDS
    check: Check | None = None
    revert: Action | None = None
    when_imported: str | None = None
    on_import: bool = False
    needs_mlx: bool = True
    upstream: str = ""
    platforms: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not self.name.replace("_", "").isalnum() or self.name != self.name.lower():
            raise ValueError(f"patch name {self.name!r} must be lower_snake_case")
        unknown = set(self.backends) - ALL_BACKENDS
        if unknown:
            raise ValueError(f"patch {self.name!r}: unknown backend(s) {sorted(unknown)}")


@dataclass
class PatchRecord:
    """Where one patch stands in this process."""

    patch: Patch
    status: str = PENDING
    reason: str = ""
    error: str = ""
    changes: list[tuple[str, Any, str, Any]] = field(default_factory=list)
    reverts: list[Action] = field(default_factory=list)
    hook: Any = None
    applied_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.patch.name,
            "status": self.status,
            "summary": self.patch.summary,
            "reason": self.reason,
        }
        if self.error:
            out["error"] = self.error
        if self.patch.when_imported:
            out["module"] = self.patch.when_imported
        return out


class PatchContext:
    """What a patch's ``check`` and ``apply`` see, and how it records changes."""

    def __init__(self, record: PatchRecord, backend: str | None, module: ModuleType | None = None) -> None:
        self._record = record
        self.backend = backend
        self.module = module

    @property
    def mx(self) -> Any:
        """``mlx.core`` (or the simulated one in tests)."""
        return _mlx.core()

    @property
    def mlx_version(self) -> str:
        return _mlx.mlx_version()

    @property
    def name(self) -> str:
        return self._record.patch.name

    def set_attr(self, obj: Any, attr: str, value: Any) -> None:
        """Replace (or add) ``obj.attr``; reverted on ``deactivate()``."""
        original = getattr(obj, attr, _MISSING)
        _originals.setdefault((id(obj), attr), (obj, original))
        self._record.changes.append(("attr", obj, attr, original))
        setattr(obj, attr, value)

    def set_env(self, name: str, value: str) -> None:
        """Set ``os.environ[name]``; reverted on ``deactivate()``."""
        self._record.changes.append(("env", os.environ, name, os.environ.get(name, _MISSING)))
        os.environ[name] = value

    def on_revert(self, action: Action) -> None:
        """Run ``action(ctx)`` when this patch is reverted (before attributes are restored)."""
        self._record.reverts.append(action)


# (id(obj), attr) -> (obj, original).  The object itself is kept so its id
# cannot be reused while the entry exists.
_originals: dict[tuple[int, str], tuple[Any, Any]] = {}


def get_original(obj: Any, attr: str) -> Any:
    """The object ``obj.attr`` held before any patch replaced it.

    Raises ``AttributeError`` when a patch *added* the attribute (it had no
    original); returns the current value when no patch touched it.
    """
    entry = _originals.get((id(obj), attr))
    if entry is None or entry[0] is not obj:
        return getattr(obj, attr)
    original = entry[1]
    if original is _MISSING:
        raise AttributeError(f"{attr!r} was added by mlx-portable; {obj!r} has no original")
    return original


def _restore(kind: str, obj: Any, attr: str, original: Any) -> None:
    if kind == "env":
        if original is _MISSING:
            os.environ.pop(attr, None)
        else:
            os.environ[attr] = original
        return
    if original is _MISSING:
        try:
            delattr(obj, attr)
        except AttributeError:
            pass
    else:
        setattr(obj, attr, original)


class Registry:
    """All known patches and their state; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._records: dict[str, PatchRecord] = {}
        self._order: list[str] = []  # application order, for reverse reverts
        self._warned: set[str] = set()

    # -- registration ---------------------------------------------------------
    def register(self, patch: Patch, *, replace: bool = False) -> Patch:
        """Add ``patch``; a second patch with the same name is an error unless ``replace``."""
        with self._lock:
            existing = self._records.get(patch.name)
            if existing is not None and not replace:
                if existing.patch is patch:
                    return patch
                raise ValueError(f"a patch named {patch.name!r} is already registered")
            if existing is not None and existing.status == APPLIED:
                raise ValueError(f"patch {patch.name!r} is applied; deactivate() before replacing it")
            self._records[patch.name] = PatchRecord(patch)
            return patch

    def unregister(self, name: str) -> None:
        with self._lock:
            record = self._records.get(name)
            if record is not None and record.status == APPLIED:
                self._revert(record)
            self._records.pop(name, None)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._records)

    def patches(self) -> list[Patch]:
        with self._lock:
            return [r.patch for r in self._records.values()]

    def records(self) -> list[PatchRecord]:
        with self._lock:
            return list(self._records.values())

    def record(self, name: str) -> PatchRecord:
        with self._lock:
            return self._records[name]

    def __iter__(self) -> Iterator[Patch]:
        return iter(self.patches())

    def is_patched(self, name: str) -> bool:
        with self._lock:
            record = self._records.get(name)
            return record is not None and record.status == APPLIED

    # -- decisions ------------------------------------------------------------
    def decide(self, patch: Patch, backend: str | None, module: ModuleType | None = None) -> Verdict | None:
        """``None`` when ``patch`` should be applied now, else why not."""
        if patch.platforms is not None and sys.platform not in patch.platforms:
            return skip(f"only for {', '.join(sorted(patch.platforms))} (this is {sys.platform})")
        if backend is not None and backend not in patch.backends:
            return skip(f"only for the {'/'.join(sorted(patch.backends))} backend (active: {backend})")
        ctx = PatchContext(self._records[patch.name], backend, module)
        if patch.check is not None:
            return patch.check(ctx)
        if patch.mlx_versions:
            from packaging.specifiers import SpecifierSet

            version = _mlx.mlx_version()
            if not SpecifierSet(patch.mlx_versions).contains(version, prereleases=True):
                return obsolete(f"not needed on mlx {version} (needed for mlx {patch.mlx_versions})")
        return None

    # -- applying -------------------------------------------------------------
    def apply(
        self,
        names: Iterable[str] | None = None,
        *,
        backend: str | None,
        disabled: frozenset[str] = frozenset(),
        strict: bool = False,
        import_time: bool = False,
    ) -> list[str]:
        """Apply the named (default: all) patches that fit; return the names applied now.

        Patches already applied, failed or deferred are left as they are.  On
        a failure under ``strict``, the failing patch is rolled back and
        :class:`PatchError` raised.
        """
        applied_now: list[str] = []
        with self._lock:
            wanted = list(self._records) if names is None else list(names)
            for name in wanted:
                record = self._records[name]
                patch = record.patch
                if record.status in (APPLIED, DEFERRED):
                    continue
                if record.status == FAILED and not strict:
                    continue
                if import_time and (not patch.on_import or (patch.backends != ALL_BACKENDS)):
                    continue
                if name in disabled:
                    record.status, record.reason = SKIPPED, "disabled by MLX_PORTABLE_DISABLE"
                    continue
                if patch.when_imported is not None:
                    self._defer(record, backend, strict)
                    continue
                if self._try_apply(record, backend, None, strict):
                    applied_now.append(name)
        return applied_now

    def _try_apply(self, record: PatchRecord, backend: str | None, module: ModuleType | None, strict: bool) -> bool:
        patch = record.patch
        try:
            verdict = self.decide(patch, backend, module)
        except Exception as exc:
            return self._fail(record, f"its feature check raised {type(exc).__name__}: {exc}", strict, exc)
        if verdict is not None:
            record.status, record.reason = verdict.status, verdict.reason
            return False
        ctx = PatchContext(record, backend, module)
        try:
            patch.apply(ctx)
        except Exception as exc:
            self._rollback(record)
            return self._fail(record, f"{type(exc).__name__}: {exc}", strict, exc)
        record.status, record.error, record.reason = APPLIED, "", patch.summary
        record.applied_count += 1
        self._order.append(patch.name)
        return True

    def _fail(self, record: PatchRecord, message: str, strict: bool, exc: BaseException) -> bool:
        name = record.patch.name
        record.status, record.error, record.reason = FAILED, message, "failed while applying"
        if strict:
            raise PatchError(
                f"patch {name!r} failed: {message}. Strict mode is on "
                f"(MLX_PORTABLE_STRICT=1 or activate(strict=True)); disable the patch with "
                f"MLX_PORTABLE_DISABLE={name} or turn strict mode off.",
                patch=name,
            ) from exc
        if name not in self._warned:
            self._warned.add(name)
            warnings.warn(
                f"mlx-portable: patch {name!r} failed and was left out: {message}. "
                f"Other patches still apply; set MLX_PORTABLE_DISABLE={name} to silence this.",
                PortabilityWarning,
                stacklevel=4,
            )
        return False

    def _defer(self, record: PatchRecord, backend: str | None, strict: bool) -> None:
        from ..hooks import register_post_import_hook

        module_name = record.patch.when_imported
        assert module_name is not None
        record.status, record.reason = DEFERRED, f"waits for 'import {module_name}'"

        def fire(module: ModuleType) -> None:
            with self._lock:
                if record.status != DEFERRED or record.hook is not handle:
                    return
                record.hook = None
                self._try_apply(record, backend, module, strict)
            _notify()

        handle = None
        record.hook = handle = object()  # placeholder until registration returns
        real = register_post_import_hook(module_name, fire)
        if record.hook is handle:
            # Not fired synchronously: keep the real handle for removal.
            record.hook = handle = real  # type: ignore[assignment]

    # -- reverting ------------------------------------------------------------
    def _rollback(self, record: PatchRecord) -> None:
        ctx = PatchContext(record, None)
        for action in reversed(record.reverts):
            try:
                action(ctx)
            except Exception:  # rolling back must restore the rest regardless
                pass
        for kind, obj, attr, original in reversed(record.changes):
            _restore(kind, obj, attr, original)
        record.changes.clear()
        record.reverts.clear()

    def _revert(self, record: PatchRecord) -> None:
        patch = record.patch
        ctx = PatchContext(record, None)
        if patch.revert is not None:
            patch.revert(ctx)
        self._rollback(record)
        record.status, record.reason = PENDING, ""

    def revert_all(self) -> None:
        """Revert every applied patch in reverse order; forget pending hooks."""
        from ..hooks import HookHandle, remove_post_import_hook

        with self._lock:
            for name in reversed(self._order):
                record = self._records.get(name)
                if record is not None and record.status == APPLIED:
                    self._revert(record)
            self._order.clear()
            for record in self._records.values():
                if isinstance(record.hook, HookHandle):
                    remove_post_import_hook(record.hook)
                record.hook = None
                if record.status != APPLIED:
                    record.status, record.reason, record.error = PENDING, "", ""
            self._warned.clear()

    def reset_failures(self) -> None:
        with self._lock:
            for record in self._records.values():
                if record.status == FAILED:
                    record.status, record.reason, record.error = PENDING, "", ""


_listeners: list[Callable[[], None]] = []


def _notify() -> None:
    for listener in list(_listeners):
        listener()


def add_listener(listener: Callable[[], None]) -> None:
    """Call ``listener()`` whenever a deferred patch fires (the report cache listens)."""
    _listeners.append(listener)


registry = Registry()


def is_patched(name: str) -> bool:
    """Whether the patch ``name`` is applied in this process."""
    return registry.is_patched(name)
