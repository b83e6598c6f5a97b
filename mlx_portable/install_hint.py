"""The exact ``pip install`` command that gives this machine a working mlx.

macOS gets plain ``mlx`` (its Metal backend comes with it). On Linux, ``pip
install mlx`` alone installs no backend at all (``libmlx.so: cannot open
shared object file``), so the command names an extra: ``cuda13`` when an
NVIDIA driver new enough for CUDA 13 is present, ``cuda12`` for an older
driver, and ``cpu`` otherwise.
"""

from __future__ import annotations

import sys

from .cuda.driver import nvidia_driver_version
from .pip_hint import pip_command

__all__ = [
    "driver_minimums",
    "explain_import_failure",
    "install_command",
    "minimum_driver",
    "nvidia_driver_version",
    "pip_command",
    "pip_extra_for_this_machine",
]

#: First driver branch of each CUDA major version (NVIDIA's minor-version
#: compatibility table): CUDA 13.x needs >= 580, CUDA 12.x needs >= 525.
_CUDA13_MIN_DRIVER = 580
_CUDA12_MIN_DRIVER = 525


def driver_minimums() -> tuple[int, int]:
    """The first driver branch of CUDA 12 and of CUDA 13: ``(525, 580)``."""
    return _CUDA12_MIN_DRIVER, _CUDA13_MIN_DRIVER


def minimum_driver(package: str) -> int:
    """The oldest NVIDIA driver a CUDA backend package needs (``mlx-cuda-13``: 580, else 525)."""
    return _CUDA13_MIN_DRIVER if package.endswith("-13") else _CUDA12_MIN_DRIVER


def pip_extra_for_this_machine(
    platform: str | None = None, driver: tuple[int, int] | str | None = "probe"
) -> str | None:
    """``None`` on macOS, else ``"cuda13"``, ``"cuda12"`` or ``"cpu"``."""
    platform = sys.platform if platform is None else platform
    if platform == "darwin":
        return None
    found = nvidia_driver_version() if driver == "probe" else driver
    if isinstance(found, tuple):
        if found[0] >= _CUDA13_MIN_DRIVER:
            return "cuda13"
        if found[0] >= _CUDA12_MIN_DRIVER:
            return "cuda12"
    return "cpu"


def install_command(version: str | None = None, extra: str | bool | None = True) -> str:
    """E.g. ``pip install "mlx[cpu]==0.32.4"``; ``extra=True`` picks it for this machine."""
    chosen = pip_extra_for_this_machine() if extra is True else (extra or None)
    pin = f"=={version}" if version else ""
    if chosen:
        return f'{pip_command()} "mlx[{chosen}]{pin}"'
    return f'{pip_command()} "mlx{pin}"'


def explain_import_failure(exc: BaseException) -> str:
    """Turn an ``import mlx.core`` failure into a message that says what to do."""
    import re  # only on the failure path: the import path stays free of ``re``

    text = str(exc)
    if "driver version is insufficient" in text or re.search(r"undefined symbol: cu[A-Z]\w*$", text):
        from .cuda.diagnose import driver_too_old_message

        return driver_too_old_message(text, nvidia_driver_version(), driver_minimums())
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "mlx":
        return f"mlx is not installed. Install it with: {install_command()}"
    if "libmlx" in text and "cannot open shared object file" in text:
        return (
            f"mlx is installed without a backend ({text}). On Linux, plain "
            f"'pip install mlx' brings no backend; install one with: {install_command()}"
        )
    if "undefined symbol" in text:
        from .distributions import version
        from .versions import backend_package_mismatch

        mismatch = backend_package_mismatch()
        if mismatch:
            return f"{mismatch}\n(import mlx.core failed with: {text})"
        return (
            f"mlx and its backend package are at different versions ({text}). "
            "Pin both to the same version, e.g.: "
            f"{install_command(version('mlx'))}"
        )
    import re

    missing = re.search(r"(lib[\w.+-]+\.so(?:\.\d+)*): cannot open shared object file", text)
    if missing:
        from .cuda.diagnose import missing_library_message  # not the facade: cuda.backend imports this module

        return missing_library_message(missing.group(1), text)
    if not isinstance(exc, ImportError):
        text = f"{type(exc).__name__}: {text}"
    if len(text) > 500:
        text = text[:500] + "..."
    return f"mlx.core cannot be imported: {text}. Reinstall it with: {install_command()}"
