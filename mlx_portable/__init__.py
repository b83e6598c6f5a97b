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
    from .backends import probe_all
    from .backends.protocol import Backend
    from .backends.results import DeviceInfo, MemoryLimit, MemoryStats, ProbeResult
    from .backends.selection import current_backend
    from .cuda.runtime import subprocess_env
    from .errors import BackendUnavailableError, MlxPortableError, PatchError, PortabilityWarning
    from .installed_probe import probe_installed
    from .memory import MemoryPressure, memory_pressure, set_memory_limit
    from .registry.context import PatchContext
    from .registry.originals import get_original
    from .registry.patch import Patch, obsolete, skip
    from .registry.registry import is_patched
    from .status import PatchStatus, patch_status
    from .thread_streams import any_thread_stream

__all__ = [
    "ActivationReport",
    "Backend",
    "BackendUnavailableError",
    "DeviceInfo",
    "MemoryLimit",
    "MemoryPressure",
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
    "memory_pressure",
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
    "memory_pressure": "memory",
    "MemoryPressure": "memory",
    "current_backend": "backends.selection",
    "probe_all": "backends",
    "probe_installed": "installed_probe",
    "Backend": "backends.protocol",
    "DeviceInfo": "backends.results",
    "MemoryLimit": "backends.results",
    "MemoryStats": "backends.results",
    "ProbeResult": "backends.results",
    "BackendUnavailableError": "errors",
    "MlxPortableError": "errors",
    "PatchError": "errors",
    "PortabilityWarning": "errors",
    "Patch": "registry.patch",
    "PatchContext": "registry.context",
    "get_original": "registry.originals",
    "is_patched": "registry.registry",
    "obsolete": "registry.patch",
    "skip": "registry.patch",
    "ActivationReport": "activation_report",
    "PatchEntry": "activation_report",
    "subprocess_env": "cuda.runtime",
    "set_memory_limit": "memory",
    "PatchStatus": "status",
    "patch_status": "status",
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


def _bootstrap() -> None:
    """Apply the always-safe patches: what ``import mlx_portable`` does.

    ``before-mlx`` patches apply at once; ``import`` patches wait for
    ``mlx.core`` (applied at once when it is loaded already), so importing
    the package works, and stays cheap, with mlx absent or not yet loaded;
    with mlx loaded, the shim modules obsolete on it are not imported
    (:mod:`.registry.lazy`).  The settings are read only when a variable that
    may concern mlx-portable is set (the first test of their misspelling
    check: ``MLX`` in the first five letters); with none, the defaults hold,
    there is nothing to warn about, and the settings module stays unloaded
    (0.3 ms of the import, measured).
    """
    import os

    from . import _mlx
    from ._fork import install
    from .registry.builtin import register_import_time
    from .registry.registry import registry

    install()  # at-fork handling of the locks, whatever the settings
    disabled: frozenset[str] = frozenset()
    if any("MLX" in name[:5].upper() for name in os.environ):
        from .settings import settings_for_import

        settings = settings_for_import()  # bad values: the defaults, and one warning naming them
        if not settings.enabled:
            return
        disabled = settings.disabled
    register_import_time(registry, disabled, _mlx.core_if_loaded())


_bootstrap()
del _bootstrap
