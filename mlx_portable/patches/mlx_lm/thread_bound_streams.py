"""``thread_bound_streams``: an older mlx-lm's ``generation_stream`` works from any thread.

Why: mlx-lm <= 0.31.2 creates one module-level stream when
``mlx_lm.generate`` is imported (``generation_stream = mx.new_stream(...)``)
and runs every generation on it.  Newer mlx binds a stream to the thread that
created it -- GPU streams from mlx 0.31.2, CPU streams from 0.32.0 -- so
generating from any other thread (a web server's worker, a
``threading.Thread``, exo's runner) fails with::

    RuntimeError: There is no Stream(cpu, 0) in current thread.

(``Stream(gpu, N)`` on Metal and CUDA).  mlx-lm 0.31.3 switched to
``mx.new_thread_local_stream``.

Which: mlx-lm releases whose ``generation_stream`` is a plain stream, on mlx
where streams of that device are thread-bound: GPU from mlx 0.31.2, CPU from
0.32.0 (detected by feature: a native ``mx.new_thread_local_stream`` for the
GPU, ``mx.new_thread_unsafe_stream`` -- which arrived with thread-bound CPU
streams -- for the CPU).

What it does: when ``mlx_lm.generate`` is imported (at once if it already
is), its ``generation_stream`` is replaced by a thread-local stream on the
same device, as newer mlx-lm creates it, and so are other ``mlx_lm`` modules'
copies of it (``from .generate import generation_stream`` in
``mlx_lm.server``).  Each thread then gets its own stream on that device.

Upstream: ml-explore/mlx 0.31.2 / 0.32.0 (thread-bound streams), mlx-lm
0.31.3 (thread-local generation stream).
"""

from __future__ import annotations

import sys

from ...registry.registry import Patch, get_original, obsolete, skip

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ...registry.registry import PatchContext, Verdict

__all__ = ["PATCHES", "thread_bound_streams"]

_ATTR = "generation_stream"


def _native_thread_local_type(mx: Any) -> Any:
    """``mx.ThreadLocalStream`` if mlx itself has it (not mlx-portable's alias), else ``None``."""
    try:
        return get_original(mx, "ThreadLocalStream")
    except AttributeError:
        return None


def _streams_bound_to_threads(mx: Any, device: Any) -> bool:
    if _native_thread_local_type(mx) is None:
        return False  # mlx < 0.31.2: no stream is bound to its thread
    if device.type == mx.cpu:
        return hasattr(mx, "new_thread_unsafe_stream")  # CPU streams are bound from 0.32.0
    return True


def _check(ctx: PatchContext) -> Verdict | None:
    module = ctx.module
    stream = getattr(module, _ATTR, None)
    if stream is None:
        return skip(f"{getattr(module, '__name__', 'mlx_lm.generate')} has no {_ATTR}")
    mx = ctx.mx
    native = _native_thread_local_type(mx)
    if native is not None and isinstance(stream, native):
        return obsolete(f"this mlx-lm's {_ATTR} already is a thread-local stream")
    device = stream.device
    if not _streams_bound_to_threads(mx, device):
        return obsolete(f"mlx {ctx.mlx_version} does not bind {device} streams to threads")
    return None


def _apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    module = ctx.module
    old = getattr(module, _ATTR)
    new = mx.new_thread_local_stream(old.device)
    ctx.set_attr(module, _ATTR, new)
    # Modules that copied the stream at their import (mlx_lm.server does).
    for name, other in list(sys.modules.items()):
        if other is module or not name.startswith("mlx_lm.") or other is None:
            continue
        if getattr(other, _ATTR, None) is old:
            ctx.set_attr(other, _ATTR, new)


thread_bound_streams = Patch(
    name="thread_bound_streams",
    summary="makes mlx_lm.generate.generation_stream thread-local (generation from any thread)",
    why=(
        "mlx-lm <= 0.31.2 keeps one module-level stream; mlx binds streams to their thread (GPU from "
        "0.31.2, CPU from 0.32.0), so generating from another thread fails: RuntimeError: There is no "
        "Stream(cpu, 0) in current thread."
    ),
    apply=_apply,
    check=_check,
    mlx_versions=">=0.31.2",
    when="import:mlx_lm.generate",
    upstream="https://github.com/ml-explore/mlx-lm/releases/tag/v0.31.3",
)

PATCHES = (thread_bound_streams,)
