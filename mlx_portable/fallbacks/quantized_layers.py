"""mlx >= 0.29's quantization-mode API for ``mlx.nn`` on older mlx.

The ``quantize_modes`` patch installs these functions as methods of mlx's
own ``QuantizedLinear``, ``QuantizedEmbedding``, ``Linear`` and ``Embedding``
classes (so ``isinstance`` checks and subclasses keep working) and as
``mlx.nn.quantize``.  They are mlx 0.32.4's Python code for the same
methods; ``quantize_input=True`` needs ``QQLinear`` and ``mx.qqmm`` (mlx >=
0.30.1) and raises ``NotImplementedError`` naming that version before.  The array
work goes through ``mx.quantize`` / ``mx.dequantize`` / ``mx.quantized_matmul``,
which the same patch widens to take ``mode=``.

Imports ``mlx.core`` and ``mlx.nn``: only the patch imports this module, once
``mlx.nn`` is loaded.
"""

from __future__ import annotations

import math
from typing import Any

import mlx.core as mx
import mlx.nn as _nn
from mlx.utils import tree_map_with_path

nn: Any = _nn  # mlx.nn ships no type information

__all__ = ["METHODS", "defaults_for_mode", "quantize"]

_MODE_DEFAULTS = {"affine": (64, 4), "mxfp4": (32, 4), "nvfp4": (16, 4), "mxfp8": (32, 8)}
_QQ_VERSION = "0.30.1"


def defaults_for_mode(mode: str, group_size: int | None, bits: int | None) -> tuple[int, int]:
    """The group size and bits a mode uses when not given (mlx 0.32.4's table)."""
    if mode not in _MODE_DEFAULTS:
        raise ValueError(f"Invalid quantization mode '{mode}'. Valid modes are: {', '.join(_MODE_DEFAULTS)}.")
    default_group_size, default_bits = _MODE_DEFAULTS[mode]
    return group_size or default_group_size, bits or default_bits


def _no_quantize_input(what: str) -> NotImplementedError:
    return NotImplementedError(
        f"{what}: quantize_input=True needs nn.QQLinear and mx.qqmm, which arrive in mlx {_QQ_VERSION}; "
        f"this is mlx {getattr(mx, '__version__', '?')}. Upgrade mlx (pip install -U 'mlx[cpu]' or "
        "the extra for your backend), or quantize the weights only."
    )


def _quantize_weight(layer: Any, weight: mx.array, group_size: int, bits: int, mode: str) -> None:
    layer.weight, layer.scales, *biases = mx.quantize(weight, group_size, bits, mode=mode)
    layer.biases = biases[0] if biases else None


def quantize(
    model: Any,
    group_size: int | None = None,
    bits: int | None = None,
    *,
    mode: str = "affine",
    quantize_input: bool = False,
    class_predicate: Any = None,
) -> None:
    """Quantize the sub-modules of ``model`` in place (mlx >= 0.29's ``nn.quantize``; mlx-portable)."""
    if quantize_input and not hasattr(nn, "QQLinear"):
        raise _no_quantize_input("nn.quantize")
    predicate = class_predicate or (lambda _, m: hasattr(m, "to_quantized"))

    def _maybe_quantize(path: str, m: Any) -> Any:
        if bool_or_params := predicate(path, m):
            if hasattr(m, "to_quantized"):
                if isinstance(bool_or_params, bool):
                    kwargs: dict[str, Any] = {"group_size": group_size, "bits": bits, "mode": mode}
                    if quantize_input:
                        kwargs["quantize_input"] = True
                    return m.to_quantized(**kwargs)
                if isinstance(bool_or_params, dict):
                    params = dict(bool_or_params)
                    if "quantize_input" in params and not params["quantize_input"]:
                        params.pop("quantize_input")
                    return m.to_quantized(**params)
                raise ValueError(
                    "``class_predicate`` must return a bool"
                    " or a dict of parameters to pass to ``to_quantized``"
                )
            raise ValueError(f"Unable to quantize model of type {type(m)}")
        return m

    leaves = tree_map_with_path(_maybe_quantize, model.leaf_modules(), is_leaf=nn.Module.is_module)
    model.update_modules(leaves)


# -- QuantizedLinear ----------------------------------------------------------
def _linear_init(
    self: Any,
    input_dims: int,
    output_dims: int,
    bias: bool = True,
    group_size: int | None = None,
    bits: int | None = None,
    mode: str = "affine",
) -> None:
    nn.Module.__init__(self)
    self.group_size, self.bits = defaults_for_mode(mode, group_size, bits)
    self.mode = mode
    scale = math.sqrt(1 / input_dims)
    weight = mx.random.uniform(low=-scale, high=scale, shape=(output_dims, input_dims))
    _quantize_weight(self, weight, self.group_size, self.bits, mode)
    if bias:
        self.bias = mx.zeros((output_dims,))
    self.freeze()


def _linear_call(self: Any, x: mx.array) -> mx.array:
    x = mx.quantized_matmul(
        x,
        self["weight"],
        scales=self["scales"],
        biases=self.get("biases"),
        transpose=True,
        group_size=self.group_size,
        bits=self.bits,
        mode=_mode(self),
    )
    if "bias" in self:
        x = x + self["bias"]
    return x


