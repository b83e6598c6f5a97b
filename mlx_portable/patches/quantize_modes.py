"""``quantize_modes``: the ``mode=`` quantization API of mlx >= 0.29 on older mlx.

Why: mlx-lm 0.32 passes ``mode=`` whenever it quantizes or loads a quantized
model (``nn.quantize(model, group_size, bits, mode=...)``, its
``QuantizedSwitchLinear`` calls ``mx.gather_qmm(..., mode=self.mode)``, and
``mlx_lm.quant`` reads ``layer.mode``).  mlx < 0.29 knows only the affine
scheme and no ``mode`` keyword anywhere::

    TypeError: quantize() got an unexpected keyword argument 'mode'
    TypeError: quantize(): incompatible function arguments. ... kwargs = { mode: str }
    AttributeError: 'QuantizedLinear' object has no attribute 'mode'

Which: mlx < 0.29.0 (0.26.5, 0.27.1, 0.28.0 in the matrix), every backend;
the ``mlx.nn`` half also on mlx 0.29.0-0.30.2, whose layers take ``mode=``
but default to group size 64 and 4 bits whatever the mode, so
``nn.quantize(model, mode="nvfp4")`` or ``nn.QuantizedLinear(..., mode="mxfp8")``
fail there: ``ValueError: [quantize] nvfp4 quantization requires group size
16 but got 64.`` (per-mode defaults arrived in 0.30.3).

What the patch does:

* ``mx.quantize``, ``mx.dequantize``, ``mx.quantized_matmul`` and
  ``mx.gather_qmm`` take mlx 0.32.4's signatures (``mode=``, optional
  ``group_size``/``bits`` defaulting per mode, ``biases=None``, and
  ``global_scale=`` / ``dtype=`` where 0.32.4 has them).  ``mode="affine"``
  calls the original function with exactly the old defaults (64, 4), so
  affine results are the old mlx's own, bit for bit.
* ``mxfp4``, ``mxfp8`` and ``nvfp4`` run the pure-mlx implementation in
  :mod:`mlx_portable.fallbacks.fp_quantize`: packed weights, scales and
  dequantized values bit-identical to mlx 0.32.4's; the matrix products
  dequantize and multiply in float32 (not bit-identical to 0.32.4's fused
  kernels, whose accumulation order no mlx op reproduces: they agree to one
  rounding of the output dtype).
* Once ``mlx.nn`` is imported: ``nn.quantize(..., mode=)``,
  ``QuantizedLinear``/``QuantizedEmbedding`` with ``mode`` (constructor,
  ``.mode``, ``from_linear``/``from_embedding``) and
  ``Linear``/``Embedding.to_quantized(mode=)``
  (:mod:`mlx_portable.fallbacks.quantized_layers`).  ``quantize_input=True``
  raises ``NotImplementedError`` naming mlx 0.30.1 (``QQLinear``/``mx.qqmm``).
* Affine 1-bit weights (mlx 0.32.3) are not added: the old affine kernels
  reject ``bits=1`` with their own error.

Upstream: ml-explore/mlx 0.29.0 (``mode=`` and mxfp4), 0.29.x (mxfp8, nvfp4);
ml-explore/mlx#2299.
"""

from __future__ import annotations

from .registry import Patch, get_original

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .registry import PatchContext

__all__ = ["PATCHES", "quantize_modes"]

_FP = ("mxfp4", "mxfp8", "nvfp4")
_MODES = ("affine", *_FP)


def _params(tag: str, mode: str, group_size: int | None, bits: int | None) -> tuple[int, int]:
    if mode not in _MODES:
        raise ValueError(f"[{tag}] Invalid quantization mode '{mode}'.")
    defaults = {"affine": (64, 4), "mxfp4": (32, 4), "mxfp8": (32, 8), "nvfp4": (16, 4)}[mode]
    return (defaults[0] if group_size is None else group_size, defaults[1] if bits is None else bits)


def _no_global(tag: str, mode: str, global_scale: Any) -> None:
    if global_scale is not None and mode != "nvfp4":
        raise ValueError(f"[{tag}] Global scale is only supported for 'nvfp4' quantization mode.")


def _affine_biases(tag: str, biases: Any) -> Any:
    if biases is None:
        raise ValueError(f"[{tag}] Biases must be provided for affine quantization.")
    return biases


def _fp_no_biases(tag: str, mode: str, biases: Any) -> None:
    if biases is not None:
        raise ValueError(f"[{tag}] Biases must be null for quantization mode '{mode}'.")


def _on(mx: Any, stream: Any) -> Any:
    return mx.stream(stream if stream is not None else mx.default_stream(mx.default_device()))


def _fp() -> Any:
    # Imported on first use of an fp mode: keeps ``import mlx_portable`` cheap.
    from ..fallbacks import fp_quantize

    return fp_quantize


