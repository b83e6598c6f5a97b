"""The loaded NVIDIA kernel driver's version, read from ``/proc`` (no CUDA context, no NVML).

Which CUDA major a machine can run (and so which pip extra to install) follows
from it; :mod:`mlx_portable.install_hint` and the CUDA probe ask here.
"""

from __future__ import annotations

import re

__all__ = ["nvidia_driver_version"]

_DRIVER_RE = re.compile(r"Kernel Module\s+(?:for\s+\S+\s+)?(\d+)\.(\d+)")


def nvidia_driver_version(proc_file: str = "/proc/driver/nvidia/version") -> tuple[int, int] | None:
    """The loaded NVIDIA kernel driver's version, or ``None`` without one."""
    try:
        with open(proc_file, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    match = _DRIVER_RE.search(text)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))
