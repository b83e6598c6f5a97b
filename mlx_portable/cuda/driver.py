"""The loaded NVIDIA kernel driver, read from ``/proc`` (no CUDA context, no NVML).

Which CUDA major a machine can run (and so which pip extra to install) follows
from its version; :mod:`mlx_portable.install_hint` and the CUDA probe ask here.
The GPUs it lists are read here too, for the CUDA backend and for
:func:`mlx_portable.probe_installed`, which must stay cheap: ``os`` only; and
``CUDA_VISIBLE_DEVICES`` as CUDA reads it (:func:`visible_devices`, the one
parser of that variable: the probe, the ``device_count`` shim and the NVML
memory query all ask here, so they agree on ``""``, ``-1`` and friends).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["nvidia_driver_release", "nvidia_driver_version", "proc_gpu_names", "visible_devices"]

#: ``NVRM version: NVIDIA UNIX [Open Kernel Module for x86_64]  580.65.06  Release Build ...``
_DRIVER_PATTERN = r"Kernel Module\s+(?:for\s+\S+\s+)?(\d+\.\d+(?:\.\d+)*)"  # compiled when used: re costs ms


def nvidia_driver_release(proc_file: str = "/proc/driver/nvidia/version") -> str | None:
    """The loaded NVIDIA kernel driver's release (``"580.65.06"``), or ``None`` without one.

    The one reader of that file: :func:`nvidia_driver_version`, the CUDA probe,
    the install hints and :func:`mlx_portable.probe_installed` all ask here.
    """
    try:
        with open(proc_file, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    import re

    match = re.search(_DRIVER_PATTERN, text)
    return match.group(1) if match is not None else None


def nvidia_driver_version(proc_file: str = "/proc/driver/nvidia/version") -> tuple[int, int] | None:
    """The loaded NVIDIA kernel driver's ``(major, minor)``, or ``None`` without one."""
    release = nvidia_driver_release(proc_file)
    if release is None:
        return None
    major, minor = release.split(".")[:2]
    return int(major), int(minor)


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


#: Values that hide every GPU although CUDA would not parse them (Slurm, some schedulers).
_NO_DEVICES = ("none", "NoDevFiles")


def visible_devices(env: Mapping[str, str] | None = None) -> list[str] | None:
    """The GPUs ``CUDA_VISIBLE_DEVICES`` leaves visible, as CUDA reads it.

    ``None``: the variable is unset, every GPU is visible.  Otherwise the
    entries (indices, ``GPU-``/``MIG-`` UUIDs) up to the first one CUDA does
    not accept: ``""``, ``"-1"``, ``"none"`` and ``"NoDevFiles"`` give ``[]``
    (no GPU), ``"0,-1,1"`` gives ``["0"]``.
    """
    if env is None:
        value = os.environ.get("CUDA_VISIBLE_DEVICES")
    else:
        from ..validation import require_env

        value = require_env(env, "visible_devices(env=...)").get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    found: list[str] = []
    for entry in value.split(","):
        entry = entry.strip()
        if entry in _NO_DEVICES or not (entry.isdigit() or entry.startswith(("GPU-", "MIG-"))):
            break
        found.append(entry)
    return found
