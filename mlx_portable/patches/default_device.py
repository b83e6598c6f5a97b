"""``default_device``: make the chosen backend mlx's default device.

Why: ``MLX_PORTABLE_BACKEND=cpu`` on a CUDA or Metal machine must actually run
on the CPU; mlx itself always defaults to the GPU when its wheel has one.  A
no-op (obsolete) when mlx's default device already is the chosen backend's.
All mlx versions, all backends.
"""

from __future__ import annotations

from ..registry.registry import Patch, PatchContext, Verdict, obsolete

__all__ = ["PATCHES", "default_device"]


def _wanted(ctx: PatchContext) -> object:
    assert ctx.backend is not None  # the check answers "obsolete" before a backend is chosen
    return getattr(ctx.mx, ctx.backend.device_type)  # mx.gpu or mx.cpu


def _check(ctx: PatchContext) -> Verdict | None:
    if ctx.backend is None:
        return obsolete("no backend chosen yet")
    mx = ctx.mx
    if mx.default_device() == _wanted(ctx):
        return obsolete(f"mlx's default device is already {mx.default_device()}")
    return None


def _apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    previous = mx.default_device()
    mx.set_default_device(_wanted(ctx))
    ctx.on_revert(lambda c: c.mx.set_default_device(previous))


default_device = Patch(
    name="default_device",
    summary="sets mlx's default device to the chosen backend's device",
    why="MLX_PORTABLE_BACKEND=cpu on a GPU machine must compute on the CPU; mlx defaults to the GPU.",
    apply=_apply,
    check=_check,
)

PATCHES = (default_device,)
