"""What mlx-portable does about each name or keyword newer mlx added: the one place that says so.

Why: the API diff (``docs/api-diff.md``) and the consumer check read their
verdicts from here, so a status is written once and a test keeps the docs
and the code in step.

Each rule is ``(pattern, status, detail)``; the first whose :mod:`fnmatch`
pattern matches a key (``mlx.core.quantize(mode)``, ``mlx.core.from_fp8``,
``mlx.nn.QQLinear*``) decides.  Statuses:

* ``shimmed``: ``detail`` is the patch name (``docs/shims.md``);
* ``not needed``: ``detail`` says why;
* ``impossible``: ``detail`` says why; the table adds the first mlx that has it.

A key no rule matches is *not needed* when no scanned consumer uses it
(``consumers.json``), and *unclassified* otherwise: the consumer test fails
on an unclassified key that is missing on the running mlx.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import NamedTuple

__all__ = ["FINDINGS", "RULES", "SHIMMED", "Status", "finding_disposition", "status_of"]

SHIMMED = "shimmed"
NOT_NEEDED = "not needed"
IMPOSSIBLE = "impossible"
UNCLASSIFIED = "unclassified"

_QUANT = "quantize_modes"
_CUDA = "CUDA kernels exist only in mlx-cuda >= 0.29; older mlx has no CUDA backend to run them on"
_DIST = "distributed training utilities; no scanned consumer uses them before the mlx that has them"

RULES: tuple[tuple[str, str, str], ...] = (
    # Streams and devices.
    ("mlx.core.ThreadLocalStream*", SHIMMED, "thread_local_stream"),
    ("mlx.core.new_thread_local_stream*", SHIMMED, "thread_local_stream"),
    ("mlx.core.device_info*", SHIMMED, "device_info"),
    ("mlx.core.device_count*", SHIMMED, "device_info"),
    ("mlx.core.depends*", SHIMMED, "graph_depends"),
    ("mlx.core.fast.scaled_dot_product_attention(sinks)", SHIMMED, "sdpa_sinks"),
    ("mlx.nn.relu2*", SHIMMED, "nn_relu2"),
    ("mlx.nn.ReLU2*", SHIMMED, "nn_relu2"),
    # Quantization modes (mlx 0.29): mode= everywhere, mxfp4/mxfp8/nvfp4 in pure MLX.
    ("mlx.core.quantize(mode)", SHIMMED, _QUANT),
    ("mlx.core.quantize(global_scale)", SHIMMED, _QUANT),
    ("mlx.core.dequantize(mode)", SHIMMED, _QUANT),
    ("mlx.core.dequantize(global_scale)", SHIMMED, _QUANT),
    ("mlx.core.dequantize(dtype)", SHIMMED, _QUANT),
    ("mlx.core.quantized_matmul(mode)", SHIMMED, _QUANT),
    ("mlx.core.gather_qmm(mode)", SHIMMED, _QUANT),
    ("mlx.core.gather_qmm(global_scale)", SHIMMED, _QUANT),
    ("mlx.nn.quantize(mode)", SHIMMED, _QUANT),
    ("mlx.nn.QuantizedLinear(mode)", SHIMMED, _QUANT),
    ("mlx.nn.QuantizedLinear.from_linear(mode)", SHIMMED, _QUANT),
    ("mlx.nn.QuantizedEmbedding(mode)", SHIMMED, _QUANT),
    ("mlx.nn.QuantizedEmbedding.from_embedding(mode)", SHIMMED, _QUANT),
    ("mlx.nn.Linear.to_quantized(mode)", SHIMMED, _QUANT),
    ("mlx.nn.Embedding.to_quantized(mode)", SHIMMED, _QUANT),
    ("mlx.core.from_fp8*", SHIMMED, "fp8_conversion"),
    ("mlx.core.to_fp8*", SHIMMED, "fp8_conversion"),
    # Numpy-style array functions mlx-vlm calls (mlx 0.32).
    ("mlx.core.diff*", SHIMMED, "array_api_ops"),
    ("mlx.core.empty", SHIMMED, "array_api_ops"),
    ("mlx.core.empty(*)", SHIMMED, "array_api_ops"),
    ("mlx.core.flip*", SHIMMED, "array_api_ops"),
    ("mlx.core.result_type*", SHIMMED, "array_api_ops"),
    ("mlx.core.searchsorted*", SHIMMED, "array_api_ops"),
    ("mlx.core.ones_like(dtype)", SHIMMED, "array_api_ops"),
    ("mlx.core.zeros_like(dtype)", SHIMMED, "array_api_ops"),
    # Activation quantization (nvfp4 / mxfp8 activations).
    (
        "mlx.nn.QQLinear*",
        IMPOSSIBLE,
        "quantizes activations for the fused quantized-by-quantized matmul (mx.qqmm); "
        "mlx-lm builds it only for checkpoints with quantize_activations=true, which need that kernel",
    ),
    (
        "mlx.core.qqmm*",
        IMPOSSIBLE,
        "a fused quantized-by-quantized matmul kernel; no pure-MLX equivalent keeps its speed",
    ),
    (
        "mlx.core.gather_qqmm*",
        IMPOSSIBLE,
        "a fused kernel for quantized activations in mixture-of-experts layers",
    ),
    ("mlx.nn.Linear.to_quantized(quantize_input)", IMPOSSIBLE, "builds nn.QQLinear (see it)"),
    ("mlx.nn.Embedding.to_quantized(quantize_input)", IMPOSSIBLE, "builds nn.QQLinear (see it)"),
    ("mlx.nn.quantize(quantize_input)", IMPOSSIBLE, "builds nn.QQLinear (see it)"),
    # Keywords the signature text omits on older mlx although the function accepts them.
    (
        "mlx.core.softmax(precise)",
        NOT_NEEDED,
        "accepted by every matrix mlx; only the signature text before 0.32.4 omits it "
        "(tests/test_apidiff_consumers.py calls it)",
    ),
    # Backend-specific additions.
    (
        "mlx.core.cuda*",
        NOT_NEEDED,
        "mlx.core.cuda.is_available(): mlx_portable.backends answers it on every mlx",
    ),
    ("mlx.core.fast.cuda_kernel*", IMPOSSIBLE, _CUDA),
    ("mlx.core.fast.precompiled_cuda_kernel*", IMPOSSIBLE, _CUDA),
    (
        "mlx.core.fast.metal_kernel(compile_options)",
        NOT_NEEDED,
        "Metal-only kernel option; no scanned consumer passes it",
    ),
    ("mlx.core.fast.gated_delta_update", NOT_NEEDED, "mlx-lm ships its own gated-delta kernel and fallback"),
    (
        "mlx.core.fast.cross_entropy",
        NOT_NEEDED,
        "no scanned consumer uses it; nn.losses.cross_entropy works everywhere",
    ),
    ("mlx.nn.*fsdp*", NOT_NEEDED, _DIST),
    ("mlx.nn.utils.fsdp*", NOT_NEEDED, _DIST),
    ("mlx.nn.FullyShardedModule*", NOT_NEEDED, _DIST),
    ("mlx.nn.fully_shard", NOT_NEEDED, _DIST),
    ("mlx.nn.utils.clip_grad_norm_sharded", NOT_NEEDED, _DIST),
    ("mlx.core.distributed.sum_scatter*", NOT_NEEDED, _DIST),
    (
        "mlx.*average_gradients(communication_stream)",
        NOT_NEEDED,
        "an optional overlap stream; mlx-vlm's trainer passes it only when training data-parallel",
    ),
    # Consumer uses outside the public surface.
    (
        "mlx.core.expand_dims(axes)",
        NOT_NEEDED,
        "mlx-lm 0.28.4 passes axes= in one model, which no mlx accepts (a bug of that release)",
    ),
    (
        "mlx.core.bool",
        NOT_NEEDED,
        "no mlx has it (the dtype is mx.bool_); mlx-vlm's idefics2 and gemma3n audio code fails on every mlx",
    ),
    ("mlx.core.__version__", NOT_NEEDED, "present on every mlx (module attribute)"),
    ("mlx.core.__file__", NOT_NEEDED, "present on every mlx (module attribute)"),
    (
        "mlx._distributed_utils*",
        NOT_NEEDED,
        "mlx's private launcher helpers, used only by mlx-lm's distributed launcher (part of mlx.launch)",
    ),
)


#: Behaviour findings (``"case/dtype"`` patterns, see :mod:`.behaviour`) and what was done.
FINDINGS: tuple[tuple[str, str], ...] = (
    ("addmm/*", "shimmed (`addmm_half_cpu`): float16/bfloat16 addmm on the CPU aborts or raises below 0.29"),
    ("rope_batch_offsets/*", "shimmed (`rope_batch_offsets`): a vector of offsets, one per batch row"),
    (
        "sdpa_bool_mask_hides_row/*",
        "shimmed (`sdpa_masked_rows`): NaN rows become mean(v), as on 0.26.5 and >= 0.29.4",
    ),
    (
        "edge_view_*_set_mask/*",
        "shimmed (`bool_mask_assign`): `x[mask] = v` rejected below 0.30.0",
    ),
    (
        "edge_view_strided_get_tuple_int/*",
        "shimmed (`negative_stride_views`): slices of a negative-stride view start at the wrong offset "
        "below 0.30.0",
    ),
    (
        "edge_view_*",
        "shimmed (`gather_view_order`): the CPU gather reads column-contiguous slices in memory order "
        "up to 0.31.2, silently",
    ),
    (
        "edge_dtype_index_int/*",
        "shimmed (`gather_view_order`): `x.T[None][0]` in memory order up to 0.31.2, every dtype",
    ),
    ("edge_dtype_tolist/*", "shimmed (`float64_tolist`): float64 `.tolist()` raises below 0.30.4"),
    (
        "edge_f64_from_python/*",
        "shimmed (`float64_from_python`): float64 arrays from Python floats go through float32 below 0.30.1",
    ),
    (
        "edge_f64_linspace/*",
        "shimmed (`float64_linspace`): float64 `linspace` computed in float32 below 0.30.4",
    ),
    (
        "edge_shape_index_*/*",
        "shimmed (`empty_axis_take`): an index of an array with a zero-size axis raises below 0.30.4",
    ),
    (
        "edge_shape_take/*",
        "shimmed (`empty_axis_take`): `take` from an array with a zero-size axis raises below 0.30.4",
    ),
    ("edge_shape_max/*", "shimmed (`empty_extremes`): max/min of a zero-size array raise below 0.32.4"),
    (
        "edge_shape_*",
        "shimmed (`empty_scan`): scans, sort and argsort of a zero-size array kill the process (SIGFPE) "
        "below 0.32.4",
    ),
    (
        "edge_arg_tile_array_scalar/*",
        "shimmed (`tile_array_reps`): 0.32.4's `tile` rejects array scalars older mlx accepted",
    ),
)


def finding_disposition(key: str) -> str:
    """What was done about behaviour finding ``key``; a test fails on an undocumented one."""
    for pattern, text in FINDINGS:
        if fnmatchcase(key, pattern):
            return text
    return UNCLASSIFIED


class Status(NamedTuple):
    status: str  # shimmed, not needed, impossible, unclassified
    detail: str  # patch name, or why

    def describe(self) -> str:
        if self.status == SHIMMED:
            return f"shimmed (`{self.detail}`)"
        return f"{self.status}: {self.detail}" if self.detail else self.status


def status_of(key: str, used_by: list[str] | None = None) -> Status:
    """The status of ``key``; ``used_by`` (its consumers) decides keys no rule names."""
    for pattern, status, detail in RULES:
        if fnmatchcase(key, pattern):
            return Status(status, detail)
    if not used_by:
        return Status(NOT_NEEDED, "no scanned consumer (mlx-lm 0.24-0.32, mlx-vlm) uses it")
    return Status(UNCLASSIFIED, "used by " + ", ".join(used_by))
