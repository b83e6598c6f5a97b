"""``fp8_conversion``: ``mx.from_fp8`` / ``mx.to_fp8`` (e4m3) as mlx 0.32.4 has them.

Why: mlx-lm 0.32's FP8 checkpoints (DeepSeek V3/V3.2/V4.1, MiniMax,
Mistral 4, MiMo-V2-Flash: ``sanitize`` decodes ``weight_scale_inv`` blocks)
and DeepSeek V4.1's activation quantizer call ``mx.from_fp8`` /
``mx.to_fp8``, which mlx added in 0.30.x.  Below that::

    AttributeError: module 'mlx.core' has no attribute 'from_fp8'

And from 0.30.x up to 0.32.2 ``from_fp8`` decodes the e4m3 NaN bytes ``0x7F``
/ ``0xFF`` to +-480.0 instead of NaN (fixed in 0.32.3), so a checkpoint's NaN
turns into a large finite weight there.

Which: mlx < 0.32.3, every backend.  Below 0.30.x both functions are added;
from then on only ``from_fp8`` is replaced (``to_fp8`` already agrees bit
for bit with 0.32.4 there).

What: :mod:`mlx_portable.fallbacks.fp8`, plain mlx ops, bit-identical to mlx
0.32.4's CPU results for all 256 bytes into float32/float16/bfloat16 (NaN
payloads included) and for every float16 and bfloat16 input, and sampled
float32 inputs, of ``to_fp8`` (round to nearest even, saturation to 448 for
everything from 464 up including inf and NaN, subnormals).

Upstream: ml-explore/mlx#2985 (``to_fp8``/``from_fp8`` exposed in Python).
"""

from __future__ import annotations

from ..registry.registry import Patch, obsolete

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext, Verdict

__all__ = ["PATCHES", "fp8_conversion"]


def _from_fp8(x: Any, dtype: Any = None, *, stream: Any = None) -> Any:
    """Convert the array from fp8 (e4m3, ``uint8``) to another floating-point type (default bfloat16).

    mlx-portable's stand-in for mlx 0.32.4's ``mx.from_fp8`` (same results, bit for bit).
    """
    from ..fallbacks import fp8

    return fp8.from_fp8(x, dtype, stream=stream)


def _to_fp8(x: Any, *, stream: Any = None) -> Any:
    """Convert the array to fp8 (e4m3, ``uint8``) from another floating-point type.

    mlx-portable's stand-in for mlx 0.32.4's ``mx.to_fp8`` (same results, bit for bit).
    """
    from ..fallbacks import fp8

    return fp8.to_fp8(x, stream=stream)


def _release(ctx: PatchContext) -> tuple[int, ...]:
    # A plain tuple, not packaging's Version: this check runs on ``import mlx_portable``.
    return tuple(int(p) for p in ctx.mlx_version.split(".")[:3] if p.isdigit())


def _check(ctx: PatchContext) -> Verdict | None:
    if hasattr(ctx.mx, "from_fp8") and _release(ctx) >= (0, 32, 3):
        return obsolete(
            f"mlx {ctx.mlx_version} has mx.from_fp8/to_fp8 and decodes NaN bytes (fixed in 0.32.3)"
        )
    return None


def _apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    ctx.set_attr(mx, "from_fp8", _from_fp8)
    if not hasattr(mx, "to_fp8"):
        ctx.set_attr(mx, "to_fp8", _to_fp8)


fp8_conversion = Patch(
    name="fp8_conversion",
    summary="mx.from_fp8/mx.to_fp8 (e4m3) as mlx 0.32.4 computes them (added below 0.30; NaN bytes decoded)",
    why=(
        "mlx-lm 0.32's FP8 checkpoints call mx.from_fp8: AttributeError: module 'mlx.core' has no attribute "
        "'from_fp8' on mlx < 0.30; mlx 0.30-0.32.2 decode the e4m3 NaN byte 0x7F to 480.0."
    ),
    apply=_apply,
    check=_check,
    mlx_versions="<0.32.3",
    when="import",
    upstream="https://github.com/ml-explore/mlx/pull/2985",
)

PATCHES = (fp8_conversion,)
