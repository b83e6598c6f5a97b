"""``wired_limit``: ``mx.set_wired_limit`` is a no-op where there is no wired memory.

Why: only Metal has wired (resident) memory, and only computation on the GPU
uses it.  When mlx-portable runs a Mac on the CPU (``MLX_PORTABLE_BACKEND=cpu``,
or the user's ``mx.set_default_device(mx.cpu)``), Metal's
``set_wired_limit`` still wires GPU memory that nothing uses, and raises for
a limit taken from the wrong place::

    ValueError: [metal::set_wired_limit] Setting a wired limit larger than
    the maximum working set size is not allowed.

With this patch ``mx.set_wired_limit`` and the deprecated
``mx.metal.set_wired_limit`` return 0 without any effect unless the backend
is Metal *and* the GPU is the default device at the time of the call; there
they call mlx's own function unchanged.  Bad arguments still reach mlx's
function, so they fail as they always did.

Which: every mlx version, Metal wheels only.  Wheels without Metal (CPU,
CUDA) already return 0 without effect (``set_wired_limit`` is ``return 0``
in mlx's CUDA and no-GPU allocators from 0.26 to 0.32), so there the patch is
reported obsolete.

mlx-lm's ``wired_limit`` context manager: mlx-lm 0.32.x reads
``mx.device_info().get("max_recommended_working_set_size")`` and skips the
limit when the key is absent (CPU, CUDA, a Mac on the CPU); mlx-lm 0.31.x
skips it when ``mx.metal.is_available()`` is False, so on CPU and CUDA wheels
neither touches the wired limit.
"""

from __future__ import annotations

import operator

from ..registry.registry import Patch, obsolete, skip

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..backends.protocol import Backend
    from ..registry.registry import PatchContext, Verdict

__all__ = ["PATCHES", "wired_limit"]


def _metal_available(mx: Any) -> bool:
    metal = getattr(mx, "metal", None)
    return bool(metal is not None and metal.is_available())


def _namespaces(mx: Any) -> list[Any]:
    found = [mx] if hasattr(mx, "set_wired_limit") else []
    metal = getattr(mx, "metal", None)
    if metal is not None and hasattr(metal, "set_wired_limit"):
        found.append(metal)
    return found


def _check(ctx: PatchContext) -> Verdict | None:
    mx = ctx.mx
    if not _namespaces(mx):
        return skip(f"mlx {ctx.mlx_version} has no set_wired_limit")
    if not _metal_available(mx):
        return obsolete(
            f"this mlx {ctx.mlx_version} wheel has no Metal: set_wired_limit already returns 0 without effect"
        )
    return None


def _wrap(mx: Any, original: Any, backend: Backend | None) -> Any:
    on_metal = backend is None or backend.supports_wired_memory

    def set_wired_limit(limit: int) -> int:
        try:
            nbytes = operator.index(limit)
        except TypeError:
            return int(original(limit))  # mlx's own error for a bad argument
        if nbytes < 0 or (on_metal and mx.default_device() == mx.gpu):
            return int(original(limit))
        return 0

    return set_wired_limit


def _apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    for namespace in _namespaces(mx):
        ctx.wrap(
            namespace,
            "set_wired_limit",
            lambda original: _wrap(mx, original, ctx.backend),
            doc="\n\nmlx-portable: sets the limit on Metal with the GPU as default device; "
            "elsewhere returns 0 and does nothing.",
        )


wired_limit = Patch(
    name="wired_limit",
    summary="mx.set_wired_limit returns 0 without effect unless Metal computes on the GPU",
    why=(
        "wired memory exists only for Metal GPU work; on a Mac computing on the CPU, set_wired_limit "
        "wires memory nothing uses or raises ValueError: [metal::set_wired_limit] Setting a wired "
        "limit larger than the maximum working set size is not allowed."
    ),
    apply=_apply,
    check=_check,
    upstream="https://github.com/ml-explore/mlx/blob/main/mlx/backend/metal/allocator.cpp",
)

PATCHES = (wired_limit,)
