"""``activate()``, ``deactivate()`` and the import-time bootstrap.

Import applies only the always-safe patches (``Patch.on_import``): the ones
that add what is missing or must run before ``mlx.core`` loads.  Those that
need mlx wait for ``mlx.core`` to be imported (a post-import hook), so
``import mlx_portable`` itself stays cheap and works without mlx at all.
``activate()`` probes the backends, picks one and applies everything else.
"""

from __future__ import annotations

import _thread
import sys

from . import _mlx
from .activation_report import ActivationReport, PatchEntry
from .backends import (
    ProbeResult,
    Selection,
    current_selection,
    probe_all,
    reset_current_backend,
    select_backend,
)
from .errors import PatchError
from .hooks import fire_completed
from .patches.registry import FAILED, Patch, registry
from .settings import Settings, read_settings, validate_disabled
from .validation import require_bool, require_optional_bool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "activate",
    "deactivate",
    "is_active",
    "register",
    "report",
    "set_detail",
]

ENTRY_POINT_GROUP = "mlx_portable.patches"

_lock = _thread.RLock()  # _thread, not threading: a millisecond less on activate()
_active = False
_settings: Settings | None = None
_selection: Selection | None = None
_report: ActivationReport | None = None
_versions: dict[str, str | None] | None = None
_details: dict[str, Any] = {}
_plugins_loaded = False
_builtins_loaded = False


def _invalidate() -> None:
    global _report
    _report = None


registry.add_listener(_invalidate)


def set_detail(key: str, value: Any) -> None:
    """Attach a fact to the report (``details[key]``), e.g. the CUDA headers folder."""
    with _lock:
        _details[key] = value
        _invalidate()


def register(patch: Patch, *, replace: bool = False) -> Patch:
    """Register a third-party :class:`Patch`: applied at once if mlx-portable is active.

    Otherwise ``activate()`` applies it with the others.  ``replace=True``
    swaps a registered patch of the same name (not while it is applied).
    """
    require_bool(replace, "register(replace=...)")
    _check_versions(patch)
    with _lock:
        registry.register(patch, replace=replace)
        if _active and _settings is not None and _selection is not None:
            registry.apply(
                [patch.name],
                backend=_selection.backend.name,
                disabled=_settings.disabled,
                strict=_settings.strict,
            )
        _invalidate()
    return patch


def _check_versions(patch: Patch) -> None:
    """``patch.mlx_versions`` must parse as a PEP 440 specifier set (checked here, off the import path)."""
    if not isinstance(patch, Patch) or not patch.mlx_versions:
        return
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    from .validation import shown

    try:
        SpecifierSet(patch.mlx_versions)
    except InvalidSpecifier:
        raise ValueError(
            f"patch {patch.name!r}: mlx_versions={shown(patch.mlx_versions)} is not a version specifier "
            "such as '<0.29' or '>=0.26.5,<0.30.0'"
        ) from None


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    from .patches.builtin import builtin_patches

    patches = builtin_patches()
    for patch in patches:
        registry.register(patch)
    # Import-time patches registered first; keep the documented order.
    registry.put_first(p.name for p in patches)
    _builtins_loaded = True


