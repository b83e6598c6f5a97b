"""``metal_fast_synch``: ``MLX_METAL_FAST_SYNCH`` left as mlx's default; a risky choice is flagged.

Why it exists: ``MLX_METAL_FAST_SYNCH=1`` makes Metal's cross-stream fences
spin on shared memory instead of waiting on Metal events, which cuts the
per-token latency of decoding.  mlx-portable used to set it on macOS with
Metal.  mlx's maintainers now call it unreliable -- deadlocks, and a GPU
wedged until reboot, in distributed work and in single-node multi-stream
work (ml-explore/mlx#3830, ml-explore/mlx#3142) -- and the mlx docs dropped
it (ml-explore/mlx#4005).  So it follows upstream now.

What it does: never sets or changes the variable.  The report says which
case this is:

* unset: left unset, mlx's default (set ``MLX_METAL_FAST_SYNCH=1`` yourself
  for the lower latency on a single machine);
* set by the user on macOS: kept; when a distributed launch is detected too
  (``mlx.launch``/MPI/NCCL/JACCL variables: ``MLX_HOSTFILE`` and
  ``MLX_RANK``, ...), a :class:`~mlx_portable.PortabilityWarning` names the
  upstream reports and the fix (unset it, or ``=0``);
* set off macOS: kept, and the report says it has no effect there (only the
  Metal backend reads it).

The patch applies nothing, so its status is always ``skipped``; the reason
is the answer.  ``MLX_PORTABLE_DISABLE=metal_fast_synch`` silences the
warning.

Upstream: ``mlx/utils.h`` (``env::metal_fast_synch``),
``mlx/backend/metal/fence.cpp``.
"""

from __future__ import annotations

import os
import sys

from ..registry.registry import Patch, skip
from ..validation import shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..registry.registry import PatchContext, Verdict

__all__ = ["FAST_SYNCH", "PATCHES", "metal_fast_synch"]

FAST_SYNCH = "MLX_METAL_FAST_SYNCH"
_UPSTREAM = "ml-explore/mlx#3830, #3142"


def _distributed_launch() -> str:
    """The distributed launchers whose variables are set (``""`` when none)."""
    from ..distributed.launch_env import launched_backends

    return ", ".join(sorted(launched_backends()))


def _check(ctx: PatchContext) -> Verdict | None:
    user_value = os.environ.get(FAST_SYNCH)
    if sys.platform != "darwin":
        if user_value is not None:
            return skip(
                f"{FAST_SYNCH}={user_value!r} is set but has no effect on {sys.platform}: "
                "only mlx's Metal backend (macOS) reads it; left as it is"
            )
        return skip(f"only mlx's Metal backend (macOS) reads {FAST_SYNCH}; left unset on {sys.platform}")
    if user_value is None:
        return skip(
            f"{FAST_SYNCH} left unset (mlx's default; upstream calls fast synch unreliable: {_UPSTREAM})"
        )
    launch = _distributed_launch() if user_value.strip() not in ("", "0") else ""
    if launch:
        _warn_distributed(user_value, launch)
        return skip(
            f"{FAST_SYNCH}={user_value!r} was set by the user together with a distributed launch ({launch}); "
            f"kept, with a warning: upstream reports deadlocks there ({_UPSTREAM})"
        )
    return skip(f"{FAST_SYNCH}={user_value!r} was set by the user; left as it is")


def _warn_distributed(value: str, launch: str) -> None:
    import warnings

    from ..errors import PortabilityWarning

    warnings.warn(
        f"mlx-portable: {FAST_SYNCH}={shown(value)} is set in a distributed run ({launch}). "
        "mlx's maintainers "
        f"report deadlocks and a wedged GPU with fast synch in distributed work ({_UPSTREAM}); "
        f"unset {FAST_SYNCH} (or set it to 0) for this run.",
        PortabilityWarning,
        stacklevel=2,
    )


def _apply(ctx: PatchContext) -> None:
    return None  # never reached: the check always answers


metal_fast_synch = Patch(
    name="metal_fast_synch",
    summary=f"leaves {FAST_SYNCH} as mlx's default; warns when it is set in a distributed run",
    why=(
        "Fast synch lowers per-token decode latency on Metal, but mlx's maintainers report deadlocks and a "
        "wedged GPU with it in distributed and multi-stream work, so it is never set for the user."
    ),
    apply=_apply,
    check=_check,
    when="before-mlx",
    upstream="https://github.com/ml-explore/mlx/blob/main/mlx/backend/metal/fence.cpp",
)

PATCHES = (metal_fast_synch,)
