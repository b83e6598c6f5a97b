"""mlx-portable: run MLX code unchanged on Apple Metal, NVIDIA CUDA and the CPU.

    import mlx_portable
    report = mlx_portable.activate()

Importing the package applies only the always-safe patches; ``activate()``
picks the backend and applies the rest.  See ``docs/`` for the details.
"""

from __future__ import annotations

import logging as _logging

__version__ = "0.1.0"

_logging.getLogger("mlx_portable").addHandler(_logging.NullHandler())

from .activation import activate, deactivate, is_active, register, report  # noqa: E402
from .backends import current_backend, probe_all  # noqa: E402
from .backends.protocol import Backend, DeviceInfo, MemoryLimit, MemoryStats, ProbeResult  # noqa: E402
from .errors import BackendUnavailableError, MlxPortableError, PatchError, PortabilityWarning  # noqa: E402
from .patches.registry import Patch, PatchContext, get_original, is_patched, obsolete, skip  # noqa: E402
from .report import ActivationReport, PatchEntry  # noqa: E402

__all__ = [
    "ActivationReport",
    "Backend",
    "BackendUnavailableError",
    "DeviceInfo",
    "MemoryLimit",
    "MemoryStats",
    "MlxPortableError",
    "Patch",
    "PatchContext",
    "PatchEntry",
    "PatchError",
    "PortabilityWarning",
    "ProbeResult",
    "__version__",
    "activate",
    "current_backend",
    "deactivate",
    "get_original",
    "is_active",
    "is_patched",
    "obsolete",
    "probe_all",
    "register",
    "report",
    "skip",
]

from .activation import bootstrap as _bootstrap  # noqa: E402

_bootstrap()
del _bootstrap
