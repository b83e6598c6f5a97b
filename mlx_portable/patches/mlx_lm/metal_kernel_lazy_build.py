"""``metal_kernel_lazy_build``: building a Metal kernel without Metal no longer raises.

Why: mlx-lm builds some Metal kernels when a module is imported
(``mlx_lm.models.bitlinear_layers`` for BitNet, every module of
``mlx_lm.kernels`` for Muse Spark).  Below mlx 0.32 ``mx.fast.metal_kernel``
raises as soon as it is *built* on a machine without Metal, so the import
itself dies and no fallback can be put in place::

    RuntimeError: [metal_kernel] No Metal back-end.      (mlx 0.29 - 0.31)
    RuntimeError: [metal_kernel] No GPU back-end.        (mlx 0.26 - 0.28)

From mlx 0.32 building succeeds and the *call* raises the same error.  This
patch gives older mlx that behaviour: off Metal, ``metal_kernel`` returns a
kernel object whose call raises the very error the build would have raised.
The kernel-fallback shims (``bitlinear_fallback``, ``muse_spark_kernels_fallback``, ...)
then route the calls to pure-MLX code.

Which: mlx < 0.32.0 without Metal (CUDA and CPU wheels).  Obsolete where
Metal is available (kernels build) or where building no longer raises.
Upstream: ml-explore/mlx 0.32.0 moved the check from build to call.
"""

from __future__ import annotations

from ...registry.registry import Patch, PatchContext, Verdict, obsolete

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["PATCHES", "metal_kernel_lazy_build"]

_PROBE_SOURCE = "out[0] = inp[0];"


def _probe(mx: Any) -> Exception | None:
    """The error building a trivial kernel raises here, or ``None``."""
    try:
        mx.fast.metal_kernel(
            name="mlx_portable_probe", input_names=["inp"], output_names=["out"], source=_PROBE_SOURCE
        )
    except RuntimeError as exc:
        return exc
    return None


def _check(ctx: PatchContext) -> Verdict | None:
    mx = ctx.mx
    fast = getattr(mx, "fast", None)
    if fast is None or not hasattr(fast, "metal_kernel"):
        return obsolete("this mlx has no mx.fast.metal_kernel")
    if mx.metal.is_available():
        return obsolete("Metal is available: kernels build")
    if _probe(mx) is None:
        return obsolete(f"mlx {ctx.mlx_version} builds Metal kernels without Metal (the call raises)")
    return None


class UnbuiltMetalKernel:
    """Stands for a Metal kernel that could not be built; calling it raises the build error."""

    def __init__(self, name: str, error: RuntimeError) -> None:
        self.name = name
        self._message = str(error)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(self._message)

    def __repr__(self) -> str:
        return f"<UnbuiltMetalKernel {self.name!r}: {self._message}>"


def _apply(ctx: PatchContext) -> None:
    def lazy(original: Any) -> Any:
        def metal_kernel(*args: Any, **kwargs: Any) -> Any:
            try:
                return original(*args, **kwargs)
            except RuntimeError as exc:
                if "back-end" not in str(exc):
                    raise  # a real build error (bad arguments), not a missing backend
                return UnbuiltMetalKernel(str(kwargs.get("name", args[0] if args else "?")), exc)

        return metal_kernel

    ctx.wrap(ctx.mx.fast, "metal_kernel", lazy)


metal_kernel_lazy_build = Patch(
    name="metal_kernel_lazy_build",
    summary="mx.fast.metal_kernel builds without Metal and raises when called (as mlx >= 0.32)",
    why=(
        "Below mlx 0.32, building a Metal kernel off Metal raises '[metal_kernel] No Metal back-end.' "
        "('No GPU back-end.' up to 0.28), so importing mlx-lm's BitNet and Muse Spark modules fails "
        "before any fallback can apply."
    ),
    apply=_apply,
    check=_check,
    mlx_versions="<0.32.0",
    backends=frozenset({"cuda", "cpu"}),
    upstream="ml-explore/mlx 0.32.0 (metal_kernel constructible without Metal)",
)

PATCHES = (metal_kernel_lazy_build,)
