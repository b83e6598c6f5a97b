"""A patch declared as data: :class:`Patch`, its :class:`Verdict` and statuses.

Kept apart from the registry (which applies and reverts) and from the saved
originals (:mod:`.originals`), so that a patch module imports only what it
declares with.  On the ``import mlx_portable`` path: ``os``/``sys`` only.
"""

from __future__ import annotations

from ..validation import check_patch_arguments, require_str, shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .context import PatchContext

    Check = Callable[[PatchContext], "Verdict | None"]
    Action = Callable[[PatchContext], None]

__all__ = [
    "APPLIED",
    "DEFERRED",
    "FAILED",
    "OBSOLETE",
    "PENDING",
    "PHASES",
    "SKIPPED",
    "Patch",
    "Verdict",
    "obsolete",
    "skip",
]

APPLIED = "applied"
SKIPPED = "skipped"
FAILED = "failed"
DEFERRED = "deferred"
OBSOLETE = "obsolete"
PENDING = "pending"

#: When a patch applies: ``before-mlx`` (by ``import mlx_portable``, at once,
#: without mlx), ``import`` (by ``import mlx_portable``, as soon as
#: ``mlx.core`` is imported), ``activate`` (by ``activate()``).  ``import`` and
#: ``activate`` take ``:<module>`` to wait for that module instead.
PHASES: tuple[str, ...] = ("before-mlx", "import", "activate")


def _all_backends() -> frozenset[str]:
    from ..backend_table import backend_names

    return frozenset(backend_names())


class Verdict:
    """Why a patch is *not* applied: ``status`` is ``obsolete`` or ``skipped``."""

    __slots__ = ("reason", "status")

    def __init__(self, status: str, reason: str) -> None:
        self.status = status
        self.reason = reason

    def __repr__(self) -> str:
        return f"Verdict({self.status!r}, {self.reason!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verdict) and (self.status, self.reason) == (other.status, other.reason)

    def __hash__(self) -> int:
        return hash((self.status, self.reason))


def obsolete(reason: str) -> Verdict:
    """The feature this patch provides exists natively: not needed on this mlx."""
    return Verdict(OBSOLETE, require_str(reason, "obsolete(reason=...)", empty=False))


def skip(reason: str) -> Verdict:
    """The patch does not fit this machine or configuration."""
    return Verdict(SKIPPED, require_str(reason, "skip(reason=...)", empty=False))


class Patch:
    """One shim, declared as data (immutable once built).

    ``check`` is the feature check (``hasattr`` first): it returns ``None``
    when the patch is needed, or a :class:`Verdict` (``obsolete(...)`` /
    ``skip(...)``).  Without one, ``mlx_versions`` decides.  ``mlx_versions``
    is a PEP 440 specifier set of the mlx versions that need the patch; the
    compatibility table in the docs is generated from it, so it stays exact
    even where ``check`` decides.

    ``when`` says when it applies, the one place that decides it (see
    :data:`PHASES`): ``"activate"`` (the default), ``"import"`` (an always-safe
    patch that ``import mlx_portable`` applies once ``mlx.core`` is imported),
    ``"before-mlx"`` (applied by the import before ``mlx.core`` loads), or
    ``"<phase>:<module>"``: deferred until that module is imported (at once if
    it already is), with ``ctx.module`` the module.  The import-time phases run
    before a backend is chosen, so such a patch is for every backend.

    A patch whose second half must wait for another module is two patches:
    the second, ``part_of="<first>"`` with ``when="<phase>:<module>"``, is
    decided after the first and left out unless the first is applied
    (disabling the first disables both; each name can be disabled alone).

    Everything ``apply`` changes goes through the context (``ctx.set_attr``,
    ``ctx.wrap``, ``ctx.set_env``, ``ctx.on_revert``), which is how
    ``deactivate()`` reverts it.
    """

    __slots__ = (
        "apply",
        "check",
        "mlx_versions",
        "module",
        "name",
        "only_backends",
        "part_of",
        "phase",
        "platforms",
        "summary",
        "upstream",
        "when",
        "why",
    )

    name: str
    summary: str
    why: str
    apply: Action
    mlx_versions: str
    only_backends: frozenset[str] | None
    check: Check | None
    when: str
    phase: str
    module: str | None
    upstream: str
    platforms: frozenset[str] | None
    part_of: str | None

    def __init__(
        self,
        name: str,
        summary: str,
        why: str,
        apply: Action,
        *,
        mlx_versions: str = "",
        backends: Iterable[str] | None = None,
        check: Check | None = None,
        when: str = "activate",
        upstream: str = "",
        platforms: Iterable[str] | None = None,
        part_of: str | None = None,
    ) -> None:
        # A clear TypeError for each argument of the wrong type; strings come back as plain str.
        checked = check_patch_arguments(name, locals())
        name, summary, why = checked["name"], checked["summary"], checked["why"]  # type: ignore[assignment]
        mlx_versions, upstream = checked["mlx_versions"], checked["upstream"]  # type: ignore[assignment]
        when = checked["when"]  # type: ignore[assignment]
        backends, platforms = checked["backends"], checked["platforms"]  # type: ignore[assignment]
        if not name or not name.replace("_", "").isalnum() or name != name.lower():
            raise ValueError(f"patch name {name!r} must be lower_snake_case")
        only = None if backends is None else frozenset(backends)
        known = frozenset() if only is None else _all_backends()  # the table only when names are given
        unknown = (only or known) - known
        if unknown:
            raise ValueError(
                f"patch {name!r}: backends= names unknown backend(s) {shown(sorted(unknown))}; "
                f"use {', '.join(sorted(known))}"
            )
        if not callable(apply):
            raise TypeError(f"patch {name!r}: apply must be callable")
        phase, _, module = when.partition(":")
        if phase not in PHASES or (module and phase == "before-mlx") or (_ and not module):
            raise ValueError(
                f"patch {name!r}: when={shown(when)}; use one of {', '.join(PHASES)}, "
                "or 'import:<module>' / 'activate:<module>' to wait for a module"
            )
        if phase != "activate" and only is not None and only != known:
            raise ValueError(
                f"patch {name!r}: when={when!r} applies before a backend is chosen, so it cannot be "
                f"only for {', '.join(sorted(only))}; use when='activate' (or 'activate:<module>')"
            )
        if part_of is not None:
            part_of = require_str(part_of, f"patch {name!r}: part_of", empty=False)
            if part_of == name:
                raise ValueError(
                    f"patch {name!r}: part_of names the patch itself; name the patch it is part of"
                )
        values = {
            "name": name,
            "summary": summary,
            "why": why,
            "apply": apply,
            "mlx_versions": mlx_versions,
            "only_backends": only,
            "check": check,
            "when": when,
            "phase": phase,
            "module": module or None,
            "upstream": upstream,
            "platforms": frozenset(platforms) if platforms is not None else None,
            "part_of": part_of,
        }
        for key, value in values.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"Patch {self.name!r} is immutable")

    def __repr__(self) -> str:
        return f"<Patch {self.name}>"

    @property
    def backends(self) -> frozenset[str]:
        """The backends it applies on: those given, else every backend of the table."""
        return self.only_backends if self.only_backends is not None else _all_backends()

    @property
    def on_import(self) -> bool:
        """Whether ``import mlx_portable`` applies it (``when`` is ``before-mlx`` or ``import``)."""
        return self.phase != "activate"

    @property
    def waits_for(self) -> str | None:
        """The module whose import triggers it: its own, or ``mlx.core`` for ``import``."""
        return self.module or ("mlx.core" if self.phase == "import" else None)