def _wrappers(mx: Any) -> dict[str, Any]:
    quantize0 = mx.quantize
    dequantize0 = mx.dequantize
    matmul0 = mx.quantized_matmul
    gather0 = mx.gather_qmm

    def quantize(
        w: Any,
        group_size: int | None = None,
        bits: int | None = None,
        mode: str = "affine",
        *,
        global_scale: Any = None,
        stream: Any = None,
    ) -> Any:
        group_size, bits = _params("quantize", mode, group_size, bits)
        _no_global("quantize", mode, global_scale)
        if mode == "affine":
            return quantize0(w, group_size, bits, stream=stream)
        with _on(mx, stream):
            return _fp().fp_quantize(w, mode, group_size, bits, global_scale)

    def dequantize(
        w: Any,
        scales: Any,
        biases: Any = None,
        group_size: int | None = None,
        bits: int | None = None,
        mode: str = "affine",
        global_scale: Any = None,
        dtype: Any = None,
        *,
        stream: Any = None,
    ) -> Any:
        group_size, bits = _params("dequantize", mode, group_size, bits)
        _no_global("dequantize", mode, global_scale)
        if mode == "affine":
            out = dequantize0(w, scales, _affine_biases("dequantize", biases), group_size, bits, stream=stream)
            return out if dtype is None else out.astype(dtype, stream=stream)
        _fp_no_biases("dequantize", mode, biases)
        with _on(mx, stream):
            return _fp().fp_dequantize(w, scales, mode, group_size, bits, dtype, global_scale)

    def quantized_matmul(
        x: Any,
        w: Any,
        scales: Any,
        biases: Any = None,
        transpose: bool = True,
        group_size: int | None = None,
        bits: int | None = None,
        mode: str = "affine",
        *,
        stream: Any = None,
    ) -> Any:
        group_size, bits = _params("quantized_matmul", mode, group_size, bits)
        if mode == "affine":
            biases = _affine_biases("quantized_matmul", biases)
            return matmul0(x, w, scales, biases, transpose, group_size, bits, stream=stream)
        _fp_no_biases("quantized_matmul", mode, biases)
        with _on(mx, stream):
            return _fp().fp_quantized_matmul(x, w, scales, transpose, mode, group_size, bits)

    def gather_qmm(
        x: Any,
        w: Any,
        scales: Any,
        biases: Any = None,
        lhs_indices: Any = None,
        rhs_indices: Any = None,
        transpose: bool = True,
        group_size: int | None = None,
        bits: int | None = None,
        mode: str = "affine",
        global_scale: Any = None,
        *,
        sorted_indices: bool = False,
        stream: Any = None,
    ) -> Any:
        group_size, bits = _params("gather_qmm", mode, group_size, bits)
        _no_global("gather_qmm", mode, global_scale)
        if mode == "affine":
            biases = _affine_biases("gather_qmm", biases)
            return gather0(
                x, w, scales, biases, lhs_indices, rhs_indices, transpose, group_size, bits,
                sorted_indices=sorted_indices, stream=stream,
            )  # fmt: skip
        _fp_no_biases("gather_qmm", mode, biases)
        with _on(mx, stream):
            return _fp().fp_gather_qmm(
                x, w, scales, lhs_indices, rhs_indices, transpose, mode, group_size, bits,
                sorted_indices, global_scale,
            )  # fmt: skip

    found = {"quantize": quantize, "dequantize": dequantize, "quantized_matmul": quantized_matmul}
    found["gather_qmm"] = gather_qmm
    for name, fn in found.items():
        original = getattr(mx, name)
        fn.__doc__ = (original.__doc__ or "") + (
            "\n\nmlx-portable: takes mode= ('affine', 'mxfp4', 'mxfp8', 'nvfp4') as mlx >= 0.29 does."
        )
        fn.__wrapped__ = original  # type: ignore[attr-defined]
    return found


def _takes_mode(mx: Any) -> bool:
    doc = getattr(get_original(mx, "quantize"), "__doc__", None) or ""
    return "mode" in doc.split("\n", 1)[0]


def _patch_nn(ctx: PatchContext, nn: Any) -> None:
    import sys

    from ..fallbacks import quantized_layers

    for cls, attr, value in quantized_layers.METHODS:
        ctx.set_attr(cls, attr, value)
    for module_name in ("mlx.nn", "mlx.nn.layers", "mlx.nn.layers.quantized"):
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, "quantize"):
            ctx.set_attr(module, "quantize", quantized_layers.quantize)


def _apply(ctx: PatchContext) -> None:
    from ..hooks import register_post_import_hook, remove_post_import_hook

    mx = ctx.mx
    if not _takes_mode(mx):
        for name, fn in _wrappers(mx).items():
            ctx.set_attr(mx, name, fn)
    # One patch for both halves: mlx.nn is patched when it is imported (at
    # once if it already is), so ``import mlx_portable`` does not import it.
    handle = register_post_import_hook("mlx.nn", lambda nn: _patch_nn(ctx, nn))
    ctx.on_revert(lambda _ctx: remove_post_import_hook(handle))


quantize_modes = Patch(
    name="quantize_modes",
    summary=(
        "mx.quantize/dequantize/quantized_matmul/gather_qmm and mlx.nn's quantized layers take mode= "
        "(affine: the old kernels; mxfp4/mxfp8/nvfp4: pure mlx, bit-exact to mlx 0.32.4)"
    ),
    why=(
        "mlx-lm 0.32 quantizes and loads with mode=; mlx < 0.29.0: TypeError: quantize() got an unexpected "
        "keyword argument 'mode', and AttributeError: 'QuantizedLinear' object has no attribute 'mode'."
    ),
    apply=_apply,
    mlx_versions="<0.30.3",
    on_import=True,
    upstream="https://github.com/ml-explore/mlx/releases/tag/v0.29.0",
)

PATCHES = (quantize_modes,)
