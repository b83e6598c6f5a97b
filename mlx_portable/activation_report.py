"""The :class:`ActivationReport`: what ``activate()`` found and did, as data.

Rendering (text, JSON) is kept apart from gathering, as in
``torch.utils.collect_env``.
"""

from __future__ import annotations

from ._record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from .backends.results import ProbeResult
    from .registry.context import PatchRecord

__all__ = ["ActivationReport", "PatchEntry", "jsonable", "patch_entries", "render_text"]


class PatchEntry(Record):
    """One patch's state: ``status`` is applied/skipped/failed/deferred/obsolete/pending."""

    __slots__ = ("_fill", "error", "module", "name", "reason", "status", "summary")
    name: str
    status: str
    summary: str
    reason: str
    error: str
    module: str | None

    def __init__(
        self, name: str, status: str, summary: str, reason: str, error: str = "", module: str | None = None
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "summary", summary)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "error", error)
        object.__setattr__(self, "module", module)

    @classmethod
    def later(cls, name: str, fields: Callable[[], tuple[str, str, str, str, str | None]]) -> PatchEntry:
        """An entry whose other fields are ``fields()``, called when one of them is first read.

        For a patch not decided yet (``registry.lazy``): reading it decides it.
        """
        entry = object.__new__(cls)
        object.__setattr__(entry, "name", name)
        object.__setattr__(entry, "_fill", fields)
        return entry

    def __getattr__(self, field: str) -> Any:  # only for a field not set yet: see later()
        try:
            fill = object.__getattribute__(self, "_fill")
        except AttributeError:
            raise AttributeError(field) from None
        if field not in self._fields:
            raise AttributeError(field)
        for key, value in zip(("status", "summary", "reason", "error", "module"), fill(), strict=True):
            object.__setattr__(self, key, value)
        return object.__getattribute__(self, field)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "reason": self.reason,
        }
        if self.error:
            out["error"] = self.error
        if self.module:
            out["module"] = self.module
        return out


def _fields_of(record: PatchRecord, enabled: bool = True) -> tuple[str, str, str, str, str | None]:
    reason = record.reason or ("MLX_PORTABLE=0: nothing is patched" if not enabled else "")
    return record.status, record.patch.summary, reason, record.error, record.patch.module


def patch_entries(records: Iterable[PatchRecord], enabled: bool) -> tuple[PatchEntry, ...]:
    """One entry per record; a patch not decided yet (``registry.lazy``) is decided when its entry is read."""
    from .registry.lazy import is_lazy

    return tuple(
        PatchEntry.later(r.lazy_name, lambda r=r: _fields_of(r))  # type: ignore[attr-defined,misc]
        if is_lazy(r)
        else PatchEntry(r.patch.name, *_fields_of(r, enabled))
        for r in records
    )


