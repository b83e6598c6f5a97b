"""The activation in a few lines: one summary line with counts, then the patches by group.

Shared by ``doctor`` (its first lines) and ``run --report`` (on stderr before
the target starts), so both say the same thing the same way.  Patches fall
into three groups a user acts on differently:

* *applied*: changed something in this process (``applied``);
* *waiting*: will be decided when the module it patches is imported
  (``deferred``, ``pending``); the text says which module and what then;
* *not needed*: left alone, with the reason (``obsolete``: this mlx has the
  feature; ``skipped``: not for this machine, or disabled).

A ``failed`` patch is a problem and is always listed.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "GROUPS",
    "group_patches",
    "name_list",
    "patch_counts",
    "run_report",
    "summary_line",
    "terminal_width",
    "waiting_text",
    "wrap",
]

#: Group name -> the patch statuses in it, in display order.
GROUPS: dict[str, tuple[str, ...]] = {
    "failed": ("failed",),
    "applied": ("applied",),
    "waiting": ("deferred", "pending"),
    "not needed": ("obsolete", "skipped"),
}

#: Text never wider than this, even on a wide terminal (readable, and fits an issue).
MAX_WIDTH = 100


def terminal_width(default: int = 80) -> int:
    """The terminal's width (``COLUMNS`` first), at most :data:`MAX_WIDTH`; 80 off a terminal."""
    width = shutil.get_terminal_size((default, 24)).columns
    return max(40, min(width, MAX_WIDTH))


def wrap(text: str, width: int, *, indent: str = "", subsequent: str | None = None) -> list[str]:
    """``text`` wrapped to ``width`` columns; long words (paths, commands) are not broken."""
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + "  " if subsequent is None else subsequent,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [indent.rstrip()]


def name_list(title: str, entries: Sequence[Mapping[str, Any]], width: int, lines: int = 3) -> list[str]:
    """``title: a, b, c`` wrapped to at most ``lines`` lines; the names past them are counted.

    An older mlx needs two dozen patches: listed whole they take five lines
    and push the report past one screen, so the tail becomes "and N more"
    (``doctor -v`` lists each).
    """
    names = [str(e["name"]) for e in entries]
    for shown in range(len(names), 0, -1):
        rest = len(names) - shown
        text = ", ".join(names[:shown]) + (f", and {rest} more (-v)" if rest else "")
        wrapped = wrap(f"{title}: {text}", width, indent="")
        if len(wrapped) <= lines:
            return wrapped
    return wrap(f"{title}: {len(names)} (-v: each)", width, indent="")


def group_patches(patches: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The report's patch entries by group (see :data:`GROUPS`), order kept."""
    groups: dict[str, list[Mapping[str, Any]]] = {name: [] for name in GROUPS}
    for entry in patches:
        status = str(entry.get("status", ""))
        name = next((g for g, statuses in GROUPS.items() if status in statuses), "not needed")
        groups[name].append(entry)
    return groups


def patch_counts(patches: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    return {name: len(entries) for name, entries in group_patches(patches).items()}


def waiting_text(entry: Mapping[str, Any]) -> str:
    """What happens to a waiting patch, in words."""
    module = entry.get("module")
    if not module:
        return str(entry.get("reason") or "waits to be applied")
    return f"when {module} is imported: applied then, if still needed"


def summary_line(data: Mapping[str, Any]) -> str:
    """``mlx-portable 0.1.0, mlx 0.30.0 on cpu: ok; 5 applied, 5 waiting, 8 not needed``.

    ``data`` is the doctor document or a report's ``to_dict()`` (plus
    ``status`` where known).
    """
    versions = data.get("versions") or {}
    head = f"mlx-portable {versions.get('mlx-portable') or '?'}, "
    head += f"mlx {versions.get('mlx')}" if versions.get("mlx") else "mlx not installed"
    backend = data.get("backend")
    if backend:  # "on cpu", not "cpu backend": the line fits 80 columns with the counts of mlx 0.26.5
        head += f" on {backend}" + (" (forced)" if data.get("backend_forced") else "")
    status = data.get("status")
    if status:
        head += ": " + {"ok": "ok", "warnings": "ok, with warnings"}.get(str(status), str(status))
    if not data.get("enabled", True):
        return head + "; MLX_PORTABLE=0: nothing patched"
    counts = patch_counts(data.get("patches") or [])
    shown = [f"{n} {group}" for group, n in counts.items() if n or group != "failed"]
    if not data.get("patches"):
        return head
    return head + "; " + ", ".join(shown)


def run_report(data: Mapping[str, Any], width: int | None = None) -> str:
    """``run --report``: the summary line, then the applied, waiting and failed patches by name."""
    width = terminal_width() if width is None else width
    lines = wrap(summary_line(data), width)
    groups = group_patches(data.get("patches") or [])
    if groups["failed"]:
        lines += wrap(
            "failed: "
            + ", ".join(f"{e['name']} ({e.get('error') or e.get('reason')})" for e in groups["failed"]),
            width,
            indent="  ",
        )
    if groups["applied"]:
        lines += wrap("applied: " + ", ".join(str(e["name"]) for e in groups["applied"]), width, indent="  ")
    if groups["waiting"]:
        names = ", ".join(str(e["name"]) for e in groups["waiting"])
        lines += wrap("waiting for an import: " + names, width, indent="  ")
    return "\n".join(lines) + "\n"
