"""JSON-able facts about the CUDA set-up, for the report, ``doctor`` and the patches."""

from __future__ import annotations

import os

from .diagnose import ld_library_path_command
from .headers import cuda_home_candidates, headers_install_command, mlx_header_search
from .layout import BackendPackage, cuda_backend_package, nvidia_library_folders
from .packages import install_command_for, package_for_library, requirement_for
from .plan import DRIVER_LIBRARY, LoadPlan, make_plan

__all__ = ["cuda_status", "header_status", "library_path_folders", "missing_library_entries"]


def missing_library_entries(plan: LoadPlan) -> list[dict[str, str | None]]:
    """One entry per library found nowhere: the library, the pip package, the command."""
    requires = plan.backend.requires() if plan.backend is not None else []
    entries: list[dict[str, str | None]] = []
    for soname in plan.missing:
        if soname == DRIVER_LIBRARY:
            entries.append({"library": soname, "package": None, "install": "install the NVIDIA driver"})
            continue
        found = package_for_library(soname, plan.cuda_major)
        package = found[0] if found else None
        entries.append(
            {
                "library": soname,
                "needed_by": plan.needed_by.get(soname),
                "package": package,
                "install": install_command_for(requirement_for(package, requires)) if package else None,
            }
        )
    return entries


def header_status(backend: BackendPackage, libmlx: str | None = None) -> dict[str, object]:
    """Where mlx finds the CUDA headers, the ``CUDA_HOME`` to set if it does not, or what to install."""
    if libmlx is None:
        from .layout import libmlx_locations, mlx_core_dir

        core = mlx_core_dir()
        beside = os.path.join(core, "lib", "libmlx.so") if core else None
        libmlx = beside if beside and os.path.isfile(beside) else next(iter(libmlx_locations()), None)
    search = mlx_header_search(backend, libmlx)
    candidates = cuda_home_candidates(backend.cuda_major)
    chosen = None if search.usable else (candidates[0] if candidates else None)
    install = None if (search.usable or chosen) else headers_install_command(backend)
    if search.usable:
        advice = f"mlx finds the CUDA headers in {search.include}"
    elif chosen:
        advice = f"set CUDA_HOME={chosen} (mlx_portable does it when CUDA_HOME and CUDA_PATH are unset)"
    else:
        advice = (
            f"install the CUDA {backend.cuda_major} headers: {install}, or set CUDA_HOME to a CUDA toolkit"
        )
    return {
        "cuda_home": os.environ.get("CUDA_HOME"),
        "cuda_path": os.environ.get("CUDA_PATH"),
        "mlx_search": search.to_dict(),
        "mlx_finds": search.include if search.usable else None,
        "candidates": candidates,
        "chosen": chosen,
        "install": install,
        "advice": advice,
    }


def library_path_folders(path: list[str] | None = None) -> list[str]:
    """The NVIDIA library folders a child process needs on ``LD_LIBRARY_PATH`` (CUDA major of the backend)."""
    backend = cuda_backend_package(path)
    if backend is None:
        return []
    folders = [f.path for f in nvidia_library_folders(backend.cuda_major, path)]
    plan_libmlx = os.path.join(backend.site_dir, "mlx", "lib")
    from .layout import mlx_core_dir

    core = mlx_core_dir(path)
    if core is not None and not os.path.isfile(os.path.join(core, "lib", "libmlx.so")):
        folders.append(plan_libmlx)
    return folders


def cuda_status() -> dict[str, object]:
    """Everything a user needs to get mlx's CUDA build running, as plain data."""
    from ..versions import backend_package_mismatch
    from .plan import preloaded

    backend = cuda_backend_package()
    mismatch = backend_package_mismatch()
    status: dict[str, object] = {
        "backend_package": backend.to_dict() if backend else None,
        "cuda_major": backend.cuda_major if backend else None,
        "version_mismatch": mismatch,
    }
    steps: list[str] = []
    if mismatch:
        steps.extend(mismatch.splitlines())
    if backend is None:
        from ..install_hint import install_command
        from .driver import nvidia_driver_version

        if nvidia_driver_version() is None:
            # Installing mlx's CUDA build would not help: nothing here can run it.
            status["note"] = "no NVIDIA driver is loaded here: mlx's CUDA build cannot run on this machine"
            status["next_steps"] = steps
        else:  # the command names the CUDA major this driver supports
            status["next_steps"] = [*steps, f"no CUDA backend package is installed: {install_command()}"]
        return status
    plan = make_plan()
    missing = missing_library_entries(plan)
    folders = [f.path for f in plan.folders]
    current = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    to_add = [f for f in library_path_folders() if f not in current]
    headers = header_status(backend, plan.libmlx)
    status.update(
        {
            "libmlx": plan.libmlx,
            "library_folders": folders,
            "found_by_loader": plan.found,
            "needs_preload": [p for _, p in plan.preload],
            "preloaded": preloaded(),
            "missing_libraries": missing,
            "problems": plan.problems,
            "headers": headers,
            "ld_library_path": {
                "current": current,
                "add": to_add,
                "export": ld_library_path_command(to_add) if to_add else None,
            },
        }
    )
    steps.extend(str(m["install"]) for m in missing if m.get("install"))
    steps.extend(plan.problems)
    if plan.preload:
        steps.append(
            "import mlx_portable before mlx.core (it preloads "
            + ", ".join(s for s, _ in plan.preload)
            + "), or start Python with: "
            + ld_library_path_command(to_add or folders)
        )
    elif preloaded() and to_add:
        steps.append(
            "this process runs on preloaded NVIDIA libraries; start child processes with "
            f"mlx_portable.subprocess_env(), or: {ld_library_path_command(to_add)}"
        )
    if not headers["mlx_finds"] and not os.environ.get("CUDA_HOME") and not os.environ.get("CUDA_PATH"):
        steps.append(str(headers["advice"]))
    status["next_steps"] = steps
    return status
