"""Messages for ``import mlx.core`` failing on a missing NVIDIA library.

Each says which library, which pip package provides it (for the CUDA major
of the installed backend package), the exact command, and, when the library
is installed but out of the loader's sight, how to import in the right order.
"""

from __future__ import annotations

import os

from .layout import cuda_backend_package, nvidia_library_folders
from .packages import install_command_for, package_for_library, requirement_for
from .plan import DRIVER_LIBRARY

__all__ = ["ld_library_path_command", "missing_library_message"]


def ld_library_path_command(folders: list[str]) -> str:
    """``export LD_LIBRARY_PATH=a:b:$LD_LIBRARY_PATH`` for a shell that starts Python."""
    return "export LD_LIBRARY_PATH=" + ":".join([*folders, "$LD_LIBRARY_PATH"])


def missing_library_message(soname: str, error_text: str) -> str:
    """What to do about ``<soname>: cannot open shared object file``."""
    if soname == DRIVER_LIBRARY:
        return (
            f"mlx.core cannot load {soname} ({error_text}). It is the NVIDIA driver's library, not a pip "
            "package: this machine has no NVIDIA driver (or the container was started without GPU access, "
            'e.g. docker run --gpus all). Install the driver, or use the CPU build: pip install "mlx[cpu]"'
        )
    backend = cuda_backend_package()
    major = backend.cuda_major if backend is not None else None
    found = package_for_library(soname, major)
    if found is None:
        return (
            f"mlx.core cannot load {soname} ({error_text}). Install the package that provides it, "
            "or put its folder on LD_LIBRARY_PATH before starting Python."
        )
    package = found[0]
    requirement = requirement_for(package, backend.requires() if backend is not None else ())
    command = install_command_for(requirement)
    folders = [f.path for f in nvidia_library_folders(major)]
    holding = [folder for folder in folders if os.path.isfile(os.path.join(folder, soname))]
    for_backend = (
        f" (the CUDA {major} build, for {backend.name} {backend.version})" if backend is not None else ""
    )
    if not holding:
        return (
            f"mlx.core cannot load {soname}, which the pip package {package} provides{for_backend}: "
            f"it is not installed in any site-packages on sys.path ({error_text}). "
            f"Install it with: {command}"
        )
    from .preload import preloaded

    if soname in preloaded():
        return (
            f"mlx.core cannot load {soname} ({error_text}), although mlx_portable preloaded it from "
            f"{preloaded()[soname]}. Reinstall the package: {command} --force-reinstall"
        )
    return (
        f"mlx.core cannot load {soname} ({error_text}). It is installed, in {holding[0]} "
        f"(pip package {package}), but libmlx looks for NVIDIA libraries only in the site-packages "
        "it is installed in. Import mlx_portable before mlx.core (`import mlx_portable` then "
        "`import mlx.core`: it preloads the NVIDIA libraries); if mlx.core was imported first and "
        "failed, `import mlx_portable` and import mlx.core again in the same process. For a new "
        f"process, start it with mlx_portable.subprocess_env() or: {ld_library_path_command(folders)}"
    )
