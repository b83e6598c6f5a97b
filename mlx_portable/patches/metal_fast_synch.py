"""``metal_fast_synch``: ``MLX_METAL_FAST_SYNCH=1`` on macOS with Metal, unless the user chose.

Why: mlx's Metal backend synchronises command buffers across streams with
fences; ``MLX_METAL_FAST_SYNCH=1`` makes them spin on shared memory instead of
waiting on Metal events, which cuts the per-step latency of token-by-token
decoding (exo sets it for the same reason).  mlx reads the variable once, at
its first fence, so it is set on ``import mlx_portable`` (before ``mlx.core``
needs to be loaded).

Which: every mlx version, Metal only (macOS on Apple silicon; fast mode also
needs Metal 3.2 / macOS 15, and mlx falls back by itself below that).  Off
macOS no mlx backend reads the variable: it is left alone, and the report says
so -- also when the user set it on Linux, where it has no effect.  A value the
user set (``0`` included) is never changed.  On Metal, ``=1`` has been
reported to hang some distributed pipelines: set ``MLX_METAL_FAST_SYNCH=0``
or ``MLX_PORTABLE_DISABLE=metal_fast_synch`` there.

Upstream: ``mlx/utils.h`` (``env::metal_fast_synch``) and
``mlx/backend/metal/fence.cpp``.
"""

from __future__ import annotations

import os
import sys

from .registry import Patch, skip

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .registry import PatchContext, Verdict

__all__ = ["FAST_SYNCH", "PATCHES", "metal_fast_synch"]

FAST_SYNCH = "MLX_METAL_FAST_SYNCH"


def _machine() -> str:
    return os.uname().machine if hasattr(os, "uname") else ""


def _check(ctx: PatchContext) -> Verdict | None:
    user_value = os.environ.get(FAST_SYNCH)
    if sys.platform != "darwin":
        if user_value is not None:
            return skip(
                f"{FAST_SYNCH}={user_value!r} is set but has no effect on {sys.platform}: "
                "only mlx's Metal backend (macOS) reads it; left as it is"
            )
        return skip(f"only mlx's Metal backend (macOS) reads {FAST_SYNCH}; left unset on {sys.platform}")
    if user_value is not None:
        return skip(f"{FAST_SYNCH}={user_value!r} was set by the user; left as it is")
    if _machine() != "arm64":
        return skip(f"Metal in mlx needs Apple silicon (this is {_machine() or 'unknown'}); left unset")
    if ctx.backend is not None and ctx.backend != "metal":
        return skip(f"the {ctx.backend} backend does not read {FAST_SYNCH}; left unset")
    return None


def _apply(ctx: PatchContext) -> None:
    ctx.set_env(FAST_SYNCH, "1")


metal_fast_synch = Patch(
    name="metal_fast_synch",
    summary=f"sets {FAST_SYNCH}=1 (macOS with Metal, when the user has not set it)",
    why=(
        "Metal's fast fence synchronisation lowers per-token decode latency; mlx reads the variable "
        "once, so it must be set early. No other backend reads it."
    ),
    apply=_apply,
    check=_check,
    when="before-mlx",
    upstream="https://github.com/ml-explore/mlx/blob/main/mlx/backend/metal/fence.cpp",
)

PATCHES = (metal_fast_synch,)
