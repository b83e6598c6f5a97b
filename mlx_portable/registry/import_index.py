"""Which mlx versions each import-time shim module is needed on (generated).

Generated from the patches' ``mlx_versions`` by ``python -m tools.import_index
--write`` (``python -m tools.compat_table --write`` runs it too); a test fails
when it is stale.  Do not edit by hand.

``import mlx_portable`` with ``mlx.core`` already loaded does not import a
module whose every import-time patch is outside its range on this mlx: the
compatibility test holds that such a patch is never applied there.  Its
patches are registered and decided, with the same report lines, the first
time anything reads the registry (:meth:`Registry.defer_registration`).
A module missing from here is imported, as every module was before.
"""

from __future__ import annotations

__all__ = ["MLX_VERSIONS", "obsolete_modules"]

#: import-time shim module -> the ``mlx_versions`` of each of its import-time patches
MLX_VERSIONS: dict[str, tuple[str, ...]] = {
    "mlx_portable.patches.cuda_libraries": ("", ""),
    "mlx_portable.patches.thread_local_stream": ("<0.31.2",),
    "mlx_portable.patches.clear_streams_at_exit": (">=0.31.2",),
    "mlx_portable.patches.thread_free_streams": (">=0.32.0",),
    "mlx_portable.patches.device_info": ("<0.30.4",),
    "mlx_portable.patches.metal_fast_synch": ("",),
    "mlx_portable.patches.sdpa_sinks": ("<0.29.1",),
    "mlx_portable.patches.sdpa_masked_rows": (">=0.27.0,<0.29.4",),
    "mlx_portable.patches.rope_batch_offsets": ("<0.29.1",),
    "mlx_portable.patches.missing_ops": ("<0.29.0", "<0.29.0"),
    "mlx_portable.patches.array_api_ops": ("<0.32.4",),
    "mlx_portable.patches.compile_constants": ("<0.29.0",),
    "mlx_portable.patches.compile_random_state": (">=0.31.2,<0.32.1",),
    "mlx_portable.patches.fp8_conversion": ("<0.32.3",),
    "mlx_portable.patches.quantize_modes": ("<0.32.3",),
    "mlx_portable.patches.metal_namespace": ("",),
    "mlx_portable.patches.mlx_lm.thread_bound_streams": (">=0.31.2",),
    "mlx_portable.patches.mlx_lm.server_sigterm": ("",),
}


def obsolete_modules(version: str) -> frozenset[str]:
    """The modules whose every import-time patch is outside its ``mlx_versions`` on mlx ``version``."""
    from ..versions import version_in

    return frozenset(
        module
        for module, ranges in MLX_VERSIONS.items()
        if ranges and all(spec and not version_in(version, spec) for spec in ranges)
    )
