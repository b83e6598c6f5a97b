"""``doctor``'s answers beyond the facts: patches activation never reached, how to run mlx-lm patched."""

from __future__ import annotations

from typing import Any

__all__ = ["mlx_lm_step", "undecided"]


def undecided(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The built-in patches a failed ``activate()`` never reached, as "skipped" entries.

    Without them a bad setting (``MLX_PORTABLE_BACKEND=banana``) showed 19
    patches instead of every one: the counts must not depend on the setting.
    """
    from ..activation_report import PatchEntry
    from ..registry.builtin import builtin_patches

    known = {str(e["name"]) for e in entries}
    reason = "not decided: activate() stopped at the setting above"
    return [
        PatchEntry(p.name, "skipped", p.summary, reason, module=p.module).to_dict()
        for p in builtin_patches()
        if p.name not in known
    ]


def mlx_lm_step(data: dict[str, Any]) -> str | None:
    """How to run mlx-lm with the patches, when it has any here and nothing turns them on by itself.

    ``doctor`` activates mlx-portable in its own process; a plain
    ``python -m mlx_lm generate`` does not, and on an mlx older than the
    installed mlx-lm expects it fails (mlx-lm 0.32.2 on mlx 0.30.0: no
    ``mx.new_thread_local_stream``).  "ok" alone would hide that.
    """
    import os

    if not data["versions"].get("mlx-lm") or data["activation_error"] is not None or not data["enabled"]:
        return None
    if os.environ.get("MLX_PORTABLE_AUTOACTIVATE", "").strip().lower() in ("1", "true", "yes", "on"):
        return None
    applied = [e for e in data["patches"] if e.get("status") == "applied"]
    for_mlx_lm = [
        e
        for e in data["patches"]
        if e.get("status") in ("deferred", "pending") and str(e.get("module") or "").startswith("mlx_lm")
    ]
    if not applied and not for_mlx_lm:
        return None
    return (
        "to run mlx-lm patched: mlx-portable run -m mlx_lm generate ..., "
        "or MLX_PORTABLE_AUTOACTIVATE=1, or import mlx_portable first"
    )