def _load_plugins() -> None:
    """Patches from other packages' ``mlx_portable.patches`` entry points."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from .distributions import entry_points  # not importlib.metadata: 36 ms to import

    for ep in entry_points(ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, Patch):
                obj = obj()
            found = [obj] if isinstance(obj, Patch) else list(obj)
            for patch in found:
                if not isinstance(patch, Patch):
                    raise TypeError(f"{patch!r} is not an mlx_portable.Patch")
                registry.register(patch)
        except (
            Exception,
            SystemExit,
            GeneratorExit,
        ) as exc:  # a broken plugin must not break activation (nor exit)
            import warnings

            from .errors import PortabilityWarning

            warnings.warn(
                f"mlx-portable: the patch plugin {ep.name!r} ({ep.value}) could not be loaded: "
                f"{type(exc).__name__}: {exc}. Fix or uninstall the package that provides it.",
                PortabilityWarning,
                stacklevel=3,
            )


def activate(*, strict: bool | None = None) -> ActivationReport:
    """Pick the backend, apply every patch that fits, and report what happened.

    Repeat calls are cheap and return the same state.  ``strict=True`` (or
    ``MLX_PORTABLE_STRICT=1``) turns a failing patch into :class:`PatchError`
    and rolls the whole activation back.
    """
    global _active, _settings, _selection
    strict = require_optional_bool(strict, "activate(strict=...)")
    fire_completed()  # hooks registered while their module was still initializing
    if _active and strict is None:
        cached = _report
        if cached is not None:
            return cached
    with _lock:
        if _active:
            failed = next((r for r in registry.records() if r.status == FAILED), None)
            if strict and failed is not None:
                raise PatchError(
                    f"patch {failed.patch.name!r} failed: {failed.error} (strict mode)",
                    patch=failed.patch.name,
                )
            return report()
        settings = read_settings(strict=strict)
        # One clear MlxUnavailableError now, rather than one warning per patch
        # whose check then fails to reach mlx.
        _mlx.core()
        _load_builtins()
        _load_plugins()
        validate_disabled(settings.disabled, registry.names())
        if settings.backend_forced:
            reset_current_backend()
            selection = select_backend(settings.backend_order, forced=True)
        else:
            selection = current_selection()
        _settings, _selection = settings, selection
        if settings.enabled:
            try:
                registry.apply(
                    backend=selection.backend.name,
                    disabled=settings.disabled,
                    strict=settings.strict,
                )
            except BaseException:  # PatchError, or Ctrl-C / SystemExit mid-way: nothing stays half-applied
                try:
                    registry.revert_all()
                finally:
                    _invalidate()
                raise
        _active = True
        _invalidate()
        return report()


def deactivate() -> None:
    """Revert every patch (restoring the original objects) and forget pending hooks."""
    global _active, _report
    with _lock:
        try:
            # Also removes the import-time patches' wait for mlx.core.  Raises
            # PatchError, once every patch is reverted, if a plugin's revert failed.
            registry.revert_all()
        finally:
            _active = False
            _report = None


def is_active() -> bool:
    """Whether ``activate()`` has run (and ``deactivate()`` has not since)."""
    return _active


def _gather_versions() -> dict[str, str | None]:
    global _versions
    if _versions is not None:
        return _versions
    from .backend_table import backend_distributions
    from .distributions import version as dist

    mx = _mlx.core_if_loaded()
    found: dict[str, str | None] = {
        "python": sys.version.split()[0],
        "mlx-portable": _own_version(),
        "mlx": _mlx.mlx_version(mx) if mx is not None else dist("mlx"),
    }
    for backend_dist in backend_distributions():
        v = dist(backend_dist)
        if v is not None:
            found[backend_dist] = v
    found["mlx-lm"] = dist("mlx-lm")
    _versions = found
    return found


def _own_version() -> str:
    from . import __version__

    return __version__


def report() -> ActivationReport:
    """The current state as an :class:`ActivationReport` (activating nothing)."""
    global _report
    fire_completed()  # hooks registered while their module was still initializing
    cached = _report
    if cached is not None:
        return cached
    with _lock:
        settings = _settings or _safe_settings()
        selection = _selection
        details = dict(_details)
        probes: tuple[ProbeResult, ...] = ()
        if selection is None:
            try:
                _mlx.core()  # no mlx, no backend: report None rather than a CPU that cannot run
                selection = current_selection()
            except Exception as exc:  # shown, not hidden: the reason and every probe
                selection = None
                details["backend_error"] = f"{type(exc).__name__}: {exc}"
                probes = _probes_without_selection()
        entries = tuple(
            PatchEntry(
                name=r.patch.name,
                status=r.status,
                summary=r.patch.summary,
                reason=r.reason or ("MLX_PORTABLE=0: nothing is patched" if not settings.enabled else ""),
                error=r.error,
                module=r.patch.module,
            )
            for r in registry.records()
        )
        built = ActivationReport(
            active=_active,
            enabled=settings.enabled,
            backend=selection.backend.name if selection else None,
            backend_forced=bool(selection and selection.forced),
            probes=tuple(selection.probes) if selection else probes,
            versions=_gather_versions(),
            patches=entries,
            details=details,
        )
        _report = built
        return built


def _probes_without_selection() -> tuple[ProbeResult, ...]:
    """Every probe, for a report whose backend could not be chosen (never raises)."""
    try:
        return tuple(probe_all())
    except Exception:
        return ()


def _safe_settings() -> Settings:
    try:
        return read_settings()
    except ValueError:
        return Settings()
