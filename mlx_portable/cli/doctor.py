"""``mlx-portable doctor``: what is installed, what was chosen, what was patched, what to do.

Gathering (:func:`gather`) returns plain data, the JSON document whose schema
docs/cli.md describes; :func:`render_text` turns it into the aligned text
report.  Every section is gathered on its own: one that fails says so in its
place instead of hiding the rest.
"""

from __future__ import annotations

import platform
import sys
import warnings
from collections.abc import Callable
from typing import Any

from ..activation_report import jsonable
from .doctor_text import _mismatch_text, render_markdown, render_text
from .environment import variables_in_effect
from .links import ISSUES_URL
from .loading import EXIT_CANNOT_RUN, mlx_load_problem, optional_function

__all__ = [
    "DOCTOR_SCHEMA",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "exit_status",
    "gather",
    "render_markdown",
    "render_text",
]

#: Version of the ``doctor --json`` document (docs/cli.md); bumped on any
#: change that removes or retypes a key.
DOCTOR_SCHEMA = 1

EXIT_OK = 0
EXIT_PROBLEMS = 1

#: Distributions whose versions doctor lists even when mlx cannot load.


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
    from .. import __version__
    from ..backend_table import backend_distributions
    from ..versions import installed_version

    found: dict[str, str | None] = {"python": platform.python_version(), "mlx-portable": __version__}
    for dist in ("mlx", *backend_distributions(), "mlx-lm"):
        v = installed_version(dist)
        if v is not None or dist in ("mlx", "mlx-lm"):
            found[dist] = v
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
        "blas": None,
        "environment": [],
        "details": {},
        "warnings": [],
        "problems": [],
        "next_steps": [],
    }


def gather(*, activate: Callable[[], Any] | None = None, imports: bool = False) -> dict[str, Any]:
    """Everything doctor knows, as the JSON document (see docs/cli.md).

    ``imports`` (``doctor --imports``) also imports the modules that waiting
    patches wait for, so that each shows what it does there (slower:
    ``mlx_lm.generate`` takes seconds to import).
    """
    data = _empty(_platform(), _installed_versions())
    # Read from the installed packages' metadata, so it is known even when mlx cannot load.
    mismatch, mismatch_error = _call_optional("versions", "backend_package_mismatch")
    data["version_mismatch"] = jsonable(mismatch) if mismatch else None
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

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            (activate or mlx_portable.activate)()
        except (MlxPortableError, ValueError) as exc:
            data["activation_error"] = str(exc)
            data["problems"].append(str(exc))
        if imports and data["activation_error"] is None:
            _import_waited_for(mlx_portable.report().to_dict()["patches"], data["warnings"])
    report = mlx_portable.report().to_dict()
    for key in ("active", "enabled", "backend", "backend_forced", "versions", "patches", "details"):
        data[key] = report.get(key, data[key])
    data["probes"] = report.get("probes") or [p.to_dict() for p in mlx_portable.probe_all()]
    if data["activation_error"] is not None:
        data["backend"] = None

    data["device"] = _device(data["backend"])
    _add_activation_warnings(data, [str(w.message) for w in caught])
    if mismatch_error:
        data["warnings"].append(f"the mlx version check failed: {mismatch_error}")
    elif mismatch:
        data["problems"].extend(_mismatch_text(data["version_mismatch"]).splitlines())

    if data["activation_error"] is None:
        data["blas"] = _blas(data)

    if _cuda_applies(data):
        status, error = _call_optional("cuda", "cuda_status")
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


def _blas(data: dict[str, Any]) -> dict[str, Any]:
    """Which BLAS mlx's CPU backend calls, and the fix when it is the reference one."""
    try:
        from .. import _mlx
        from ..cpu_blas.status import blas_status

        entry: dict[str, Any] = next((e for e in data["patches"] if e.get("name") == "cpu_blas"), {})
        disabled = not data["enabled"] or "MLX_PORTABLE_DISABLE" in str(entry.get("reason") or "")
        return blas_status(_mlx.core(), data["details"].get("cpu_blas"), disabled)
    except Exception as exc:  # doctor shows the failure in place
        return {"state": "unknown", "reason": f"{type(exc).__name__}: {exc}", "fix": None}


