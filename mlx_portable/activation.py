"""``activate()``, ``deactivate()``, ``report()``.

Import applies only the always-safe patches (``Patch.on_import``; see
``_bootstrap`` in ``mlx_portable/__init__.py``, which does not load this
module): the ones that add what is missing or must run before ``mlx.core``
loads.  ``activate()`` probes the backends, picks one and applies everything
else.
"""

from __future__ import annotations

import _thread
import sys

from . import _mlx
from .import_hooks import fire_completed
from .registry.registry import FAILED, Patch, registry
from .settings import ENV_DISABLE, Settings, read_settings, validate_disabled, with_arguments
from .validation import require_bool, require_optional_bool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .activation_report import ActivationReport
    from .backends import ProbeResult, Selection

__all__ = [
    "activate",
    "deactivate",
    "is_active",
    "register",
    "report",
    "set_detail",
]

_lock = _thread.RLock()  # _thread, not threading: a millisecond less on activate()
_active = False
_settings: Settings | None = None
_report: ActivationReport | None = None
_versions: dict[str, str | None] | None = None
_details: dict[str, Any] = {}
_builtins_loaded = False


def _invalidate() -> None:
    global _report
    _report = None


registry.add_listener(_invalidate)


def set_detail(key: str, value: Any) -> None:
    """Attach a fact to the report (``details[key]``), e.g. the CUDA headers folder.

    ``value`` is rendered for the JSON report here, so a value that cannot be
    (its ``__str__`` or iteration raises, or it contains itself) is refused
    now, naming the key, instead of breaking every later ``report()``.
    """
    from .activation_report import jsonable
    from .validation import require_str

    key = require_str(key, "set_detail(key=...)", empty=False)
    try:
        jsonable(value)
    except RecursionError:
        raise ValueError(f"set_detail({key!r}, value=...): the value contains itself") from None
    except Exception as exc:
        raise TypeError(
            f"set_detail({key!r}, value=...): the value cannot be shown in the report "
            f"(rendering it raised {type(exc).__name__}); pass plain data: str, numbers, lists, dicts"
        ) from None
    note_detail(key, value)


