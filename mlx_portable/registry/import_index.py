"""Which mlx versions each import-time shim module is needed on (generated).

Generated from the patches' ``mlx_versions`` by ``python -m tools.import_index
--write``; tests/test_core_import_index.py fails when it is stale.  Do not
edit by hand.

``import mlx_portable`` does not import a shim module whose every patch is
outside its range on the loaded mlx (the compatibility test holds that such
a patch is never applied there) or waits for a module not imported yet.
Each of its patches is decided, with the same report line, when first
looked at or when the module it waits for is imported (:mod:`.lazy`).  A
module missing from here is imported, as before.
"""

from __future__ import annotations

import sys

__all__ = ["MLX_VERSIONS", "modules_to_leave_out"]

#: import-time shim module -> (name, ``mlx_versions``, module it waits for) of
#: each of its patches (``""``: any mlx / none; an activate-time patch is
#: ``(name, "", "")``: ``activate()`` imports its module anyway)
MLX_VERSIONS: dict[str, list[tuple[str, str, str]]] = {
    "mlx_portable.patches.cuda_libraries": [
        ("cuda_libraries", "", ""),
        ("cuda_home", "", ""),
    ],
    "mlx_portable.patches.thread_local_stream": [
        ("thread_local_stream", "<0.31.2", ""),
    ],
    "mlx_portable.patches.clear_streams_at_exit": [
        ("clear_streams_at_exit", ">=0.31.2", ""),
        ("clear_streams_at_thread_end", ">=0.31.2", "threading"),
    ],
    "mlx_portable.patches.thread_free_streams": [
        ("thread_free_streams", ">=0.32.0", ""),
    ],
    "mlx_portable.patches.device_info": [
        ("device_info", "<0.30.4", ""),
    ],
    "mlx_portable.patches.metal_fast_synch": [
        ("metal_fast_synch", "", ""),
    ],
    "mlx_portable.patches.sdpa_sinks": [
        ("sdpa_sinks", "<0.29.1", ""),
    ],
    "mlx_portable.patches.sdpa_masked_rows": [
        ("sdpa_masked_rows", ">=0.27.0,<0.29.4", ""),
    ],
    "mlx_portable.patches.rope_batch_offsets": [
        ("rope_batch_offsets", "<0.29.1", ""),
    ],
    "mlx_portable.patches.missing_ops": [
        ("graph_depends", "<0.29.0", ""),
        ("nn_relu2", "<0.29.0", "mlx.nn"),
    ],
    "mlx_portable.patches.array_api_ops": [
        ("array_api_ops", "<0.32.4", ""),
    ],
    "mlx_portable.patches.index_views": [
        ("negative_stride_views", "<0.30.0", ""),
        ("gather_view_order", "<0.32.0", ""),
        ("empty_axis_take", "<0.30.4", ""),
    ],
    "mlx_portable.patches.empty_reductions": [
        ("empty_scan", "<0.32.4", ""),
        ("empty_extremes", "<0.32.4", ""),
    ],
    "mlx_portable.patches.float64_values": [
        ("float64_tolist", "<0.30.4", ""),
        ("float64_from_python", "<0.30.1", ""),
        ("float64_linspace", "<0.30.4", ""),
    ],
    "mlx_portable.patches.array_arguments": [
        ("bool_mask_assign", "<0.30.0", ""),
        ("tile_array_reps", ">=0.32.4", ""),
    ],
    "mlx_portable.patches.compile_constants": [
        ("compile_constants", "<0.29.0", ""),
    ],
    "mlx_portable.patches.compile_random_state": [
        ("compile_random_state", ">=0.31.2,<0.32.1", ""),
    ],
    "mlx_portable.patches.fp8_conversion": [
        ("fp8_conversion", "<0.32.3", ""),
    ],
    "mlx_portable.patches.quantize_modes": [
        ("quantize_modes", "<0.32.3", ""),
        ("quantize_modes_nn", "<0.30.3", "mlx.nn"),
    ],
    "mlx_portable.patches.metal_namespace": [
        ("metal_namespace", "", ""),
    ],
    "mlx_portable.patches.mlx_lm.thread_bound_streams": [
        ("thread_bound_streams", ">=0.31.2", "mlx_lm.generate"),
    ],
    "mlx_portable.patches.mlx_lm.server_sigterm": [
        ("server_sigterm", "", "mlx_lm"),
        ("server_sigterm_http_loop", "", "mlx_lm.server"),
    ],
}


def modules_to_leave_out(version: str | None) -> dict[str, tuple[tuple[str, str], ...]]:
    """module -> (name, module it waits for or ``""``) of each patch, for the modules not to import now.

    Those whose every patch is outside its ``mlx_versions`` on mlx ``version``
    (``None``: not known yet) or waits for a module not imported yet.  A patch
    outside its range waits for nothing: it is decided when first read.
    """
    from ..versions import version_in

    def outside(spec: str) -> bool:
        return version is not None and bool(spec) and not version_in(version, spec)

    def later(spec: str, waits: str) -> bool:
        return outside(spec) or (bool(waits) and waits not in sys.modules)

    return {
        module: tuple((name, "" if outside(spec) else waits) for name, spec, waits in rows)
        for module, rows in MLX_VERSIONS.items()
        if all(later(spec, waits) for _, spec, waits in rows)
    }
