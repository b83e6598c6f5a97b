"""``mlx-portable doctor``: what is installed, what was chosen, what was patched, what to do.

Gathering (:func:`gather`) returns plain data, the JSON document whose schema
docs/cli.md describes; :func:`render_text` turns it into the aligned text
report.  Every section is gathered on its own: one that fails says so in its
place instead of hiding the rest.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from typing import Any

from ..activation_report import jsonable
from .environment import variables_in_effect
from .loading import EXIT_CANNOT_RUN, mlx_load_problem, optional_function
from .render import Style, format_bytes, format_mapping, format_table

__all__ = ["DOCTOR_SCHEMA", "EXIT_OK", "EXIT_PROBLEMS", "exit_status", "gather", "render_text"]

#: Version of the ``doctor --json`` document (docs/cli.md); bumped on any
#: change that removes or retypes a key.
DOCTOR_SCHEMA = 1

EXIT_OK = 0
EXIT_PROBLEMS = 1

#: Distributions whose versions doctor lists even when mlx cannot load.
_DISTRIBUTIONS = ("mlx", "mlx-metal", "mlx-cuda-13", "mlx-cuda-12", "mlx-cuda", "mlx-cpu", "mlx-lm")


def _platform() -> dict[str, Any]:
    libc = platform.libc_ver()
    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "libc": f"{libc[0]} {libc[1]}".strip() or None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
    }


def _installed_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    found: dict[str, str | None] = {"python": platform.python_version(), "mlx-portable": __version__}
    for dist in _DISTRIBUTIONS:
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            if dist in ("mlx", "mlx-lm"):
                found[dist] = None
    return found


def _call_optional(module: str, name: str) -> tuple[Any, str | None]:
    """Call ``mlx_portable.<module>.<name>()``; ``(result, error)``."""
    fn, error = optional_function(module, name)
    if fn is None:
        return None, error
    try:
        return fn(), None
    except Exception as exc:  # doctor shows the failure in place
        return None, f"{type(exc).__name__}: {exc}"


def _cuda_applies(data: dict[str, Any]) -> bool:
    if sys.platform != "linux":
        return False
    if data.get("backend") == "cuda" or any(k.startswith("mlx-cuda") for k in data.get("versions") or {}):
        return True
    from ..install_hint import nvidia_driver_version

    return nvidia_driver_version() is not None


def _empty(platform_info: dict[str, Any], versions: dict[str, str | None]) -> dict[str, Any]:
    return {
        "schema": DOCTOR_SCHEMA,
        "status": "ok",
        "platform": platform_info,
        "versions": versions,
        "version_mismatch": None,
        "mlx_error": None,
        "activation_error": None,
        "active": False,
        "enabled": True,
        "backend": None,
        "backend_forced": False,
        "device": None,
        "probes": [],
        "patches": [],
        "cuda": None,
        "environment": [],
        "details": {},
        "warnings": [],
        "problems": [],
        "next_steps": [],
    }


def gather(*, activate: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Everything doctor knows, as the JSON document (see docs/cli.md)."""
    data = _empty(_platform(), _installed_versions())
    problem = mlx_load_problem()
    if problem is not None:
        data["mlx_error"] = problem
        data["problems"].append(problem)
        data["environment"] = [e.to_dict() for e in variables_in_effect(None)]
        data["status"] = "error"
        data["next_steps"] = _next_steps(data)
        return data

    import mlx_portable

    from ..errors import MlxPortableError

    try:
        (activate or mlx_portable.activate)()
    except (MlxPortableError, ValueError) as exc:
        data["activation_error"] = str(exc)
        data["problems"].append(str(exc))
    report = mlx_portable.report().to_dict()
    for key in ("active", "enabled", "backend", "backend_forced", "versions", "patches", "details"):
        data[key] = report.get(key, data[key])
    data["probes"] = report.get("probes") or [p.to_dict() for p in mlx_portable.probe_all()]
    if data["activation_error"] is not None:
        data["backend"] = None

    data["device"] = _device(data["backend"])
    mismatch, error = _call_optional("versions", "backend_package_mismatch")
    data["version_mismatch"] = jsonable(mismatch) if mismatch else None
    if error:
        data["warnings"].append(f"the mlx version check failed: {error}")
    elif mismatch:
        data["problems"].extend(_mismatch_text(data["version_mismatch"]).splitlines())

    if _cuda_applies(data):
        status, error = _call_optional("cuda.runtime", "cuda_status")
        data["cuda"] = jsonable(status) if status is not None else ({"error": error} if error else None)

    data["environment"] = [
        e.to_dict() for e in variables_in_effect(data["backend"], set_by=_env_set_by_patches())
    ]
    data["warnings"].extend(e["warning"] for e in data["environment"] if e["warning"])
    for entry in data["patches"]:
        if entry.get("status") == "failed":
            data["problems"].append(
                f"patch {entry['name']} failed: {entry.get('error') or entry.get('reason')}"
            )
    if not data["enabled"]:
        data["warnings"].append("MLX_PORTABLE=0: mlx-portable patches nothing in this environment")

    if data["activation_error"] is not None:
        data["status"] = "error"
    elif data["problems"]:
        data["status"] = "problems"
    elif data["warnings"]:
        data["status"] = "warnings"
    data["next_steps"] = _next_steps(data)
    return data


