"""The list of mlx-portable's own patches, in application order, and how import and activate() register them.

Each module named here defines its patches as module-level :class:`Patch`
objects listed in its ``PATCHES`` tuple, and imports nothing heavy (mlx is
reached through the patch context, mlx-lm only inside deferred patches).
:func:`register_import_time` is what ``import mlx_portable`` does with it:
register and apply the import-time patches, leaving out the modules
:mod:`.lazy` decides later.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .registry import Patch, Registry

__all__ = [
    "ACTIVATE_MODULES",
    "BUILTIN_MODULES",
    "ON_IMPORT_MODULES",
    "REGISTRATION",
    "builtin_patches",
    "left_out",
    "register_activate_time",
    "register_import_time",
]

#: The one registration list: every module holding built-in patches, in the
#: order they apply, and whether it holds patches that ``import mlx_portable``
#: applies (``when="before-mlx"``/``"import"``).  Only those modules are
#: imported by ``import mlx_portable``; they must stay cheap to import (no
#: ``typing``, ``dataclasses``, ``logging`` at run time).  A test checks that
#: no import-time patch lives in a module marked ``False``.
REGISTRATION: tuple[tuple[str, bool], ...] = (
    ("mlx_portable.patches.cuda_libraries", True),
    ("mlx_portable.patches.default_device", False),
    ("mlx_portable.patches.thread_local_stream", True),
    ("mlx_portable.patches.clear_streams_at_exit", True),
    ("mlx_portable.patches.thread_free_streams", True),
    ("mlx_portable.patches.device_info", True),
    ("mlx_portable.patches.wired_limit", False),
    ("mlx_portable.patches.metal_fast_synch", True),
    ("mlx_portable.patches.sdpa_sinks", True),
    ("mlx_portable.patches.sdpa_masked_rows", True),
    ("mlx_portable.patches.rope_batch_offsets", True),
    ("mlx_portable.patches.missing_ops", True),
    ("mlx_portable.patches.array_api_ops", True),
    ("mlx_portable.patches.index_views", True),
    ("mlx_portable.patches.empty_reductions", True),
    ("mlx_portable.patches.float64_values", True),
    ("mlx_portable.patches.array_arguments", True),
    ("mlx_portable.patches.addmm_half_cpu", False),
    ("mlx_portable.patches.compile_constants", True),
    ("mlx_portable.patches.compile_random_state", True),
    ("mlx_portable.patches.fp8_conversion", True),
    ("mlx_portable.patches.quantize_modes", True),
    ("mlx_portable.patches.metal_namespace", True),
    ("mlx_portable.patches.cpu_blas", False),
    ("mlx_portable.patches.half_matmul_cpu", False),
    ("mlx_portable.patches.quantized_matmul_cpu", False),
    ("mlx_portable.patches.decode_linear_cpu", False),
    ("mlx_portable.patches.mlx_lm.thread_bound_streams", True),
    ("mlx_portable.patches.mlx_lm.server_sigterm", True),
    ("mlx_portable.patches.mlx_lm.metal_kernel_lazy_build", False),
    ("mlx_portable.patches.mlx_lm.bitlinear_fallback", False),
    ("mlx_portable.patches.mlx_lm.muse_spark_kernels_fallback", False),
    ("mlx_portable.patches.mlx_lm.tuner_divergence_losses", False),
    ("mlx_portable.patches.mlx_lm.gated_delta", False),
)

#: Modules holding built-in patches, in the order they apply.
BUILTIN_MODULES: tuple[str, ...] = tuple(module for module, _ in REGISTRATION)

#: The modules among BUILTIN_MODULES that ``import mlx_portable`` loads.
ON_IMPORT_MODULES: tuple[str, ...] = tuple(module for module, at_import in REGISTRATION if at_import)

#: The others: the first ``activate()`` loads them.
ACTIVATE_MODULES: tuple[str, ...] = tuple(module for module, at_import in REGISTRATION if not at_import)


def _patches_of(module: str) -> tuple[Patch, ...]:
    __import__(module)  # importlib.import_module would import importlib: not free
    return sys.modules[module].PATCHES  # type: ignore[no-any-return]


def builtin_patches() -> list[Patch]:
    """Every built-in :class:`Patch`, in order (imports every shim module)."""
    return [patch for module in BUILTIN_MODULES for patch in _patches_of(module)]


#: The import-time shim modules :func:`register_import_time` left out (``activate()`` leaves them out too).
left_out: frozenset[str] = frozenset()


def register_import_time(registry: Registry, disabled: frozenset[str], mx: object | None) -> None:
    """Register and apply the import-time patches; :data:`left_out` holds the modules left out.

    With ``mx`` (``mlx.core``, already loaded) the modules whose every
    import-time patch is obsolete on it, or waits for a module not imported
    yet, are not imported: each of their patches is a :class:`~.lazy.LazyRecord`
    (decided when first read, or when the module it waits for is imported).
    """
    from .. import _mlx
    from .import_index import modules_to_leave_out

    global left_out
    lazy = modules_to_leave_out(None if mx is None else _mlx.mlx_version(mx), ON_IMPORT_MODULES)
    names: list[str] = []
    for module in ON_IMPORT_MODULES:
        if module in lazy:
            _register_lazy(registry, module, lazy[module], disabled)
            continue
        for patch in _patches_of(module):
            if patch.on_import:
                registry.register(patch)
                names.append(patch.name)
    registry.apply(names, backend=None, disabled=disabled, import_time=True)
    left_out = frozenset(lazy)


def register_activate_time(registry: Registry) -> None:
    """Register the built-in patches not registered at import, in order; called by the first ``activate()``.

    As at import, a module whose every patch is outside its ``mlx_versions``
    on this mlx or waits for a module not imported yet (mlx-lm's, before
    ``import mlx_lm``) is not imported: each of its patches is a
    :class:`~.lazy.LazyRecord`, decided when first read or when that module
    is imported, and then applied as the deferred patch it would have been
    (measured: 1.4 ms of the first ``activate()``'s 8.4 on mlx 0.32.4).
    """
    from .. import _mlx
    from .import_index import modules_to_leave_out

    waiting = modules_to_leave_out(_mlx.mlx_version(), ACTIVATE_MODULES)
    for module in BUILTIN_MODULES:
        if module in left_out:
            continue  # its patches are lazy records since the import
        if module in waiting:
            _register_lazy(registry, module, waiting[module], frozenset())
            continue
        for patch in _patches_of(module):
            registry.register(patch)  # the import-time ones are registered already, and keep their place


def _register_lazy(
    registry: Registry, module: str, rows: tuple[tuple[str, str], ...], disabled: frozenset[str]
) -> None:
    from ..import_hooks import register_post_import_hook
    from .lazy import LazyRecord, resolver

    for name, waits in rows:
        record = LazyRecord(registry, module, name, disabled)
        registry.register_lazy(record, name)
        if waits:  # decided when that module is imported, as its own hook would have been
            register_post_import_hook(waits, resolver(record))
