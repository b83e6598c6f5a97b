"""``mlx-portable doctor``'s text and Markdown forms, from the document :func:`doctor.gather` returns.

The text leads with one summary line (status, versions, backend, patch
counts), fits the terminal (80 columns off a terminal; never wider than
:data:`summary.MAX_WIDTH`), and groups the patches as the user acts on them:
*applied*, *waiting for an import* (what will happen then), *not needed*
(collapsed to a count unless ``-v``).  A failed patch, a broken plugin and
every warning are listed under *findings*.

The Markdown form (``--markdown``) is for pasting into a bug report: the
same facts as tables, every patch with its reason in a collapsed block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..cpu_blas.status import blas_text
from .render import Style, format_bytes, format_mapping
from .summary import GROUPS, group_patches, name_list, summary_line, terminal_width, waiting_text, wrap

__all__ = ["render_markdown", "render_text"]

_SHOWN_ELSEWHERE = frozenset({"next_steps", "version_mismatch"})
_VERDICT = {"ok": ("ok", "green"), "warnings": ("ok, with warnings", "yellow")}


def _field(label: str, value: str, width: int, label_width: int = 13) -> list[str]:
    """``label   value`` with the value wrapped under itself."""
    lines = wrap(value, width - label_width, indent="", subsequent="")
    return [f"{label:<{label_width}}{lines[0]}".rstrip()] + [" " * label_width + line for line in lines[1:]]


def _patch_rows(
    entries: Sequence[Mapping[str, Any]], text: Callable[[Mapping[str, Any]], Any], width: int, *, full: bool
) -> list[str]:
    """One line per patch: ``  name  text``; ``full`` wraps the text, else it is cut to the width.

    Cut with ASCII ``...``: the report may go to a stream that cannot encode more.
    """
    if not entries:
        return []
    name_width = max(len(str(e["name"])) for e in entries) + 4
    out: list[str] = []
    for entry in entries:
        body = str(text(entry))
        head = f"  {entry['name']!s:<{name_width - 2}}"
        room = width - len(head)
        if full or len(body) <= room:
            lines = wrap(body, width - name_width, indent="", subsequent="")
            out.append(head + lines[0])
            out += [" " * name_width + line for line in lines[1:]]
        else:
            out.append(head + _cut(body, max(room - 3, 10)) + "...")
    return out


def _cut(text: str, room: int) -> str:
    """``text`` cut to at most ``room`` characters at a word's end (mid-word only for one long word)."""
    cut = text[: room + 1]
    end = cut.rfind(" ")
    return (cut[:end] if end > room // 2 else text[:room]).rstrip(" ,;:(")


def _reason(entry: Mapping[str, Any]) -> str:
    return str(entry.get("error") or entry.get("reason") or entry.get("summary") or "")


def _packages(versions: Mapping[str, Any]) -> str:
    shown = [f"{k} {v}" for k, v in versions.items() if k not in ("python", "mlx-portable") and v]
    missing = [k for k, v in versions.items() if v is None]
    return ", ".join(shown + [f"{k} not installed" for k in missing]) or "-"


def _device_text(device: Mapping[str, Any] | None) -> str:
    if not device:
        return ""
    if device.get("error"):
        return f"unknown ({device['error']})"
    parts = [str(device[k]) for k in ("device_name", "architecture") if device.get(k)]
    if device.get("memory_size") is not None:
        parts.append(format_bytes(device["memory_size"]))
    if device.get("compute_capability"):
        parts.append("compute " + ".".join(str(x) for x in device["compute_capability"]))
    return ", ".join(parts)


def _findings(data: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Problems and warnings not already shown in their own place (a variable's, under environment)."""
    shown = {data["mlx_error"], data["activation_error"]}
    shown |= {e["warning"] for e in data["environment"] if e.get("warning")}
    return (
        [p for p in data["problems"] if p not in shown],
        [w for w in data["warnings"] if w not in shown],
    )


#: The plain report's goal on a machine without problems: one screen (every mlx of the matrix).
MAX_LINES = 25


def render_text(
    data: Mapping[str, Any], style: Style | None = None, *, verbose: bool = False, width: int | None = None
) -> str:
    """The doctor report as text: summary first, at most ``width`` columns (the terminal's).

    Without ``-v`` it aims at :data:`MAX_LINES`: each applied patch gets a
    line with what it does while that fits; on an old mlx (a dozen applied)
    they are one wrapped list of names instead (``-v``: each with its reason).
    """
    text = _render_text(data, style, verbose=verbose, width=width, compact=False)
    if not verbose and text.count("\n") > MAX_LINES:
        text = _render_text(data, style, verbose=verbose, width=width, compact=True)
    return text


def _render_text(
    data: Mapping[str, Any], style: Style | None, *, verbose: bool, width: int | None, compact: bool
) -> str:
    s = style or Style(False)
    width = terminal_width() if width is None else width
    status = str(data["status"])
    verdict, colour = _VERDICT.get(status, (status, "red"))
    out = [s("mlx-portable doctor: ", "bold") + s(verdict, colour, "bold")]
    out += wrap(summary_line({**data, "status": None}), width)

    plat = data["platform"]
    libc = f", {plat['libc']}" if plat.get("libc") else ""
    out.append("")
    out += _field("platform", f"{plat['system']} {plat['release']} {plat['machine']}{libc}", width)
    out += _field("python", f"{plat['python']} ({plat['implementation']}) {plat['executable']}", width)
    out += _field("packages", _packages(data["versions"]), width)
    if data["version_mismatch"]:
        for line in _mismatch_text(data["version_mismatch"]).splitlines():
            out += wrap(s("! " + line, "yellow"), width, indent="  ", subsequent="    ")

    no_env = _field("environment", s("no MLX_* or MLX_PORTABLE_* variable is set", "dim"), width)
    if data["mlx_error"] is not None:
        out += no_env if not data["environment"] else []
        out += ["", s("mlx cannot be used", "red", "bold"), *wrap(data["mlx_error"], width, indent="  ")]
    else:
        out += _backend_lines(data, s, width, verbose)
        if data.get("blas"):
            out += _field("blas", blas_text(data["blas"], s), width)
        out += no_env if not data["environment"] else []
        out += _patch_lines(data, s, width, verbose, compact)

    if data["cuda"] is not None:
        out += ["", s("cuda", "bold")]
        cuda = data["cuda"]
        if isinstance(cuda, dict):
            mapping = {k: v for k, v in cuda.items() if k not in _SHOWN_ELSEWHERE}
            out += [line for raw in format_mapping(mapping) for line in _wrap_raw(raw, width)]
        else:
            out.append("  " + str(cuda))

    if data["environment"]:
        out += ["", s("environment", "bold")]
        for e in data["environment"]:
            set_by = f" (set by mlx-portable: {e['set_by']})" if e.get("set_by") else ""
            out += wrap(f"{e['name']}={e['value']}  {e['scope']}: {e['meaning']}{set_by}", width, indent="  ")
            if e["warning"]:
                out += wrap(s("! " + e["warning"], "yellow"), width, indent="    ")

    if data["details"] and verbose:
        out += ["", s("details", "bold")]
        out += [line for raw in format_mapping(data["details"]) for line in _wrap_raw(raw, width)]

    problems, warnings = _findings(data)
    if problems or warnings:
        out += ["", s("findings", "bold")]
        for text in problems:
            out += wrap(s("problem: ", "red", "bold") + text, width, indent="  ", subsequent="    ")
        for text in warnings:
            out += wrap(s("warning: ", "yellow") + text, width, indent="  ", subsequent="    ")

    steps = _text_steps(data)
    if len(steps) == 1:
        out += ["", *wrap(s("next step: ", "bold") + steps[0], width, indent="")]
    else:
        out += ["", s("next steps", "bold")]
        for i, step in enumerate(steps, 1):
            out += wrap(f"{i}. {step}", width, indent="  ", subsequent="     ")
    return "\n".join(out) + "\n"


def _text_steps(data: Mapping[str, Any]) -> list[str]:
    """The next steps, each said once: a step that repeats what the report shows above points at it.

    The JSON and Markdown keep the full sentences; the text already showed a
    bad setting at ``backend`` and a variable's warning under ``environment``.
    """
    error = data["activation_error"]
    warned = {str(e["warning"]): str(e["name"]) for e in data["environment"] if e.get("warning")}
    steps: list[str] = []
    for step in data["next_steps"]:
        if error is not None and step == f"fix the setting: {error}":
            steps.append("fix the setting named at 'backend' above, or unset it")
        elif step in warned:
            steps.append(f"fix or unset {warned[step]} (see environment above)")
        else:
            steps.append(step)
    return list(dict.fromkeys(steps))


def _wrap_raw(line: str, width: int) -> list[str]:
    """A pre-formatted ``  key  value`` line, wrapped under its value when too long."""
    if len(line) <= width:
        return [line]
    stripped = line.lstrip()
    indent = len(line) - len(stripped)
    key, sep, value = stripped.partition("  ")
    if not sep:
        return wrap(stripped, width, indent=" " * indent)
    column = indent + len(key) + 2 + (len(value) - len(value.lstrip()))
    body = wrap(value.strip(), max(width - column, 20), indent="", subsequent="")
    return [line[:column] + body[0]] + [" " * column + b for b in body[1:]]


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


def _backend_lines(data: Mapping[str, Any], s: Style, width: int, verbose: bool) -> list[str]:
    out: list[str] = []
    if data["activation_error"] is not None:
        out += _field("backend", s("none", "red", "bold") + ": " + data["activation_error"], width)
    else:
        how = "forced by MLX_PORTABLE_BACKEND" if data["backend_forced"] else "chosen automatically"
        device = _device_text(data["device"])
        text = s(str(data["backend"]), "green", "bold") + f" ({how})" + (f": {device}" if device else "")
        out += _field("backend", text, width)
        if not data["enabled"]:
            out.append("  " + s("MLX_PORTABLE=0: nothing is patched", "yellow"))
    probes = data["probes"]
    if verbose:
        for probe in probes:
            mark = "yes" if probe.get("available") else "no"
            out += _field(
                "probes" if probe is probes[0] else "", f"{probe['name']} {mark}: {probe['reason']}", width
            )
    else:
        marks = ", ".join(f"{p['name']} {'yes' if p.get('available') else 'no'}" for p in probes)
        out += _field("probes", marks + " (-v: why)", width)
    return out


def _patch_lines(
    data: Mapping[str, Any], s: Style, width: int, verbose: bool, compact: bool = False
) -> list[str]:
    groups = group_patches(data["patches"])
    if not data["patches"]:
        return ["", s("no patch is registered", "dim")]
    out: list[str] = []
    if groups["failed"]:
        out += ["", s(f"failed ({len(groups['failed'])})", "red", "bold")]
        out += _patch_rows(groups["failed"], _reason, width, full=True)
    applied = groups["applied"]
    if applied and compact:
        out += ["", *name_list(s(f"applied ({len(applied)})", "bold"), applied, width)]
    elif applied:
        out += ["", s(f"applied ({len(applied)})", "bold")]
        out += _patch_rows(applied, lambda e: e.get("reason") or e["summary"], width, full=verbose)
    else:
        out += ["", s("applied (0)", "bold") + s(": none needed here so far", "dim")]
    waiting, not_needed = groups["waiting"], groups["not needed"]
    if verbose:
        if waiting:
            out += [
                "",
                s(f"waiting for an import ({len(waiting)})", "bold") + ": each applies then, if needed",
            ]
            out += _patch_rows(waiting, _waiting_with_summary, width, full=True)
        if not_needed:
            out += ["", s(f"not needed ({len(not_needed)})", "bold")]
            out += _patch_rows(not_needed, lambda e: f"{e['status']}: {_reason(e)}", width, full=True)
    elif waiting or not_needed:
        # One line for both: which module each waits for, what it does, and why
        # the others are not needed is detail (-v); the plain report fits a
        # terminal and an issue on every mlx.
        parts = [f"{len(waiting)} waiting for an import"] if waiting else []
        parts += [f"{len(not_needed)} not needed"] if not_needed else []
        out += ["", *wrap(" and ".join(parts) + s(" (doctor -v: each, and why)", "dim"), width, indent="")]
    return out


def _waiting_with_summary(entry: Mapping[str, Any]) -> str:
    """What a waiting patch will do, then when: ``-v`` shows both."""
    summary = str(entry.get("summary") or "").rstrip(".")
    when = waiting_text(entry)
    return f"{summary}; {when}" if summary else when


# -- Markdown ------------------------------------------------------------------


def _cell(text: Any) -> str:
    return str(text if text is not None else "-").replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def render_markdown(data: Mapping[str, Any]) -> str:
    """The report as Markdown for a bug report: facts as tables, the patches collapsed."""
    plat = data["platform"]
    out = ["### mlx-portable doctor", "", f"**{summary_line(data)}**", ""]
    rows: list[list[Any]] = [
        [
            "platform",
            f"{plat['system']} {plat['release']} {plat['machine']}"
            + (f", {plat['libc']}" if plat.get("libc") else ""),
        ],
        ["python", f"{plat['python']} ({plat['implementation']})"],
    ]
    rows += [[f"`{k}`", v if v else "not installed"] for k, v in data["versions"].items() if k != "python"]
    if data["mlx_error"] is None:
        how = "forced by MLX_PORTABLE_BACKEND" if data["backend_forced"] else "chosen automatically"
        rows.append(["backend", f"{data['backend'] or 'none'} ({how})"])
        if data["device"]:
            rows.append(["device", _device_text(data["device"])])
        if data.get("blas"):
            rows.append(["blas", blas_text(data["blas"], Style(False))])
        rows += [
            [f"probe {p['name']}", ("yes: " if p.get("available") else "no: ") + str(p["reason"])]
            for p in data["probes"]
        ]
    out += _table(["", ""], rows)
    problems, warnings = _findings(data)
    for title, items in (
        ("mlx cannot be used", [data["mlx_error"]] if data["mlx_error"] else []),
        ("activation failed", [data["activation_error"]] if data["activation_error"] else []),
        ("problems", problems),
        ("warnings", warnings),
    ):
        if items:
            out += ["", f"**{title}**", ""] + [f"- {item}" for item in items]
    if data["patches"]:
        groups = group_patches(data["patches"])
        counts = ", ".join(f"{len(v)} {k}" for k, v in groups.items() if v)
        out += ["", f"<details><summary>patches: {counts}</summary>", ""]
        out += _table(
            ["patch", "status", "reason"],
            [
                [
                    f"`{e['name']}`",
                    e["status"],
                    waiting_text(e) if e["status"] in GROUPS["waiting"] else _reason(e),
                ]
                for e in data["patches"]
            ],
        )
        out += ["", "</details>"]
    if data["environment"]:
        out += ["", "**environment**", ""]
        out += _table(
            ["variable", "value", "read by"],
            [[f"`{e['name']}`", f"`{e['value']}`", e["scope"]] for e in data["environment"]],
        )
    if data["cuda"] is not None:
        import json

        out += [
            "",
            "<details><summary>cuda</summary>",
            "",
            "```json",
            json.dumps(data["cuda"], indent=1),
            "```",
            "",
            "</details>",
        ]
    out += ["", "**next steps**", ""] + [f"{i}. {step}" for i, step in enumerate(data["next_steps"], 1)]
    return "\n".join(out) + "\n"
