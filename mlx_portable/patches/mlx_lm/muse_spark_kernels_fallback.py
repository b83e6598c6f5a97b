"""``muse_spark_kernels_fallback``: the fused kernels of ``mlx_lm.kernels`` compute without Metal.

Why: mlx-lm 0.32.1 added ``mlx_lm.kernels`` (``qk_norm``, ``qk_norm_rope``,
``rms_norm_sigmoid_gate``, ``norm_add_norm``, ``pre_norm``,
``post_expert_norm_combine``, ``expert_routing``), Metal kernels with no other
path, used by every layer of Muse Spark (``mlx_lm.models.muse_spark``).  On
CUDA, on the CPU and on a Mac whose default device is the CPU the model fails::

    RuntimeError: [metal_kernel] No Metal back-end.     (mlx >= 0.29; "No GPU back-end." before)

(below mlx 0.32 already at ``import``; ``metal_kernel_lazy_build`` moves that
to the call).  This patch replaces each function, in ``mlx_lm.kernels``, in
the module that defines it and in every already-imported ``mlx_lm`` module
that imported it by name, with one that calls the original where a Metal
kernel can run now, and ``mlx_portable.fallbacks.muse_kernels`` elsewhere
(same signature, the kernels' float32 math and roundings).

Which: mlx-lm >= 0.32.1 (the package does not exist before: skipped), every
mlx; CUDA and CPU, and Metal with the CPU as default device.
Upstream: ml-explore/mlx-lm ``mlx_lm/kernels/`` (Metal only).
"""

from __future__ import annotations

import sys

from ...registry.registry import Patch, PatchContext, Verdict, skip
from .kernels_checks import bind_consumers, check_callable, has_own_fallback, metal_routed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["FUNCTIONS", "PATCHES", "muse_spark_kernels_fallback"]

MODULE = "mlx_lm.kernels"

#: The functions of ``mlx_lm.kernels`` this patch covers.
FUNCTIONS: tuple[str, ...] = (
    "expert_routing",
    "norm_add_norm",
    "post_expert_norm_combine",
    "pre_norm",
    "qk_norm",
    "qk_norm_rope",
    "rms_norm_sigmoid_gate",
)


def _check(ctx: PatchContext) -> Verdict | None:
    from ...fallbacks import muse_kernels

    package = ctx.module
    problems = []
    for name in FUNCTIONS:
        verdict = check_callable(package, name, getattr(muse_kernels, name), MODULE)
        if verdict is None:
            verdict = has_own_fallback(getattr(package, name), f"{MODULE}.{name}")
        if verdict is not None:
            problems.append(verdict)
    if len(problems) == len(FUNCTIONS) and len({v.status for v in problems}) == 1:
        return Verdict(problems[0].status, "; ".join(v.reason for v in problems))
    if problems:
        return skip("; ".join(v.reason for v in problems))
    return None


def _apply(ctx: PatchContext) -> None:
    from ...fallbacks import dispatch, muse_kernels

    package = ctx.module
    replacements: dict[int, tuple[str, Any]] = {}
    for name in FUNCTIONS:
        original = getattr(package, name)
        routed = metal_routed(original, getattr(muse_kernels, name), dispatch.usable_now)
        replacements[id(original)] = (name, routed)
        # The package attribute first: consumers imported later copy it.
        ctx.set_attr(package, name, routed)
        defining = sys.modules.get(getattr(original, "__module__", "") or "")
        if defining is not None and getattr(defining, name, None) is original:
            ctx.set_attr(defining, name, routed)
    bind_consumers(ctx, "mlx_lm", replacements)


muse_spark_kernels_fallback = Patch(
    name="muse_spark_kernels_fallback",
    summary="mlx_lm.kernels (Muse Spark's fused norms, RoPE, routing) use pure-MLX code off Metal",
    why=(
        "mlx_lm.kernels are Metal kernels with no fallback: "
        "'[metal_kernel] No Metal back-end.' on CUDA and CPU."
    ),
    apply=_apply,
    check=_check,
    when=f"activate:{MODULE}",
    upstream="ml-explore/mlx-lm mlx_lm/kernels/ (Metal only, since 0.32.1)",
)

PATCHES = (muse_spark_kernels_fallback,)