def _linear_repr(self: Any) -> str:
    out_dims, in_dims = self.weight.shape
    in_dims = (in_dims * 32) // self.bits
    return (
        f"input_dims={in_dims}, output_dims={out_dims}, bias={'bias' in self}, "
        f"group_size={self.group_size}, bits={self.bits}, mode={_mode(self)}"
    )


def _from_linear(
    cls: Any, linear_layer: Any, group_size: int | None = None, bits: int | None = None, mode: str = "affine"
) -> Any:
    output_dims, input_dims = linear_layer.weight.shape
    ql = cls(input_dims, output_dims, False, group_size, bits, mode=mode)
    _quantize_weight(ql, linear_layer.weight, ql.group_size, ql.bits, mode)
    if "bias" in linear_layer:
        ql.bias = linear_layer.bias
    return ql


# -- QuantizedEmbedding -------------------------------------------------------
def _embedding_init(
    self: Any,
    num_embeddings: int,
    dims: int,
    group_size: int | None = None,
    bits: int | None = None,
    mode: str = "affine",
) -> None:
    nn.Module.__init__(self)
    self.group_size, self.bits = defaults_for_mode(mode, group_size, bits)
    self.mode = mode
    scale = math.sqrt(1 / dims)
    weight = mx.random.normal(shape=(num_embeddings, dims), scale=scale)
    _quantize_weight(self, weight, self.group_size, self.bits, mode)
    self.num_embeddings = num_embeddings
    self.dims = dims
    self.freeze()


def _embedding_call(self: Any, x: mx.array) -> mx.array:
    biases = self.get("biases")
    return mx.dequantize(
        self["weight"][x],
        scales=self["scales"][x],
        biases=biases[x] if biases is not None else None,
        group_size=self.group_size,
        bits=self.bits,
        mode=_mode(self),
    )


def _embedding_as_linear(self: Any, x: mx.array) -> mx.array:
    return mx.quantized_matmul(
        x,
        self["weight"],
        scales=self["scales"],
        biases=self.get("biases"),
        transpose=True,
        group_size=self.group_size,
        bits=self.bits,
        mode=_mode(self),
    )


def _embedding_repr(self: Any) -> str:
    return (
        f"{self.num_embeddings}, {self.dims}, "
        f"group_size={self.group_size}, bits={self.bits}, mode={_mode(self)}"
    )


def _from_embedding(
    cls: Any,
    embedding_layer: Any,
    group_size: int | None = None,
    bits: int | None = None,
    mode: str = "affine",
) -> Any:
    embedding_dims, dims = embedding_layer.weight.shape
    ql = cls(embedding_dims, dims, group_size, bits, mode=mode)
    _quantize_weight(ql, embedding_layer.weight, ql.group_size, ql.bits, mode)
    return ql


# -- Linear / Embedding -------------------------------------------------------
def _linear_to_quantized(
    self: Any,
    group_size: int | None = None,
    bits: int | None = None,
    mode: str = "affine",
    quantize_input: bool = False,
) -> Any:
    if quantize_input:
        if not hasattr(nn, "QQLinear"):
            raise _no_quantize_input("Linear.to_quantized")
        if mode not in ("nvfp4", "mxfp8"):
            raise ValueError(
                f"Quantized activations are only supported for 'nvfp4' and 'mxfp8' modes, got {mode}."
            )
        return nn.QQLinear.from_linear(self, group_size, bits, mode=mode)
    return nn.QuantizedLinear.from_linear(self, group_size, bits, mode=mode)


def _embedding_to_quantized(
    self: Any,
    group_size: int | None = None,
    bits: int | None = None,
    mode: str = "affine",
    quantize_input: bool = False,
) -> Any:
    if quantize_input:
        raise _no_quantize_input("Embedding.to_quantized")
    return nn.QuantizedEmbedding.from_embedding(self, group_size, bits, mode=mode)


def _mode(layer: Any) -> str:
    # Layers built before the patch was applied have no mode: they are affine.
    return str(getattr(layer, "mode", "affine"))


#: (class, attribute, replacement) installed by the ``quantize_modes`` patch.
METHODS: tuple[tuple[Any, str, Any], ...] = (
    (nn.QuantizedLinear, "mode", "affine"),  # for layers built before the patch
    (nn.QuantizedEmbedding, "mode", "affine"),
    (nn.QuantizedLinear, "__init__", _linear_init),
    (nn.QuantizedLinear, "__call__", _linear_call),
    (nn.QuantizedLinear, "_extra_repr", _linear_repr),
    (nn.QuantizedLinear, "from_linear", classmethod(_from_linear)),
    (nn.QuantizedEmbedding, "__init__", _embedding_init),
    (nn.QuantizedEmbedding, "__call__", _embedding_call),
    (nn.QuantizedEmbedding, "as_linear", _embedding_as_linear),
    (nn.QuantizedEmbedding, "_extra_repr", _embedding_repr),
    (nn.QuantizedEmbedding, "from_embedding", classmethod(_from_embedding)),
    (nn.Linear, "to_quantized", _linear_to_quantized),
    (nn.Embedding, "to_quantized", _embedding_to_quantized),
)
