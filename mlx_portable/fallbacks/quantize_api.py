"""mlx 0.32.4's quantized-op signatures and results, as wrappers around an older mlx's ops.

Used by the ``quantize_modes`` patch (see its docstring for the why):

* :func:`legacy_wrappers` -- mlx < 0.29, which has no ``mode=`` at all:
  affine calls go to the original op with the old defaults; the fp modes run
  :mod:`.fp_quantize`.
* :func:`routed_wrappers` -- mlx 0.29.0-0.32.2, which has the modes but
  (a) encodes mxfp4/mxfp8 with a round-to-nearest E8M0 exponent (until
  0.32.2), (b) multiplies mxfp8/nvfp4 weights with the mxfp4 kernels, giving
  wrong products (``quantized_matmul`` / ``gather_qmm``, until 0.30.3,
  ml-explore/mlx#2946), and (c) has no ``global_scale=`` (``quantize`` and
  ``dequantize`` until 0.31.0, ``gather_qmm`` until 0.32.3 -- mlx-lm 0.32's
  ``QuantizedSwitchLinear`` always passes it, so every quantized MoE model
  fails there: ``TypeError: gather_qmm(): incompatible function arguments``).
  Only those calls are routed to :mod:`.fp_quantize`; everything else calls
  the original op unchanged.

This module is on the ``import mlx_portable`` path of the versions it
patches: it imports nothing at run time; :mod:`.fp_quantize` (which imports
``mlx.core``) is imported on the first fp-mode call.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["legacy_wrappers", "routed_wrappers"]

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
    from . import fp_quantize

    return fp_quantize


def legacy_wrappers(mx: Any) -> dict[str, Any]:
    """mlx 0.32.4's four quantized ops for an mlx without ``mode=`` (< 0.29)."""
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
            out = dequantize0(
                w, scales, _affine_biases("dequantize", biases), group_size, bits, stream=stream
            )
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
    return _document(mx, found, "takes mode= ('affine', 'mxfp4', 'mxfp8', 'nvfp4') as mlx >= 0.29 does.")


def _document(mx: Any, found: dict[str, Any], note: str) -> dict[str, Any]:
    for name, fn in found.items():
        original = getattr(mx, name)
        fn.__doc__ = (original.__doc__ or "") + "\n\nmlx-portable: " + note
        fn.__wrapped__ = original
    return found


def _takes(fn: Any, keyword: str) -> bool:
    return keyword in (getattr(fn, "__doc__", None) or "").split("\n", 1)[0]


def routed_wrappers(mx: Any, version: tuple[int, ...]) -> dict[str, Any]:
    """Wrappers for mlx 0.29.0-0.32.1 that route only the calls this mlx gets wrong or lacks."""
    quantize0, dequantize0 = mx.quantize, mx.dequantize
    matmul0, gather0 = mx.quantized_matmul, mx.gather_qmm
    old_encoder = version < (0, 32, 2)
    old_kernels = version < (0, 30, 3)
    no_global = not _takes(quantize0, "global_scale")  # mlx < 0.31.0
    gather_no_global = not _takes(gather0, "global_scale")  # mlx < 0.32.3
    wrong_product = ("mxfp8", "nvfp4") if old_kernels else ()
    found: dict[str, Any] = {}

    def quantize(
        w: Any,
        group_size: int | None = None,
        bits: int | None = None,
        mode: str = "affine",
        *,
        global_scale: Any = None,
        stream: Any = None,
    ) -> Any:
        if (old_encoder and mode in ("mxfp4", "mxfp8")) or (no_global and global_scale is not None):
            group_size, bits = _params("quantize", mode, group_size, bits)
            _no_global("quantize", mode, global_scale)
            with _on(mx, stream):
                return _fp().fp_quantize(w, mode, group_size, bits, global_scale)
        extra = {} if global_scale is None else {"global_scale": global_scale}
        return quantize0(w, group_size, bits, mode=mode, stream=stream, **extra)

    found["quantize"] = quantize

    if no_global:

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
            if global_scale is not None:
                group_size, bits = _params("dequantize", mode, group_size, bits)
                _no_global("dequantize", mode, global_scale)
                _fp_no_biases("dequantize", mode, biases)
                with _on(mx, stream):
                    return _fp().fp_dequantize(w, scales, mode, group_size, bits, dtype, global_scale)
            return dequantize0(w, scales, biases, group_size, bits, mode=mode, dtype=dtype, stream=stream)

        found["dequantize"] = dequantize

    if old_kernels:

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
            if mode in wrong_product:
                group_size, bits = _params("quantized_matmul", mode, group_size, bits)
                _fp_no_biases("quantized_matmul", mode, biases)
                with _on(mx, stream):
                    return _fp().fp_quantized_matmul(x, w, scales, transpose, mode, group_size, bits)
            return matmul0(x, w, scales, biases, transpose, group_size, bits, mode=mode, stream=stream)

        found["quantized_matmul"] = quantized_matmul

    if old_kernels or gather_no_global:

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
            if mode in wrong_product or (gather_no_global and global_scale is not None):
                group_size, bits = _params("gather_qmm", mode, group_size, bits)
                _no_global("gather_qmm", mode, global_scale)
                _fp_no_biases("gather_qmm", mode, biases)
                with _on(mx, stream):
                    return _fp().fp_gather_qmm(
                        x, w, scales, lhs_indices, rhs_indices, transpose, mode, group_size, bits,
                        sorted_indices, global_scale,
                    )  # fmt: skip
            extra = {} if global_scale is None else {"global_scale": global_scale}
            return gather0(
                x, w, scales, biases, lhs_indices, rhs_indices, transpose, group_size, bits, mode=mode,
                sorted_indices=sorted_indices, stream=stream, **extra,
            )  # fmt: skip

        found["gather_qmm"] = gather_qmm

    return _document(
        mx, found, "mxfp4/mxfp8 scales round up, mxfp8/nvfp4 products and global_scale as in mlx >= 0.32.2."
    )