def _env_set_by_patches() -> dict[str, str]:
    """Variables that applied patches set (``ctx.set_env``): name -> patch name."""
    from ..patches.registry import registry

    found: dict[str, str] = {}
    for record in registry.records():
        if record.status != "applied":
            continue
        for change in getattr(record, "changes", ()):
            if len(change) >= 3 and change[0] == "env":
                found[str(change[2])] = record.patch.name
    return found


def _device(backend: str | None) -> dict[str, Any] | None:
    if backend is None:
        return None
    from ..backends import all_backends

    for candidate in all_backends():
        if candidate.name == backend:
            try:
                info: dict[str, Any] = candidate.device_info().to_dict()
            except Exception as exc:  # shown in place of the device facts
                return {"backend": backend, "error": f"{type(exc).__name__}: {exc}"}
            return jsonable(info)  # type: ignore[no-any-return]
    return None


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


def _mismatch_command(mismatch: Any) -> str | None:
    if isinstance(mismatch, dict):
        for key in ("command", "fix", "install_command", "remedy"):
            if isinstance(mismatch.get(key), str):
                return str(mismatch[key])
    return None


def _cuda_steps(cuda: Any) -> list[str]:
    """Steps the CUDA status suggests (its own ``next_steps``/``remedies``, if any)."""
    if not isinstance(cuda, dict):
        return []
    steps: list[str] = []
    for key in ("next_steps", "remedies", "remedy", "fix"):
        value = cuda.get(key)
        if isinstance(value, str) and value:
            steps.append(value)
        elif isinstance(value, list):
            steps.extend(str(v) for v in value if v)
    return steps


def _next_steps(data: dict[str, Any]) -> list[str]:
    from ..install_hint import install_command

    steps: list[str] = []
    if data["mlx_error"] is not None:
        # mlx and its backend package at different versions: pin both to mlx's.
        pin = data["versions"].get("mlx") if "different versions" in data["mlx_error"] else None
        steps.append(f"install mlx: {install_command(pin)}")
        return steps
    if data["activation_error"] is not None:
        steps.append(f"fix the setting: {data['activation_error']}")
    mismatch = data["version_mismatch"]
    if isinstance(mismatch, str):
        steps.extend(mismatch.splitlines())  # each line ends with its own fix command
    elif mismatch:
        command = _mismatch_command(mismatch) or install_command(data["versions"].get("mlx"))
        steps.append(f"pin mlx and its backend package to the same version: {command}")
    for entry in data["patches"]:
        if entry.get("status") == "failed":
            steps.append(
                f"patch {entry['name']} failed; report it with this output, and meanwhile set "
                f"MLX_PORTABLE_DISABLE={entry['name']} to leave it out"
            )
    cuda_steps = _cuda_steps(data["cuda"])
    steps.extend(cuda_steps)
    backend = data["backend"]
    if backend == "cpu" and not data["backend_forced"] and not cuda_steps:
        steps.extend(_gpu_steps(data["probes"]))
    for env in data["environment"]:
        if env["warning"] and env["scope"] == "mlx-portable":
            steps.append(str(env["warning"]))  # names the variable it is likely a typo of
        elif env["warning"]:
            steps.append(f"unset {env['name']} here: the {backend} backend does not read it")
    if data["versions"].get("mlx-lm") is None:
        steps.append("to run language models: pip install mlx-lm")
    if data["activation_error"] is None:
        steps.append("prove the backend computes correctly: mlx-portable check")
    return list(dict.fromkeys(steps))  # the CUDA status repeats some (the version mismatch)


def _gpu_steps(probes: list[dict[str, Any]]) -> list[str]:
    """On the CPU backend: how to get the GPU this machine has (if it has one)."""
    from ..install_hint import nvidia_driver_version

    wanted = None
    if sys.platform == "darwin":
        wanted = "metal"
    elif sys.platform == "linux" and nvidia_driver_version() is not None:
        wanted = "cuda"
    for probe in probes:
        if probe.get("name") == wanted and not probe.get("available") and probe.get("remedy"):
            return [f"use the {wanted.upper() if wanted == 'cuda' else 'Metal'} GPU: {probe['remedy']}"]
    return []


def exit_status(data: dict[str, Any]) -> int:
    """0 fine (warnings allowed), 1 problems found, 2 mlx cannot be used."""
    if data["status"] == "error":
        return EXIT_CANNOT_RUN
    return EXIT_PROBLEMS if data["status"] == "problems" else EXIT_OK


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
