"""FP8 (e4m3) conversion in plain mlx ops, bit for bit as mlx >= 0.30.6 computes it.

mlx's ``to_fp8`` (``mlx/backend/cpu/unary_ops.h``, ``ToFP8``) is not the
OCP rounding of every library: it works on the float32 bits of the input
(float16 and bfloat16 are widened first, exactly), rounds to nearest even,
and *saturates*: every magnitude from 464 up -- infinities and NaN included --
becomes ``0x7E`` (448) with the input's sign bit.  ``from_fp8`` decodes
``0x80`` to -0.0 and the two NaN bytes ``0x7F`` / ``0xFF`` to NaNs whose bit
patterns the 0.32.4 CPU wheel fixes per dtype (float32 ``0x7FF00000`` /
``0xFFF00000``, float16 ``0x7D00`` / ``0xFD00``, bfloat16 ``0x7FC0`` for
both); they are reproduced here, since a NaN's payload survives a later
``view`` and so is observable.

The encoder below repeats ``ToFP8`` step by step on ``uint32`` views: the
subnormal branch adds 2**14 in float32 so that the float unit rounds to a
multiple of 2**-9, the normal branch adds the exponent rebias plus
``0x7FFFF`` and the odd bit of the kept mantissa (round half to even).  The
decoder is a 256-entry table of bit patterns per dtype (every finite e4m3
value is exact in float32, float16 and bfloat16); other float dtypes are cast
from the float32 table.
Both were checked against mlx 0.32.4 for every byte and every float16 and
bfloat16 bit pattern (``tests/test_shim_fp8_conversion.py``).

This module imports ``mlx.core``; only the ``fp8_conversion`` and
``quantize_modes`` patches import it, after mlx is loaded.
"""

from __future__ import annotations

import math
import struct

import mlx.core as mx

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["fp8_values", "from_fp8", "to_fp8"]

#: The NaN bit patterns mlx 0.32.4 (CPU) decodes 0x7F and 0xFF to, per dtype.
_NAN_BITS = {"float32": (0x7FF00000, 0xFFF00000), "float16": (0x7D00, 0xFD00), "bfloat16": (0x7FC0, 0x7FC0)}


def fp8_values() -> list[float]:
    """The 256 values the e4m3 bytes stand for (index = byte; 0x7F and 0xFF are NaN)."""
    values = []
    for byte in range(128):
        exponent, mantissa = byte >> 3, byte & 7
        if byte == 0x7F:
            values.append(math.nan)
        elif exponent == 0:
            values.append(mantissa * 2.0**-9)
        else:
            values.append((1.0 + mantissa / 8.0) * 2.0 ** (exponent - 7))
    return values + [-v for v in values]


def _bit_table(name: str) -> list[int]:
    fmt, width = ("<f", "<I") if name != "float16" else ("<e", "<H")
    bits = [struct.unpack(width, struct.pack(fmt, v))[0] for v in fp8_values()]
    if name == "bfloat16":
        bits = [b >> 16 for b in bits]  # every finite value fits in bfloat16's 8 significant bits
    bits[0x7F], bits[0xFF] = _NAN_BITS[name]
    return bits


_TABLES: dict[str, Any] = {}


def _table(dtype: Any) -> tuple[Any, Any]:
    name = {mx.float32: "float32", mx.float16: "float16", mx.bfloat16: "bfloat16"}.get(dtype, "float32")
    if name not in _TABLES:
        _TABLES[name] = mx.array(_bit_table(name), dtype=mx.uint32 if name == "float32" else mx.uint16)
    return _TABLES[name], getattr(mx, name)


def _u32(value: int) -> mx.array:
    return mx.array(value % 2**32, dtype=mx.uint32)


def from_fp8(x: mx.array, dtype: Any = None, *, stream: Any = None) -> mx.array:
    """Decode e4m3 bytes (``uint8``) to ``dtype`` (default ``bfloat16``), as mlx >= 0.30.6."""
    dtype = mx.bfloat16 if dtype is None else dtype
    if not isinstance(x, mx.array) or x.dtype != mx.uint8:
        got = x.dtype if isinstance(x, mx.array) else type(x).__name__
        raise ValueError(f"[from_fp8] Input must have type uint8 but x.dtype() == {got}.")
    if not mx.issubdtype(dtype, mx.floating):
        raise ValueError(f"[from_fp8] Only real floating types are supported but dtype == {dtype}.")
    with mx.stream(stream if stream is not None else mx.default_stream(mx.default_device())):
        bits, table_dtype = _table(dtype)
        return mx.view(mx.take(bits, x.astype(mx.uint32)), table_dtype).astype(dtype)


def to_fp8(x: mx.array, *, stream: Any = None) -> mx.array:
    """Encode a floating array to e4m3 bytes (``uint8``), rounding and saturating as mlx >= 0.30.6."""
    if not isinstance(x, mx.array) or not mx.issubdtype(x.dtype, mx.floating):
        got = x.dtype if isinstance(x, mx.array) else type(x).__name__
        raise ValueError(f"[to_fp8] Only real floating types are supported but x.dtype() == {got}.")
    with mx.stream(stream if stream is not None else mx.default_stream(mx.default_device())):
        bits = mx.view(x.astype(mx.float32), mx.uint32)
        sign = mx.bitwise_and(bits, _u32(0x80000000))
        magnitude = mx.bitwise_xor(bits, sign)
        denorm = _u32(141 << 23)
        # Subnormal results: let the float adder round to a multiple of 2**-9.
        low_sum = mx.view(mx.view(magnitude, mx.float32) + mx.view(denorm, mx.float32), mx.uint32)
        low = mx.bitwise_and(low_sum - denorm, _u32(0xFF))
        # Normal results: rebias the exponent, round half to even on bit 20.
        odd = mx.bitwise_and(mx.right_shift(magnitude, _u32(20)), _u32(1))
        high = magnitude + _u32(((7 - 127) << 23) + 0x7FFFF) + odd
        high = mx.bitwise_and(mx.right_shift(high, _u32(20)), _u32(0xFF))
        out = mx.where(magnitude < _u32(121 << 23), low, high)
        out = mx.where(magnitude >= _u32(543 << 21), _u32(0x7E), out)
        out = mx.bitwise_or(out, mx.right_shift(sign, _u32(24)))
        return out.astype(mx.uint8)