def _import_waited_for(patches: list[dict[str, Any]], warnings_out: list[str]) -> None:
    """Import each module a waiting patch waits for; the post-import hooks then decide the patch."""
    import importlib
    import importlib.util

    for module in dict.fromkeys(str(e["module"]) for e in patches if e.get("status") == "deferred"):
        try:
            if importlib.util.find_spec(module) is None:
                continue  # not installed: the patch keeps waiting, harmlessly
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
                continue  # a parent package is not installed
            warnings_out.append(f"importing {module} failed: {type(exc).__name__}: {exc}")
        except Exception as exc:  # shown as a finding, the rest of the report still comes
            warnings_out.append(f"importing {module} failed: {type(exc).__name__}: {exc}")


def _add_activation_warnings(data: dict[str, Any], messages: list[str]) -> None:
    """What ``activate()`` warned about: a broken plugin is a problem, the rest warnings.

    A failed patch's warning is left out: the failed patch is listed as a
    problem already, with its error.
    """
    failed = [str(e["name"]) for e in data["patches"] if e.get("status") == "failed"]
    for message in dict.fromkeys(messages):
        if any(repr(name) in message or f"patch {name} " in message for name in failed):
            continue
        if "patch plugin" in message:
            data["problems"].append(message.removeprefix("mlx-portable: "))
        else:
            data["warnings"].append(message.removeprefix("mlx-portable: "))


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
        if "Upgrade the NVIDIA driver" in data["mlx_error"]:  # see cuda.diagnose.driver_too_old_message
            from ..cuda.diagnose import driver_too_old_steps
            from ..install_hint import driver_minimums

            return driver_too_old_steps(driver_minimums())
        if data["version_mismatch"]:
            # Each line ends with the command that pins mlx and its backend package alike.
            return _mismatch_text(data["version_mismatch"]).splitlines()
        steps.append(f"install mlx: {install_command()}")
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
                f"patch {entry['name']} failed: set MLX_PORTABLE_DISABLE={entry['name']} to leave it out, "
                f"and report it with 'mlx-portable doctor --markdown' at {ISSUES_URL}"
            )
    for problem in data["problems"]:
        if "patch plugin" in problem:
            steps.append("fix or uninstall the package that provides the broken patch plugin (see above)")
    blas = data.get("blas") or {}
    if blas.get("state") == "reference" and blas.get("fix"):
        steps.append(
            f"mlx's CPU backend runs the reference BLAS (float32 matmuls 10-50x slower): {blas['fix']}"
        )
    cuda_steps = _cuda_steps(data["cuda"])
    steps.extend(cuda_steps)
    backend = data["backend"]
    if _on_the_cpu(backend) and not data["backend_forced"] and not cuda_steps:
        steps.extend(_gpu_steps(data["probes"]))
    for env in data["environment"]:
        if env["warning"] and env["scope"] == "mlx-portable":
            steps.append(str(env["warning"]))  # names the variable it is likely a typo of
        elif env["warning"]:
            steps.append(f"unset {env['name']} here: the {backend} backend does not read it")
    if data["versions"].get("mlx-lm") is None:
        steps.append("to run language models and mlx-portable check: pip install mlx-lm")
    if data["activation_error"] is None:
        steps.append("prove the backend computes correctly: mlx-portable check")
    return list(dict.fromkeys(steps))  # the CUDA status repeats some (the version mismatch)


def _on_the_cpu(backend: str | None) -> bool:
    from ..backend_table import backend_names, row

    return backend in backend_names() and row(str(backend)).device_type == "cpu"


def _gpu_steps(probes: list[dict[str, Any]]) -> list[str]:
    """On the CPU backend: how to get the GPU this machine has (if it has one)."""
    from ..install_hint import nvidia_driver_version

    wanted = None
    if sys.platform == "darwin":
        wanted = "metal"
    elif sys.platform == "linux" and nvidia_driver_version() is not None:
        wanted = "cuda"
    for probe in probes:
        if (
            wanted is not None
            and probe.get("name") == wanted
            and not probe.get("available")
            and probe.get("remedy")
        ):
            from ..backend_table import row

            return [f"use the {row(wanted).label} GPU: {probe['remedy']}"]
    return []


def exit_status(data: dict[str, Any]) -> int:
    """0 fine (warnings allowed), 1 problems found, 2 mlx cannot be used."""
    if data["status"] == "error":
        return EXIT_CANNOT_RUN
    return EXIT_PROBLEMS if data["status"] == "problems" else EXIT_OK
