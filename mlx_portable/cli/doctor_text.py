"""The ``mlx-portable doctor`` report as aligned text (the data comes from :mod:`.doctor`)."""

from __future__ import annotations

from typing import Any

from .render import Style, format_bytes, format_mapping, format_table

__all__ = ["render_text"]


def _mismatch_text(mismatch: Any) -> str:
    """The mismatch as text: ``versions.backend_package_mismatch()`` returns the message itself."""
    if isinstance(mismatch, str):
        return mismatch
    if isinstance(mismatch, dict):
        for key in ("message", "reason", "warning"):
            if isinstance(mismatch.get(key), str):
                return str(mismatch[key])
        return "mlx and its backend package are at different versions: " + ", ".join(
            f"{k}={v}" for k, v in mismatch.items() if not isinstance(v, (dict, list))
        )
    return f"mlx and its backend package are at different versions: {mismatch}"


# -- text ---------------------------------------------------------------------

_SHOWN_ELSEWHERE = frozenset({"next_steps", "version_mismatch"})

_STATUS_STYLE = {
    "applied": ("green",),
    "failed": ("red", "bold"),
    "deferred": ("cyan",),
    "skipped": ("dim",),
    "obsolete": ("dim",),
}


def _heading(style: Style, text: str) -> str:
    # A blank line before each section keeps the report readable at a glance.
    return "\n" + style(text, "bold")


def render_text(data: dict[str, Any], style: Style | None = None, *, verbose: bool = False) -> str:
    """The doctor report as aligned text (colour only if ``style`` is enabled).

    ``verbose`` adds the report's ``details`` (facts the patches attached;
    always in the JSON).
    """
    s = style or Style(False)
    out: list[str] = [s("mlx-portable doctor", "bold")]

    plat = data["platform"]
    libc = f", {plat['libc']}" if plat.get("libc") else ""
    out.append(_heading(s, "platform"))
    out += format_table(
        [
            ["system", f"{plat['system']} {plat['release']} {plat['machine']}{libc}"],
            ["python", f"{plat['python']} ({plat['implementation']}) {plat['executable']}"],
        ]
    )

    out.append(_heading(s, "versions"))
    out += format_table([[k, v or s("not installed", "dim")] for k, v in data["versions"].items()])
    if data["version_mismatch"]:
        out += [
            "  " + s("! " + line, "yellow") for line in _mismatch_text(data["version_mismatch"]).splitlines()
        ]
        mm = data["version_mismatch"]
        if isinstance(mm, dict):
            out += format_mapping(mm, indent=4)

    if data["mlx_error"] is not None:
        out += [_heading(s, s("mlx cannot be used", "red")), "  " + data["mlx_error"]]
    else:
        out += _render_backend(data, s)

    if data["cuda"] is not None:
        out.append(_heading(s, "cuda"))
        if isinstance(data["cuda"], dict):
            # Its next steps and version check are shown in their own places.
            out += format_mapping({k: v for k, v in data["cuda"].items() if k not in _SHOWN_ELSEWHERE})
        else:
            out.append("  " + str(data["cuda"]))

    out.append(_heading(s, "environment"))
    if data["environment"]:
        rows = [
            [
                f"{e['name']}={e['value']}",
                e["scope"],
                e["meaning"] + (f" (set by mlx-portable: {e['set_by']})" if e.get("set_by") else ""),
            ]
            for e in data["environment"]
        ]
        out += format_table(rows)
        out += ["  " + s("! " + e["warning"], "yellow") for e in data["environment"] if e["warning"]]
    else:
        out.append("  " + s("no MLX_* or MLX_PORTABLE_* variable is set", "dim"))

    if data["details"] and verbose:
        out.append(_heading(s, "details"))
        out += format_mapping(data["details"])

    # Findings not already shown in their own section.
    shown = {e["warning"] for e in data["environment"]} | {data["mlx_error"], data["activation_error"]}
    other_warnings = [w for w in data["warnings"] if w not in shown]
    other_problems = [p for p in data["problems"] if p not in shown]
    if other_problems or other_warnings:
        out.append(_heading(s, "findings"))
        out += ["  " + s("problem: ", "red", "bold") + p for p in other_problems]
        out += ["  " + s("warning: ", "yellow") + w for w in other_warnings]

    out.append(_heading(s, "next steps"))
    out += [f"  {i}. {step}" for i, step in enumerate(data["next_steps"], 1)]
    verdict = {"ok": ("ok", "green"), "warnings": ("ok, with warnings", "yellow")}.get(
        data["status"], (data["status"], "red")
    )
    out += ["", "status: " + s(verdict[0], verdict[1], "bold")]
    return "\n".join(out) + "\n"


def _render_backend(data: dict[str, Any], s: Style) -> list[str]:
    out: list[str] = []
    backend = data["backend"]
    how = "forced by MLX_PORTABLE_BACKEND" if data["backend_forced"] else "chosen automatically"
    if data["activation_error"] is not None:
        out += [_heading(s, "backend: ") + s("none", "red", "bold"), "  " + data["activation_error"]]
    else:
        out.append(_heading(s, "backend: ") + s(str(backend), "green", "bold") + f"  ({how})")
        if not data["enabled"]:
            out.append("  " + s("MLX_PORTABLE=0: nothing is patched", "yellow"))
    device = data["device"]
    if device:
        rows: list[list[str]] = []
        if device.get("error"):
            rows.append(["device", s(f"unknown ({device['error']})", "yellow")])
        for key, label in (("device_name", "device"), ("architecture", "architecture")):
            if device.get(key):
                rows.append([label, str(device[key])])
        for key, label in (
            ("memory_size", "memory"),
            ("recommended_working_set", "working set"),
            ("free_memory", "free memory"),
        ):
            if device.get(key) is not None:
                rows.append([label, format_bytes(device[key])])
        if device.get("compute_capability"):
            rows.append(["compute capability", ".".join(str(x) for x in device["compute_capability"])])
        out += format_table(rows)

    out.append(_heading(s, "probes"))
    rows = []
    for probe in data["probes"]:
        mark = s("yes", "green") if probe.get("available") else s("no", "dim")
        rows.append([str(probe.get("name")), mark, str(probe.get("reason", ""))])
    out += format_table(rows)

    out.append(_heading(s, "patches"))
    if not data["patches"]:
        out.append("  " + s("no patch is registered", "dim"))
    rows = []
    for entry in data["patches"]:
        status = str(entry.get("status", ""))
        why = entry.get("error") or entry.get("reason") or ""
        rows.append([str(entry.get("name")), s(status, *_STATUS_STYLE.get(status, ())), str(why)])
    out += format_table(rows)
    return out