def note_detail(key: str, value: Any) -> None:
    """:func:`set_detail` for mlx-portable's own patches, whose values are plain data already.

    Skips the rendering check, which would load the report machinery on the
    import path (``import mlx_portable`` applies patches that record details).
    """
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
        selection = _active_selection()
        if _active and _settings is not None and selection is not None:
            registry.apply(
                [patch.name],
                backend=selection.backend,
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
    from .registry.builtin import register_activate_time

    register_activate_time(registry)
    _builtins_loaded = True


def _active_selection() -> Selection | None:
    from .backends.selection import cached_selection

    return cached_selection()


def activate(
    *,
    backend: str | list[str] | tuple[str, ...] | None = None,
    disable: object = None,
    strict: bool | None = None,
    children: bool = False,
) -> ActivationReport:
    """Pick the backend, apply every patch that fits, and report what happened.

    ``backend`` names the backend (``"cpu"``) or an order (``"cuda,cpu"``,
    ``["cuda", "cpu"]``) as ``MLX_PORTABLE_BACKEND`` does, ``disable`` the
    patches to leave out as ``MLX_PORTABLE_DISABLE`` does; each argument
    replaces its variable.  Repeat calls are cheap and return the same state;
    asking an active mlx-portable for another backend or other disabled
    patches raises (``deactivate()`` first).  ``strict=True`` (or
    ``MLX_PORTABLE_STRICT=1``) turns a failing patch into :class:`PatchError`
    and rolls the whole activation back.  ``children=True`` also activates the
    child processes started afterwards (``multiprocessing``, ``subprocess``):
    it exports ``MLX_PORTABLE_AUTOACTIVATE=1`` and the chosen settings to
    ``os.environ`` (see :mod:`mlx_portable.children`; ``details["children"]``).
    """
    global _active, _settings
    from .backends.selection import current_selection, pin, select_backend
    from .errors import PatchError

    if require_bool(children, "activate(children=...)"):
        activate(backend=backend, disable=disable, strict=strict)
        from .children import export_to_children

        set_detail("children", export_to_children(_settings or read_settings()))
        return report()
    strict = require_optional_bool(strict, "activate(strict=...)")
    fire_completed()  # hooks registered while their module was still initializing
    if _active and strict is None and backend is None and disable is None:
        cached = _report
        if cached is not None:
            return cached
    with _lock:
        if _active:
            _check_same_request(backend, disable)
            failed = next((r for r in registry.records() if r.status == FAILED), None)
            if strict and failed is not None:
                raise PatchError(
                    f"patch {failed.patch.name!r} failed: {failed.error} (strict mode)",
                    patch=failed.patch.name,
                )
            return report()
        settings = with_arguments(backend, disable, read_settings(strict=strict))
        # One clear MlxUnavailableError now, rather than one warning per patch
        # whose check then fails to reach mlx.
        _mlx.core()
        _load_builtins()
        from .registry.plugins import load_plugins  # activate() alone reads the entry points

        load_plugins()
        validate_disabled(
            settings.disabled,
            registry.names(),
            source="activate(disable=...)" if disable is not None else ENV_DISABLE,
        )
        if settings.backend_forced:
            selection = select_backend(settings.backend_order, forced=True)
        else:
            selection = current_selection()
        pin(selection)  # the one cache: current_backend() and report() read this choice
        _settings = settings
        if settings.enabled:
            try:
                registry.apply(
                    backend=selection.backend,
                    disabled=settings.disabled,
                    strict=settings.strict,
                )
            except BaseException:  # PatchError, or Ctrl-C / SystemExit mid-way: nothing stays half-applied
                try:
                    registry.revert_all()
                finally:
                    pin(None)
                    _invalidate()
                raise
        _active = True
        _invalidate()
        return report()


def _check_same_request(backend: object, disable: object) -> None:
    """An active mlx-portable asked for another backend or other disabled patches: say to deactivate()."""
    if backend is None and disable is None:
        return
    assert _settings is not None
    wanted = with_arguments(backend, disable, _settings)
    selection = _active_selection()
    active = selection.backend.name if selection is not None else None
    if backend is not None and active not in wanted.backend_order:
        raise ValueError(
            f"mlx-portable is already active on the {active} backend; call mlx_portable.deactivate() "
            f"before activate(backend={backend!r})"
        )
    if disable is not None and wanted.disabled != _settings.disabled:
        raise ValueError(
            f"mlx-portable is already active with {sorted(_settings.disabled) or 'no patch'} disabled; "
            f"call mlx_portable.deactivate() before activate(disable={disable!r})"
        )


def deactivate() -> None:
    """Revert every patch (restoring the original objects) and forget pending hooks."""
    global _active, _report
    from .backends.selection import pin

    with _lock:
        try:
            # Also removes the import-time patches' wait for mlx.core.  Raises
            # PatchError, once every patch is reverted, if a plugin's revert failed.
            registry.revert_all()
        finally:
            _active = False
            _report = None
            pin(None)  # the next activate() or current_backend() chooses afresh


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
        "mlx-portable": sys.modules["mlx_portable"].__version__,  # the package is loaded: it loaded us
        "mlx": _mlx.mlx_version(mx) if mx is not None else dist("mlx"),
    }
    for backend_dist in backend_distributions():
        v = dist(backend_dist)
        if v is not None:
            found[backend_dist] = v
    found["mlx-lm"] = dist("mlx-lm")
    _versions = found
    return found


def report() -> ActivationReport:
    """The current state as an :class:`ActivationReport` (activating nothing)."""
    global _report
    fire_completed()  # hooks registered while their module was still initializing
    cached = _report
    if cached is not None:
        return cached
    from .activation_report import ActivationReport, patch_entries
    from .backends import current_selection

    with _lock:
        settings = _settings or _safe_settings()
        selection = _active_selection()
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
        entries = patch_entries(registry.records(), settings.enabled)
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
    from .backends import probe_all

    try:
        return tuple(probe_all())
    except Exception:
        return ()


def _safe_settings() -> Settings:
    try:
        return read_settings()
    except ValueError:
        return Settings()