class ActivationReport(Record):
    """What mlx-portable found on this machine and what it changed."""

    __slots__ = ("active", "backend", "backend_forced", "details", "enabled", "patches", "probes", "versions")
    active: bool
    enabled: bool
    backend: str | None
    backend_forced: bool
    probes: tuple[ProbeResult, ...]
    versions: dict[str, str | None]
    patches: tuple[PatchEntry, ...]
    details: dict[str, Any]

    def __init__(
        self,
        active: bool,
        enabled: bool,
        backend: str | None,
        backend_forced: bool,
        probes: tuple[ProbeResult, ...],
        versions: dict[str, str | None],
        patches: tuple[PatchEntry, ...],
        details: dict[str, Any] | None = None,
    ) -> None:
        object.__setattr__(self, "active", active)
        object.__setattr__(self, "enabled", enabled)
        object.__setattr__(self, "backend", backend)
        object.__setattr__(self, "backend_forced", backend_forced)
        object.__setattr__(self, "probes", probes)
        object.__setattr__(self, "versions", versions)
        object.__setattr__(self, "patches", patches)
        object.__setattr__(self, "details", {} if details is None else details)

    def _with(self, status: str) -> list[PatchEntry]:
        return [p for p in self.patches if p.status == status]

    @property
    def applied(self) -> list[PatchEntry]:
        return self._with("applied")

    @property
    def skipped(self) -> list[PatchEntry]:
        return self._with("skipped")

    @property
    def failed(self) -> list[PatchEntry]:
        return self._with("failed")

    @property
    def deferred(self) -> list[PatchEntry]:
        return self._with("deferred")

    @property
    def obsolete(self) -> list[PatchEntry]:
        return self._with("obsolete")

    def patch(self, name: str) -> PatchEntry:
        """The entry of the patch ``name``; ``KeyError`` naming the known ones if there is none."""
        from .validation import require_str

        name = require_str(name, "report().patch(name=...)")
        for entry in self.patches:
            if entry.name == name:
                return entry
        known = ", ".join(sorted(p.name for p in self.patches)) or "none"
        raise KeyError(
            f"report().patch(name=...): no patch named {name[:80]!r}; the report has: {known[:600]}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict (schema in docs/activation.md)."""
        return {
            "schema": 1,
            "active": self.active,
            "enabled": self.enabled,
            "backend": self.backend,
            "backend_forced": self.backend_forced,
            "probes": [p.to_dict() for p in self.probes],
            "versions": dict(self.versions),
            "patches": [p.to_dict() for p in self.patches],
            "applied": [p.name for p in self.applied],
            "skipped": [p.name for p in self.skipped],
            "failed": [p.name for p in self.failed],
            "deferred": [p.name for p in self.deferred],
            "obsolete": [p.name for p in self.obsolete],
            "details": jsonable(self.details),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """Strict JSON (RFC 8259): a NaN or infinity among the details is written ``null``."""
        import json

        from .validation import require_int

        if indent is not None:
            indent = require_int(indent, "to_json(indent=...)", minimum=0, maximum=16)
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, allow_nan=False)

    def __str__(self) -> str:
        return render_text(self)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: mappings, sequences and sets become dicts and
    lists, objects with ``to_dict()`` are converted, NaN and infinities become ``None``,
    anything else is ``str()``."""
    import math

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity; null, as JavaScript's JSON.stringify writes them
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict())
    return str(value)


#: ``print(report)`` wraps each reason under itself to fit this many columns.
TEXT_WIDTH = 80


def _wrapped(head: str, text: str) -> list[str]:
    """``head`` + ``text``, the text wrapped under itself; long words (paths, commands) kept whole."""
    import textwrap

    room = max(TEXT_WIDTH - len(head), 30)
    body = textwrap.wrap(text, room, break_long_words=False, break_on_hyphens=False) or [""]
    return [head + body[0]] + [" " * len(head) + line for line in body[1:]]


def render_text(report: ActivationReport) -> str:
    """A plain-text rendering with aligned columns, at most :data:`TEXT_WIDTH` wide (reasons wrap)."""
    lines = [
        f"mlx-portable: backend {report.backend or '-'}" + (" (forced)" if report.backend_forced else "")
    ]
    if not report.enabled:
        lines.append("  disabled by MLX_PORTABLE=0: nothing was patched")
    lines.append("versions:")
    width = max((len(k) for k in report.versions), default=0)
    for key, value in report.versions.items():
        lines.append(f"  {key:<{width}}  {value or 'not installed'}")
    lines.append("probes:")
    for probe in report.probes:
        mark = "yes" if probe.available else "no "
        lines += _wrapped(f"  {probe.name:<6} {mark}  ", probe.reason)
    lines.append("patches:")
    nwidth = max((len(p.name) for p in report.patches), default=0)
    swidth = max((len(p.status) for p in report.patches), default=0)
    for entry in report.patches:
        why = entry.error or entry.reason
        lines += _wrapped(f"  {entry.name:<{nwidth}}  {entry.status:<{swidth}}  ", why)
    children = report.details.get("children")
    if isinstance(children, dict):  # activate(children=True)
        exported = " ".join(f"{k}={v}" for k, v in children.get("exported", {}).items())
        lines.append(
            f"children: {exported} exported; " + (children.get("warning") or "start-up hook installed")
        )
    return "\n".join(lines)
