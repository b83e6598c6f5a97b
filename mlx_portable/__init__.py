"""mlx-portable: run MLX code unchanged on Apple Metal, NVIDIA CUDA and the CPU.

    import mlx_portable
    report = mlx_portable.activate()

Importing the package applies only the always-safe patches; ``activate()``
picks the backend and applies the rest.  See ``docs/`` for the details.

The public names are loaded on first use (PEP 562), so that ``import
mlx_portable`` costs little more than the import-time patches themselves.
"""

from __future__ import annotations

import sys as _sys

__version__ = "0.1.0"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .activation import activate, deactivate, is_active, register, report
    from .activation_report import ActivationReport, PatchEntry
    from .backends import current_backend, probe_all
    from .backends.protocol import Backend, DeviceInfo, MemoryLimit, MemoryStats, ProbeResult
    from .cuda.runtime import subprocess_env
    from .errors import BackendUnavailableError, MlxPortableError, PatchError, PortabilityWarning
    from .installed_probe import probe_installed
    from .memory_limit import set_memory_limit
    from .patch_status import PatchStatus, patch_status
    from .patches.registry import Patch, PatchContext, get_original, is_patched, obsolete, skip
    from .thread_streams import any_thread_stream

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
    "PatchStatus",
    "PortabilityWarning",
    "ProbeResult",
    "__version__",
    "activate",
    "any_thread_stream",
    "current_backend",
    "deactivate",
    "get_original",
    "is_active",
    "is_patched",
    "obsolete",
    "patch_status",
    "probe_all",
    "probe_installed",
    "register",
    "report",
    "set_memory_limit",
    "skip",
    "subprocess_env",
]

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "activate": "activation",
    "deactivate": "activation",
    "is_active": "activation",
    "register": "activation",
    "report": "activation",
    "any_thread_stream": "thread_streams",
    "current_backend": "backends",
    "probe_all": "backends",
    "probe_installed": "installed_probe",
    "Backend": "backends.protocol",
    "DeviceInfo": "backends.protocol",
    "MemoryLimit": "backends.protocol",
    "MemoryStats": "backends.protocol",
    "ProbeResult": "backends.protocol",
    "BackendUnavailableError": "errors",
    "MlxPortableError": "errors",
    "PatchError": "errors",
    "PortabilityWarning": "errors",
    "Patch": "patches.registry",
    "PatchContext": "patches.registry",
    "get_original": "patches.registry",
    "is_patched": "patches.registry",
    "obsolete": "patches.registry",
    "skip": "patches.registry",
    "ActivationReport": "activation_report",
    "PatchEntry": "activation_report",
    "subprocess_env": "cuda.runtime",
    "set_memory_limit": "memory_limit",
    "PatchStatus": "patch_status",
    "patch_status": "patch_status",
}


def __getattr__(name: str) -> object:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mlx_portable' has no attribute {name!r}")
    full = f"{__name__}.{module_name}"
    __import__(full)
    value = getattr(_sys.modules[full], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _attach_null_handler() -> None:
    # The package logger gets a NullHandler.  ``logging`` costs milliseconds to
    # import, so it is attached now only if logging is loaded already, else on
    # first use by the modules that log (see backends._common).
    if "logging" in _sys.modules:
        import logging

        logging.getLogger("mlx_portable").addHandler(logging.NullHandler())


_attach_null_handler()

from ._bootstrap import bootstrap as _bootstrap  # noqa: E402

_bootstrap()
del _bootstrap
