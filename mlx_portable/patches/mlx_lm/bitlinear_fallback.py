"""``bitlinear_fallback``: BitNet's ``BitLinear`` computes without Metal.

Why: ``mlx_lm.models.bitlinear_layers.BitLinear`` multiplies through a Metal
kernel with no other path, so every BitNet model fails on CUDA, on the CPU,
and on a Mac whose default device is the CPU::

    RuntimeError: [metal_kernel] No Metal back-end.     (mlx >= 0.29; "No GPU back-end." before)

(below mlx 0.32 already at ``import``; ``metal_kernel_lazy_build`` moves that
to the call).  This patch wraps ``BitLinear.execute_matmul_kernel``: where a
Metal kernel can run now (Metal, GPU default device) the original runs
unchanged; elsewhere the ternary matmul of
``mlx_portable.fallbacks.bitlinear`` does (on the CPU the 2-bit
``quantized_matmul`` for decoding and an unpack-then-GEMM for prompts, chosen
by token count; float32 dense on a GPU), with the kernel's float32 sums and
one rounding.

Which: every mlx and every mlx-lm that has ``BitLinear`` (0.31.2 and 0.32.2
in the matrix); applies on CUDA and CPU, and on Metal for the CPU default
device.  Upstream: mlx-lm has no non-Metal BitLinear (ml-explore/mlx-lm
``models/bitlinear_layers.py``).
"""

from __future__ import annotations

from ...registry.registry import Patch, PatchContext, Verdict, skip
from .kernels_checks import check_callable, has_own_fallback

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["PATCHES", "bitlinear_fallback"]

MODULE = "mlx_lm.models.bitlinear_layers"


def _expected(self: Any, x: Any, packed_weights: Any) -> Any:  # the signature patched
    raise NotImplementedError


def _check(ctx: PatchContext) -> Verdict | None:
    module = ctx.module
    cls = getattr(module, "BitLinear", None)
    if cls is None:
        return skip(f"{MODULE} has no BitLinear class in this mlx-lm")
    verdict = check_callable(cls, "execute_matmul_kernel", _expected, f"{MODULE}.BitLinear")
    if verdict is not None:
        return verdict
    return has_own_fallback(cls.execute_matmul_kernel, "BitLinear.execute_matmul_kernel")


def _apply(ctx: PatchContext) -> None:
    from ...fallbacks import dispatch
    from ...fallbacks.bitlinear import bitlinear_matmul

    module = ctx.module
    assert module is not None  # a deferred patch always gets its module
    cls = module.BitLinear

    def routed(original: Any) -> Any:
        def execute_matmul_kernel(self: Any, x: Any, packed_weights: Any) -> Any:
            if dispatch.metal_kernels_usable():
                return original(self, x, packed_weights)
            return bitlinear_matmul(
                x,
                packed_weights,
                self.weight_scale,
                out_features=self.out_features,
                invert_weight_scales=self.invert_weight_scales,
                cache_owner=self,
            )

        return execute_matmul_kernel

    ctx.wrap(cls, "execute_matmul_kernel", routed)


bitlinear_fallback = Patch(
    name="bitlinear_fallback",
    summary="BitNet's BitLinear uses a pure-MLX ternary matmul where its Metal kernel cannot run",
    why=(
        "BitLinear calls a Metal kernel with no fallback: "
        "'[metal_kernel] No Metal back-end.' on CUDA and CPU."
    ),
    apply=_apply,
    check=_check,
    when=f"activate:{MODULE}",
    upstream="ml-explore/mlx-lm mlx_lm/models/bitlinear_layers.py (Metal only)",
)

PATCHES = (bitlinear_fallback,)
