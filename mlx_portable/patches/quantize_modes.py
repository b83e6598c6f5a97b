"""``quantize_modes``: the ``mode=`` quantization API of mlx >= 0.29 on older mlx.

Why: mlx-lm 0.32 passes ``mode=`` whenever it quantizes or loads a quantized
model (``nn.quantize(model, group_size, bits, mode=...)``, its
``QuantizedSwitchLinear`` calls ``mx.gather_qmm(..., mode=self.mode)``, and
``mlx_lm.quant`` reads ``layer.mode``).  mlx < 0.29 knows only the affine
scheme and no ``mode`` keyword anywhere::

    TypeError: quantize() got an unexpected keyword argument 'mode'
    TypeError: quantize(): incompatible function arguments. ... kwargs = { mode: str }
    AttributeError: 'QuantizedLinear' object has no attribute 'mode'

Which (every backend):

* mlx < 0.29.0 (0.26.5, 0.27.1, 0.28.0 in the matrix): no ``mode`` anywhere;
* mlx 0.29.0-0.30.2: the ``mlx.nn`` layers take ``mode=`` but default to
  group size 64 and 4 bits whatever the mode (``nn.quantize(model,
  mode="nvfp4")`` -> ``ValueError: [quantize] nvfp4 quantization requires
  group size 16 but got 64.``; per-mode defaults arrived in 0.30.3), and
  ``quantized_matmul`` / ``gather_qmm`` multiply mxfp8 and nvfp4 weights
  with the mxfp4 kernel: no error, wrong numbers (relative error ~1 on the
  CPU wheels 0.29.4 and 0.30.0; the kernels came with ml-explore/mlx#2946 in
  0.30.3);
* mlx 0.29.0-0.30.x: no ``global_scale=`` for ``quantize``/``dequantize``
  (0.31.0); mlx 0.29.0-0.32.2: none for ``gather_qmm`` (0.32.3), which
  mlx-lm 0.32's ``QuantizedSwitchLinear`` always passes, so every quantized
  mixture-of-experts model fails to generate there (44 of the 109 families
  of the sweep on mlx 0.31.2)::

      TypeError: gather_qmm(): incompatible function arguments. ... kwargs = { ..., global_scale: NoneType }

* mlx 0.29.0-0.32.1: ``mx.quantize``'s mxfp4/mxfp8 encoder rounds the E8M0
  group exponent to nearest where 0.32.2 and later round it up, so a group's
  largest values saturate (to 6 or 448 times the scale) and the packed
  weights and scales differ from newer mlx's; dequantization agrees.

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
* On mlx 0.29.0-0.32.2 only the calls listed above are routed to the same
  pure-mlx code (:func:`mlx_portable.fallbacks.quantize_api.routed_wrappers`);
  every other call reaches mlx's own op unchanged.
* ``quantize_modes_nn``, once ``mlx.nn`` is imported (mlx < 0.30.3; a part
  of ``quantize_modes``, left out with it): ``nn.quantize(..., mode=)``,
  ``QuantizedLinear``/``QuantizedEmbedding`` with ``mode`` (constructor,
  ``.mode``, ``from_linear``/``from_embedding``) and
  ``Linear``/``Embedding.to_quantized(mode=)``
  (:mod:`mlx_portable.fallbacks.quantized_layers`).  ``quantize_input=True``
  raises ``NotImplementedError`` naming mlx 0.30.1 where ``QQLinear``/``mx.qqmm`` are missing.
* Affine 1-bit weights (mlx 0.32.4) are not added: the old affine kernels
  reject ``bits=1`` with their own error.

Upstream: ml-explore/mlx 0.29.0 (``mode=``, mxfp4, mxfp8, nvfp4), #2946
(mxfp8/nvfp4 kernels, 0.30.3), 0.31.0 (``global_scale``), 0.32.2 (E8M0
rounding up).
"""

from __future__ import annotations

from ..registry.registry import Patch, get_original, obsolete

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext, Verdict

__all__ = ["PATCHES", "quantize_modes", "quantize_modes_nn"]


def _takes_mode(mx: Any) -> bool:
    doc = getattr(get_original(mx, "quantize"), "__doc__", None) or ""
    return "mode" in doc.split("\n", 1)[0]


def _apply_nn(ctx: PatchContext) -> None:
    import sys

    from ..fallbacks import quantized_layers

    for cls, attr, value in quantized_layers.METHODS:
        ctx.set_attr(cls, attr, value)
    for module_name in ("mlx.nn", "mlx.nn.layers", "mlx.nn.layers.quantized"):
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, "quantize"):
            ctx.set_attr(module, "quantize", quantized_layers.quantize)


def _release(ctx: PatchContext) -> tuple[int, ...]:
    # A plain tuple, not packaging's Version: this check runs on ``import mlx_portable``.
    return tuple(int(p) for p in ctx.mlx_version.split(".")[:3] if p.isdigit())


def _check(ctx: PatchContext) -> Verdict | None:
    if _release(ctx) >= (0, 32, 3):
        return obsolete(
            f"mlx {ctx.mlx_version} has mode= and global_scale= everywhere (gather_qmm's: 0.32.3)"
        )
    return None


def _apply(ctx: PatchContext) -> None:
    from ..fallbacks import quantize_api

    mx = ctx.mx
    version = _release(ctx)
    if not _takes_mode(mx):
        wrappers = quantize_api.legacy_wrappers(mx)
    else:
        wrappers = quantize_api.routed_wrappers(mx, version)
    for name, fn in wrappers.items():
        ctx.set_attr(mx, name, fn)


def _check_nn(ctx: PatchContext) -> Verdict | None:
    if _release(ctx) >= (0, 30, 3):
        return obsolete(f"mlx {ctx.mlx_version}'s mlx.nn layers default group size and bits per mode")
    return None


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
    check=_check,
    mlx_versions="<0.32.3",
    when="import",
    upstream="https://github.com/ml-explore/mlx/releases/tag/v0.29.0",
)

# mlx.nn is patched when it is imported (at once if it already is), so that
# ``import mlx_portable`` does not import it: a patch of its own, after the first.
quantize_modes_nn = Patch(
    name="quantize_modes_nn",
    summary=(
        "nn.quantize, QuantizedLinear/QuantizedEmbedding and to_quantized take mode= "
        "(group size and bits per mode), with quantize_modes"
    ),
    why=(
        "mlx < 0.29.0: AttributeError: 'QuantizedLinear' object has no attribute 'mode'; mlx 0.29-0.30.2: "
        "nn.quantize(model, mode='nvfp4') -> ValueError: [quantize] nvfp4 quantization requires "
        "group size 16 but got 64."
    ),
    apply=_apply_nn,
    check=_check_nn,
    mlx_versions="<0.30.3",
    when="import:mlx.nn",
    part_of="quantize_modes",
    upstream="https://github.com/ml-explore/mlx/pull/2946",
)

PATCHES = (quantize_modes, quantize_modes_nn)
