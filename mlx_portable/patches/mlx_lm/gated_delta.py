"""``gated_delta_kernel_fallback``: ``gated_delta_kernel`` computes without Metal.

Why: ``mlx_lm.models.gated_delta`` builds its Metal kernels through a
factory that returns ``None`` when Metal is not available at import, so
calling ``gated_delta_kernel`` (or ``gated_delta_kernel_unpacked``) on CUDA,
on the CPU, or on a Mac whose default device was the CPU at import fails::

    TypeError: 'NoneType' object is not callable

mlx-lm's own models reach it only through ``gated_delta_update``, which
checks for Metal first and otherwise runs ``gated_delta_ops`` (a per-token
loop); code that calls the kernel function directly (tests, custom layers,
exo-style engines) breaks.  This patch replaces both functions with ones
that call the original where its kernels exist and a Metal kernel can run
now, and otherwise ``mlx_portable.fallbacks.gated_delta.gated_delta_kernel``:
the kernel's semantics exactly (masked steps leave the state alone and output
zeros; y in q's dtype, the state in its own), chunked for scalar gates.

Which: every mlx; mlx-lm with ``gated_delta_kernel`` (0.31.2 and 0.32.2 in the
matrix); CUDA and CPU, and Metal with the CPU default device.
Upstream: ml-explore/mlx-lm ``mlx_lm/models/gated_delta.py``.

``gated_delta_ops_fastest`` replaces mlx-lm's ``gated_delta_ops``, the loop
the models run off Metal, by
``mlx_portable.fallbacks.gated_delta.gated_delta_ops``: without a mask it
takes the fastest route this mlx has (``choose_route``: the fast op, the
chunked form or the per-token step, by measured crossovers); with one it
keeps mlx-lm's loop semantics.  On mlx < 0.29 the loop's compiled step gets
``mask=None``, which those versions reject; the general ``compile_constants``
patch covers that (it replaced ``gated_delta_ops_compile_none``), and this
route never hands ``None`` to a compiled function either.
"""

from __future__ import annotations

from ...registry.registry import Patch, PatchContext, Verdict, skip
from .kernels_checks import bind_consumers, check_callable, kernels_usable, route_functions

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["PATCHES", "gated_delta_kernel_fallback", "gated_delta_ops_fastest"]

MODULE = "mlx_lm.models.gated_delta"
#: The kernel functions and the module-level kernels each one calls.
_TARGETS = {
    "gated_delta_kernel": ("_gated_delta_kernel",),
    "gated_delta_kernel_unpacked": ("_gated_delta_kernel",),
}


def _expected(q: Any, k: Any, v: Any, g: Any, beta: Any, state: Any, mask: Any = None) -> Any:
    raise NotImplementedError  # the signature patched


def _present(module: Any) -> list[str]:
    return [name for name in _TARGETS if hasattr(module, name)]


def _check(ctx: PatchContext) -> Verdict | None:
    names = _present(ctx.module)
    if "gated_delta_kernel" not in names:
        return skip(f"{MODULE}.gated_delta_kernel does not exist in this mlx-lm")
    for name in names:
        verdict = check_callable(ctx.module, name, _expected, MODULE)
        if verdict is not None:
            return verdict
    return None


def _apply(ctx: PatchContext) -> None:
    from ...fallbacks import dispatch
    from ...fallbacks.gated_delta import gated_delta_kernel

    module = ctx.module
    routes = [
        (name, gated_delta_kernel, kernels_usable(module, _TARGETS[name], dispatch.usable_now))
        for name in _present(module)
    ]
    route_functions(ctx, module, routes)


gated_delta_kernel_fallback = Patch(
    name="gated_delta_kernel_fallback",
    summary="mlx-lm's gated_delta_kernel runs a chunked pure-MLX gated delta rule where Metal cannot",
    why="Off Metal the kernel factory returns None: \"TypeError: 'NoneType' object is not callable\".",
    apply=_apply,
    check=_check,
    when=f"activate:{MODULE}",
    upstream="ml-explore/mlx-lm mlx_lm/models/gated_delta.py",
)


def _ops_expected(
    q: Any, k: Any, v: Any, g: Any, beta: Any, state: Any = None, mask: Any = None
) -> Any:  # the signature patched
    raise NotImplementedError


def _ops_apply(ctx: PatchContext) -> None:
    from ...fallbacks.gated_delta import gated_delta_ops

    module = ctx.module
    assert module is not None  # a deferred patch always gets its module
    original = module.gated_delta_ops

    def fastest(_original: Any) -> Any:
        def routed(q: Any, k: Any, v: Any, g: Any, beta: Any, state: Any = None, mask: Any = None) -> Any:
            return gated_delta_ops(q, k, v, g, beta, state, mask)

        return routed

    routed = ctx.wrap(module, "gated_delta_ops", fastest)
    bind_consumers(ctx, "mlx_lm", {id(original): ("gated_delta_ops", routed)})


def _fastest_check(ctx: PatchContext) -> Verdict | None:
    return check_callable(ctx.module, "gated_delta_ops", _ops_expected, MODULE)


gated_delta_ops_fastest = Patch(
    name="gated_delta_ops_fastest",
    summary="mlx-lm's gated_delta_ops takes the fastest route (mx.fast.gated_delta_update, chunked form)",
    why=(
        "Speed, not an error: off Metal, gated_delta_update (Qwen3-Next, Qwen3.5, Kimi-Linear) runs "
        "gated_delta_ops, one compiled step per token from Python; unmasked calls now go to "
        "mx.fast.gated_delta_update (mlx >= 0.32.3, ~0.8x the loop's time, same float32 values) or the "
        "chunked form (older mlx, longer inputs).  Masked calls keep mlx-lm's loop."
    ),
    apply=_ops_apply,
    check=_fastest_check,
    when=f"activate:{MODULE}",
    upstream="ml-explore/mlx-lm mlx_lm/models/gated_delta.py (loop off Metal)",
)

PATCHES = (gated_delta_kernel_fallback, gated_delta_ops_fastest)
