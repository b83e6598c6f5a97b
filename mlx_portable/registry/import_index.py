"""The mlx versions each shim module is needed on and the modules its patches wait for (generated).

Generated from the patches' ``mlx_versions`` and ``when=`` by ``python -m
tools.import_index --write``; tests/test_core_import_index.py fails when it
is stale.  Do not edit by hand.

``import mlx_portable`` (for the import-time shim modules) and the first
``activate()`` (for the others) do not import a shim module whose every
patch is outside its range on the loaded mlx (the compatibility test holds
that such a patch is never applied there) or waits for a module not
imported yet (mlx-lm's, in a program that has not imported mlx-lm).  Each
of its patches is decided, with the same report line, when first looked at
or when the module it waits for is imported (:mod:`.lazy`).  A module
missing from here is imported, as before.
"""

from __future__ import annotations

import sys

__all__ = ["SHIM_INDEX", "builtin_names", "modules_to_leave_out"]

#: shim module -> (name, ``mlx_versions``, module it waits for) of each of
#: its patches (``""``: any mlx / none), in the order of the registration list
SHIM_INDEX: dict[str, list[tuple[str, str, str]]] = {
    "mlx_portable.patches.cuda_libraries": [
        ("cuda_libraries", "", ""),
        ("cuda_home", "", ""),
    ],
    "mlx_portable.patches.default_device": [
        ("default_device", "", ""),
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
    "mlx_portable.patches.wired_limit": [
        ("wired_limit", "", ""),
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
    "mlx_portable.patches.addmm_half_cpu": [
        ("addmm_half_cpu", "<0.29.4", ""),
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
    "mlx_portable.patches.cpu_blas": [
        ("cpu_blas", "", ""),
    ],
    "mlx_portable.patches.half_matmul_cpu": [
        ("half_matmul_cpu", "", ""),
    ],
    "mlx_portable.patches.quantized_matmul_cpu": [
        ("quantized_matmul_cpu", "", ""),
    ],
    "mlx_portable.patches.decode_linear_cpu": [
        ("decode_linear_cpu", "", "mlx.nn"),
    ],
    "mlx_portable.patches.mlx_lm.thread_bound_streams": [
        ("thread_bound_streams", ">=0.31.2", "mlx_lm.generate"),
    ],
    "mlx_portable.patches.mlx_lm.server_sigterm": [
        ("server_sigterm", "", "mlx_lm"),
        ("server_sigterm_http_loop", "", "mlx_lm.server"),
    ],
    "mlx_portable.patches.mlx_lm.metal_kernel_lazy_build": [
        ("metal_kernel_lazy_build", "<0.32.0", ""),
    ],
    "mlx_portable.patches.mlx_lm.bitlinear_fallback": [
        ("bitlinear_fallback", "", "mlx_lm.models.bitlinear_layers"),
    ],
    "mlx_portable.patches.mlx_lm.muse_spark_kernels_fallback": [
        ("muse_spark_kernels_fallback", "", "mlx_lm.kernels"),
    ],
    "mlx_portable.patches.mlx_lm.tuner_divergence_losses": [
        ("tuner_divergence_losses", "", "mlx_lm.tuner.losses"),
    ],
    "mlx_portable.patches.mlx_lm.gated_delta": [
        ("gated_delta_kernel_fallback", "", "mlx_lm.models.gated_delta"),
        ("gated_delta_ops_fastest", "", "mlx_lm.models.gated_delta"),
    ],
}


def modules_to_leave_out(
    version: str | None, modules: tuple[str, ...]
) -> dict[str, tuple[tuple[str, str], ...]]:
    """module -> (name, module it waits for or ``""``) of each patch, for the ``modules`` not to import now.

    Those whose every patch is outside its ``mlx_versions`` on mlx ``version``
    (``None``: not known yet) or waits for a module not imported yet.  A patch
    outside its range waits for nothing: it is decided when first read.
    """
    from ..versions import version_in

    def outside(spec: str) -> bool:
        return version is not None and bool(spec) and not version_in(version, spec)

    def later(spec: str, waits: str) -> bool:
        return outside(spec) or (bool(waits) and waits not in sys.modules)

    found = {}
    for module in modules:
        rows = SHIM_INDEX.get(module)
        if rows is not None and all(later(spec, waits) for _, spec, waits in rows):
            found[module] = tuple((name, "" if outside(spec) else waits) for name, spec, waits in rows)
    return found


def builtin_names() -> frozenset[str]:
    """Every built-in patch's name, without importing a shim module."""
    return frozenset(row[0] for rows in SHIM_INDEX.values() for row in rows)
