"""The consumer check: every mlx use of a scanned consumer is here, shimmed, or documented.

Why: a consumer (mlx-lm, mlx-vlm) calling a name or keyword the running mlx
lacks fails at run time with an ``AttributeError`` or ``TypeError``; this
finds those uses before a user does.  It runs after ``mlx_portable.activate()``
(and imports ``mlx.nn`` so that patches waiting for it apply).
"""

from __future__ import annotations

from .consumers import load_consumers, scan_package
from .presence import present
from .statuses import IMPOSSIBLE, NOT_NEEDED, SHIMMED, status_of

__all__ = ["installed_consumers", "missing_here", "pending_shims"]


def installed_consumers() -> dict[str, list[str]]:
    """The checked-in record plus a live scan of the installed mlx-lm and mlx-vlm."""
    import importlib.metadata
    import importlib.util
    from pathlib import Path

    record = load_consumers()
    for package, dist in (("mlx_lm", "mlx-lm"), ("mlx_vlm", "mlx-vlm")):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        label = f"{dist} {importlib.metadata.version(dist)}"
        for name, kws in scan_package(Path(next(iter(spec.submodule_search_locations)))).items():
            for key in (name, *(f"{name}({kw})" for kw in kws)):
                users = record.setdefault(key, [])
                if label not in users:
                    users.append(label)
    return record


def missing_here(consumers: dict[str, list[str]] | None = None) -> list[tuple[str, str]]:
    """``(key, why)`` for each consumer use missing on this mlx and not accounted for.

    Accounted for: present after activation; listed as impossible or not
    needed; or listed as shimmed by a patch this build does not have yet
    (reported by :func:`pending_shims` instead).
    """
    import mlx_portable

    mlx_portable.activate()
    import mlx.nn  # noqa: F401  (patches that wait for mlx.nn apply now)

    record = consumers if consumers is not None else installed_consumers()
    registered = _registered_patches()
    problems: list[tuple[str, str]] = []
    for key, users in sorted(record.items()):
        if present(key) is not False:
            continue
        status = status_of(key, users)
        if status.status in (IMPOSSIBLE, NOT_NEEDED):
            continue
        if status.status == SHIMMED and status.detail not in registered:
            continue
        who = ", ".join(users)
        if status.status == SHIMMED:
            why = f"shimmed by {status.detail} per statuses.py, yet missing after activate()"
            problems.append((key, f"{why}; used by {who}"))
        else:
            problems.append((key, f"missing on this mlx and not classified in statuses.py; used by {who}"))
    return problems


def pending_shims(consumers: dict[str, list[str]] | None = None) -> list[tuple[str, str]]:
    """``(key, patch)`` for uses missing here whose patch is named in statuses.py but not registered."""
    record = consumers if consumers is not None else installed_consumers()
    registered = _registered_patches()
    pending: list[tuple[str, str]] = []
    for key, users in sorted(record.items()):
        status = status_of(key, users)
        if status.status == SHIMMED and status.detail not in registered and present(key) is False:
            pending.append((key, status.detail))
    return pending


def _registered_patches() -> set[str]:
    from mlx_portable.registry.builtin import builtin_patches

    return {p.name for p in builtin_patches()}
