"""``CUDA_VISIBLE_DEVICES`` read as CUDA reads it: the one parser of that variable.

The probe (is any GPU visible?), the ``device_count`` shim and the NVML
memory query all ask here, so they agree on ``""``, ``-1`` and friends.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["visible_devices"]

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
