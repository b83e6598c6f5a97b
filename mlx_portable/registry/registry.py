"""The patch registry: declared patches, applied at most once, revertible.

A patch is declared in :mod:`.patch`; what it replaced is kept in
:mod:`.originals` (the first original wins, so ``deactivate()`` restores the
very same objects); this module decides, applies, defers and reverts.
Deferred patches -- those waiting for ``mlx.core`` at import time included --
are ordinary post-import hooks that :meth:`Registry.revert_all` removes.  The
records keep the order the patches were registered in, which is the order
they apply in: the import-time ones (registered by ``import mlx_portable``)
first, then the built-in list, then plugins and ``register()``.

This module is on the ``import mlx_portable`` path: it imports nothing
beyond ``sys`` and ``_thread`` at run time (``warnings``, for the one
warning a failed patch gives, is imported when that happens).
"""

from __future__ import annotations

import _thread
import sys

from ..validation import require_bool, require_str, shown
from . import parts
from .context import PatchContext, PatchRecord
from .lazy import is_lazy
from .originals import get_original, restore
from .patch import (
    APPLIED,
    DEFERRED,
    FAILED,
    OBSOLETE,
    PENDING,
    SKIPPED,
    Patch,
    Verdict,
    obsolete,
    skip,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import ModuleType

    from ..backends.protocol import Backend

    Action = Callable[["PatchContext"], None]

__all__ = [
    "APPLIED",
    "DEFERRED",
    "FAILED",
    "OBSOLETE",
    "PENDING",
    "SKIPPED",
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


_DISABLED = "disabled (MLX_PORTABLE_DISABLE or activate(disable=...))"


def _warn(message: str) -> None:
    import warnings

    from ..errors import PortabilityWarning

    warnings.warn(message, PortabilityWarning, stacklevel=5)


class Registry:
    """All known patches and their state; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = _thread.RLock()
        self._records: dict[str, PatchRecord] = {}
        self._order: list[str] = []  # application order, for reverse reverts
        self._warned: set[str] = set()
        self._listeners: list[Callable[[], None]] = []

    # -- registration ---------------------------------------------------------
    def register(self, patch: Patch, *, replace: bool = False) -> Patch:
        """Add ``patch``; another patch of the same name is an error unless ``replace``."""
        if not isinstance(patch, Patch):
            raise TypeError(f"register() takes an mlx_portable.Patch, not {type(patch).__name__}")
        require_bool(replace, "register(replace=...)")
        with self._lock:
            existing = self._records.get(patch.name)
            if existing is not None:
                if existing.patch is patch:
                    return patch
                if not replace:
                    raise ValueError(
                        f"a patch named {patch.name!r} is already registered; "
                        "choose another name or pass replace=True"
                    )
                if existing.status == APPLIED:
                    raise ValueError(f"patch {patch.name!r} is applied; deactivate() before replacing it")
            self._records[patch.name] = PatchRecord(patch)
            return patch

    def register_lazy(self, record: PatchRecord, name: str) -> None:
        """Add a built-in patch's record whose module is not imported yet (see :mod:`.lazy`)."""
        with self._lock:
            if name in self._records:
                raise ValueError(f"a patch named {name!r} is already registered; choose another name")
            self._records[name] = record

    def unregister(self, name: str) -> None:
        with self._lock:
            record = self._records.get(name)
            if record is not None and record.status == APPLIED:
                self._revert(record)
                self._order.remove(name)
            self._records.pop(name, None)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._records)

    def records(self) -> list[PatchRecord]:
        with self._lock:
            return list(self._records.values())

    def record(self, name: str) -> PatchRecord:
        with self._lock:
            return self._records[name]

    def is_patched(self, name: str) -> bool:
        record = self._records.get(name)
        return record is not None and record.status == APPLIED

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` whenever a deferred patch fires (the report cache listens)."""
        self._listeners.append(listener)

    # -- decisions ------------------------------------------------------------
    def decide(
        self, patch: Patch, backend: Backend | None, module: ModuleType | None = None
    ) -> Verdict | None:
        """``None`` when ``patch`` should be applied now, else why not."""
        if patch.platforms is not None and sys.platform not in patch.platforms:
            return skip(f"only for {', '.join(sorted(patch.platforms))} (this is {sys.platform})")
        if backend is not None and backend.name not in patch.backends:
            return skip(f"only for the {'/'.join(sorted(patch.backends))} backend (active: {backend.name})")
        if patch.part_of is not None and (verdict := parts.parent_verdict(self._records, patch.part_of)):
            return verdict
        if patch.check is not None:
            return patch.check(PatchContext(self._records[patch.name], backend, module))
        return self._version_verdict(patch)

    @staticmethod
    def _version_verdict(patch: Patch) -> Verdict | None:
        """``obsolete`` when this mlx is outside ``patch.mlx_versions``, else ``None``."""
        if not patch.mlx_versions:
            return None
        from .. import _mlx
        from ..versions import version_in

        version = _mlx.mlx_version()
        if version_in(version, patch.mlx_versions):
            return None
        return obsolete(f"not needed on mlx {version} (needed for mlx {patch.mlx_versions})")

    # -- applying -------------------------------------------------------------
    def apply(
        self,
        names: Iterable[str] | None = None,
        *,
        backend: Backend | None,
        disabled: frozenset[str] = frozenset(),
        strict: bool = False,
        import_time: bool = False,
    ) -> list[str]:
        """Apply the named (default: all) patches that fit; return the names applied now.

        Patches already applied or deferred are left as they are.  On a
        failure under ``strict`` the failing patch is rolled back and
        :class:`PatchError` raised.
        """
        applied_now: list[str] = []
        with self._lock:
            wanted = list(self._records) if names is None else list(names)
            for name in wanted:
                record = self._records[name]
                if is_lazy(record) and not strict:  # decided when first read; this pass replayed then
                    if not import_time:
                        record.missed.append((backend, disabled))  # type: ignore[attr-defined]
                    continue
                patch = record.patch
                if record.status == DEFERRED and not import_time:
                    # Deferred at import time, before the version could be
                    # checked cheaply: no need to keep waiting on an mlx
                    # outside the patch's range.
                    self._drop_if_obsolete(record)
                    continue
                if record.status in (APPLIED, DEFERRED) or (record.status == FAILED and not strict):
                    continue
                if import_time and not patch.on_import:
                    continue
                if name in disabled:
                    record.status, record.reason = SKIPPED, _DISABLED
                    continue
                # At import, an ``import`` patch waits for mlx.core like any deferred one, and
                # an ``import:<module>`` one for mlx.core, then its module (its check reads mx).
                waits_for = patch.waits_for if import_time else patch.module
                if waits_for is not None:
                    verdict = None if import_time else self._version_verdict(patch)
                    if verdict is not None:
                        record.status, record.reason = verdict.status, verdict.reason
                    else:
                        first = ("mlx.core",) if import_time and waits_for != "mlx.core" else ()
                        self._defer(record, (*first, waits_for), backend, strict)
                    continue
                if self._try_apply(record, backend, None, strict):
                    applied_now.append(name)
        return applied_now

    def _try_apply(
        self, record: PatchRecord, backend: Backend | None, module: ModuleType | None, strict: bool
    ) -> bool:
        patch = record.patch
        try:
            verdict = self.decide(patch, backend, module)
        except KeyboardInterrupt:
            raise  # the user's Ctrl-C: activate() rolls back and lets it go
        except BaseException as exc:  # SystemExit, GeneratorExit too: a patch may not end the program
            return self._fail(record, f"its feature check raised {type(exc).__name__}: {exc}", strict, exc)
        if verdict is not None and not isinstance(verdict, Verdict):
            # A check that returns True/"yes"/... used to raise AttributeError
            # half-way through activate(), with the earlier patches applied.
            message = f"its feature check returned {shown(verdict)}, not None or obsolete(...)/skip(...)"
            return self._fail(record, message, strict, TypeError(message))
        if verdict is not None:
            record.status, record.reason = verdict.status, verdict.reason
            return False
        try:
            patch.apply(PatchContext(record, backend, module))
        except KeyboardInterrupt:  # the user's Ctrl-C: undo this patch's half, then let it go
            self._rollback(record)
            record.status, record.reason = PENDING, ""
            raise
        except BaseException as exc:  # SystemExit, GeneratorExit too: a failure of this patch, not an exit
            _, interrupted = self._rollback(record)
            if isinstance(interrupted, KeyboardInterrupt):
                record.status, record.reason = PENDING, ""
                raise interrupted from None
            return self._fail(record, f"{type(exc).__name__}: {exc}", strict, exc)
        record.status, record.error, record.reason = APPLIED, "", patch.summary
        record.applied_count += 1
        self._order.append(patch.name)
        return True

    def _fail(self, record: PatchRecord, message: str, strict: bool, exc: BaseException) -> bool:
        name = record.patch.name
        record.status, record.error, record.reason = FAILED, message, "failed while applying"
        if strict:
            from ..errors import PatchError

            raise PatchError(
                f"patch {name!r} failed: {message}. Strict mode is on "
                "(MLX_PORTABLE_STRICT=1 or activate(strict=True)); leave the patch out with "
                f"MLX_PORTABLE_DISABLE={name}, or turn strict mode off.",
                patch=name,
            ) from exc
        if name not in self._warned:
            self._warned.add(name)
            _warn(
                f"mlx-portable: patch {name!r} failed and was left out: {message}. "
                f"The other patches still apply; set MLX_PORTABLE_DISABLE={name} to leave it out."
            )
        return False

    def _defer(
        self, record: PatchRecord, waits: tuple[str, ...], backend: Backend | None, strict: bool
    ) -> None:
        """Wait for each of ``waits`` in turn (each at once if imported), then try the patch."""
        from ..import_hooks import register_post_import_hook

        module_name, rest = waits[0], waits[1:]
        record.status, record.reason = DEFERRED, f"waits for 'import {module_name}'"
        token = object()
        record.hook = token

        def fire(module: ModuleType) -> None:
            with self._lock:
                if record.status != DEFERRED or record.hook is None:
                    return
                record.hook = None
                after = rest or parts.parent_wait(self._records, record.patch, module.__name__)
                if after:
                    self._defer(record, after, backend, strict)
                    return
                self._try_apply(record, backend, module if record.patch.module else None, strict)
            for listener in list(self._listeners):
                listener()

        handle = register_post_import_hook(module_name, fire)
        if record.hook is token:  # did not fire at once: keep the handle for removal
            record.hook = handle

    def _drop_if_obsolete(self, record: PatchRecord) -> None:
        from ..import_hooks import HookHandle, remove_post_import_hook

        verdict = self._version_verdict(record.patch)
        if verdict is None:
            return
        if isinstance(record.hook, HookHandle):
            remove_post_import_hook(record.hook)
        record.hook = None
        record.status, record.reason = verdict.status, verdict.reason

    # -- reverting ------------------------------------------------------------
    def _rollback(self, record: PatchRecord) -> tuple[list[str], BaseException | None]:
        """Undo one patch: its ``on_revert`` actions (newest first), then its recorded changes.

        Every step runs whatever an earlier one raised: the ``Exception`` texts
        are returned, and the first ``KeyboardInterrupt``/``SystemExit``/
        ``GeneratorExit``, for the caller to re-raise once everything is restored.
        """
        ctx = PatchContext(record, None)
        errors: list[str] = []
        escaped: BaseException | None = None
        for action in reversed(record.reverts):
            try:
                action(ctx)
            except Exception as exc:  # the rest must still be restored
                errors.append(f"{type(exc).__name__}: {shown(str(exc), 200)[1:-1]}")
            except BaseException as exc:
                escaped = escaped or exc
        for kind, obj, attr, original in reversed(record.changes):
            restore(kind, obj, attr, original)
        record.changes.clear()
        record.reverts.clear()
        record.state.clear()
        return errors, escaped

    def _revert(self, record: PatchRecord) -> tuple[str | None, BaseException | None]:
        """Revert one patch, changes restored regardless: (its ``on_revert`` error, what to re-raise)."""
        errors, escaped = self._rollback(record)
        record.status, record.reason = PENDING, ""
        return (f"{record.patch.name} ({errors[0]})" if errors else None), escaped

    def revert_all(self) -> None:
        """Revert every applied patch in reverse order; forget pending hooks.

        A patch whose ``on_revert`` action raises does not stop the others:
        every patch is reverted (its recorded changes restored), then one
        :class:`PatchError` names those whose revert step failed -- or, if a
        revert step raised ``KeyboardInterrupt``/``SystemExit``/``GeneratorExit``,
        the first of those is re-raised.
        """
        from ..import_hooks import HookHandle, remove_post_import_hook

        problems: list[str] = []
        escaped: BaseException | None = None
        with self._lock:
            for name in reversed(self._order):
                record = self._records.get(name)
                if record is not None and record.status == APPLIED:
                    problem, interrupted = self._revert(record)
                    if problem is not None:
                        problems.append(problem)
                    escaped = escaped or interrupted
            self._order.clear()
            for record in self._records.values():
                if isinstance(record.hook, HookHandle):
                    remove_post_import_hook(record.hook)
                record.hook = None
                record.status, record.reason, record.error = PENDING, "", ""
            self._warned.clear()
        if escaped is not None:
            raise escaped
        if problems:
            from ..errors import PatchError

            raise PatchError(
                f"every patch was reverted, but the revert step of {', '.join(problems)} raised; what "
                "mlx-portable recorded (attributes, variables) is restored, anything else those patches "
                "changed may not be. Fix or uninstall the package that provides them.",
                patch=problems[0].split(" ", 1)[0],
            )


registry = Registry()


def is_patched(name: str) -> bool:
    """Whether the patch ``name`` is applied in this process."""
    return registry.is_patched(require_str(name, "is_patched(name)"))
