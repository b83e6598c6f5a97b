"""Messages for ``import mlx.core`` failing on a missing NVIDIA library, or on a driver too old.

Each says which library, which pip package provides it (for the CUDA major
of the installed backend package), the exact command, and, when the library
is installed but out of the loader's sight, how to import in the right order.
"""

from __future__ import annotations

import os

from .layout import cuda_backend_package, nvidia_library_folders
from .packages import install_command_for, package_for_library, requirement_for
from .plan import DRIVER_LIBRARY

__all__ = [
    "driver_cuda_version",
    "driver_too_old_message",
    "ld_library_path_command",
    "missing_library_message",
]


def ld_library_path_command(folders: list[str]) -> str:
    """``export LD_LIBRARY_PATH=a:b:$LD_LIBRARY_PATH`` for a shell that starts Python."""
    return "export LD_LIBRARY_PATH=" + ":".join([*folders, "$LD_LIBRARY_PATH"])


def missing_library_message(soname: str, error_text: str) -> str:
    """What to do about ``<soname>: cannot open shared object file``."""
    from ..validation import require_str

    soname = require_str(soname, "missing_library_message(soname=...)", empty=False)
    error_text = require_str(error_text, "missing_library_message(error_text=...)")
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
    from .plan import preloaded

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


def driver_cuda_version(library: str = DRIVER_LIBRARY) -> tuple[int, int] | None:
    """The newest CUDA version the installed driver runs (``cuDriverGetVersion``), or ``None``.

    Asks ``libcuda.so.1`` itself: it creates no context and needs no GPU.
    """
    import ctypes

    try:
        cuda = ctypes.CDLL(library)
        found = ctypes.c_int(0)
        if cuda.cuDriverGetVersion(ctypes.byref(found)) != 0 or found.value <= 0:
            return None
    except (OSError, AttributeError):
        return None
    return found.value // 1000, (found.value % 1000) // 10


def driver_too_old_steps(minimums: tuple[int, int]) -> list[str]:
    """The fixes for a driver too old for the installed CUDA build, most direct first.

    ``minimums``: the first driver of CUDA 12 and of CUDA 13
    (:func:`mlx_portable.install_hint.driver_minimums`).
    """
    cuda12_driver, cuda13_driver = minimums
    backend = cuda_backend_package()
    version = f"=={backend.version}" if backend is not None else ""
    minimum = cuda12_driver if backend is not None and backend.cuda_major < 13 else cuda13_driver
    steps = [f"upgrade the NVIDIA driver to {minimum} or newer"]
    if backend is None or backend.cuda_major >= 13:
        name = backend.name if backend is not None else "mlx-cuda-13"
        steps.append(
            f"or install the CUDA 12 build, which drivers from {cuda12_driver} on run: "
            f'pip uninstall -y {name} && pip install "mlx[cuda12]{version}"'
        )
    steps.append(f'or use the CPU build: pip install "mlx[cpu]{version}"')
    return steps


def driver_too_old_message(error_text: str, driver: tuple[int, int] | None, minimums: tuple[int, int]) -> str:
    """What to do about ``CUDA driver version is insufficient for CUDA runtime version``.

    mlx-cuda-13 needs driver 580 or newer; with an older driver, ``import
    mlx.core`` fails in its first allocation (``ImportError:
    cudaMallocManaged(&data, size) failed: CUDA driver version is
    insufficient for CUDA runtime version``; reproduced with mlx-cuda-13
    0.32.4, the NVIDIA wheels it requires and a driver reporting CUDA 12.2).
    A driver missing a newer entry point fails earlier, with ``undefined
    symbol: cu...``.  The CUDA 12 build runs on drivers from 525 on.
    ``driver``: the kernel driver's version, if known.
    """
    backend = cuda_backend_package()
    supports = driver_cuda_version()
    have = "the NVIDIA driver" + (f" {driver[0]}.{driver[1]:02d}" if driver else "")
    have += f" runs CUDA up to {supports[0]}.{supports[1]}" if supports else " is too old for this build"
    if backend is not None:
        minimum = minimums[1] if backend.cuda_major >= 13 else minimums[0]
        needs = f"{backend.name} {backend.version} is built with CUDA {backend.cuda_major}"
        needs += f" and needs driver {minimum} or newer"
    else:
        needs = "the installed mlx CUDA build needs a newer driver"
    steps = driver_too_old_steps(minimums)
    steps[0] = steps[0][0].upper() + steps[0][1:]
    return (
        f"mlx.core cannot start on this GPU: {have}; {needs} ({error_text.strip()[:300]}). "
        + "; ".join(steps)
        + "."
    )
