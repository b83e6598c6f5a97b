"""The loaded NVIDIA kernel driver, read from ``/proc`` (no CUDA context, no NVML).

Which CUDA major a machine can run (and so which pip extra to install) follows
from its version; :mod:`mlx_portable.install_hint` and the CUDA probe ask here.
The GPUs it lists are read here too, for the CUDA backend and for
:func:`mlx_portable.probe_installed`, which must stay cheap: ``os`` only.
"""

from __future__ import annotations

import os

__all__ = ["nvidia_driver_version", "proc_gpu_names"]

_DRIVER_PATTERN = r"Kernel Module\s+(?:for\s+\S+\s+)?(\d+)\.(\d+)"  # compiled when used: re costs ms


def nvidia_driver_version(proc_file: str = "/proc/driver/nvidia/version") -> tuple[int, int] | None:
    """The loaded NVIDIA kernel driver's version, or ``None`` without one."""
    try:
        with open(proc_file, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    import re

    match = re.search(_DRIVER_PATTERN, text)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def proc_gpu_names(root: str = "/proc/driver/nvidia/gpus") -> list[str]:
    """GPU model names the NVIDIA kernel driver lists (``Model:`` of each ``information`` file)."""
    names: list[str] = []
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return names
    for entry in entries:
        try:
            with open(os.path.join(root, entry, "information"), encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if line.startswith("Model:"):
                        names.append(line.split(":", 1)[1].strip())
                        break
        except OSError:
            continue
    return names
