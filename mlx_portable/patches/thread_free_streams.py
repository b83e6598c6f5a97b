"""``thread_free_streams`` (opt-in): ``mx.new_stream`` makes streams any thread can use, as before 0.31.2.

Why: application code written for mlx < 0.31.2 makes a stream once (often at
module level) and uses it from worker threads.  mlx binds streams to their
creating thread -- GPU streams from 0.31.2, CPU streams from 0.32.0 -- so the
worker fails with::

    RuntimeError: There is no Stream(cpu, 0) in current thread.

Off by default: set ``MLX_PORTABLE_THREAD_FREE_STREAMS=1``.  It gives up
mlx's newer guarantee that no stream is used by two threads at once: the
application must not evaluate on one stream from two threads concurrently
(what mlx before 0.31.2 required too).  Code that can be changed should call
:func:`mlx_portable.any_thread_stream` instead (see
:mod:`mlx_portable.thread_streams`).

What it does: ``mx.new_stream(device)`` returns
``mx.new_thread_unsafe_stream(device)``, a plain ``mx.Stream`` that any
thread can use.  ``mx.new_thread_local_stream`` and mlx-lm's streams are not
touched.

Which: mlx >= 0.32.0 (the first with ``new_thread_unsafe_stream``), every
backend.  Below 0.31.2 streams are thread-free already (obsolete); on
0.31.x it is reported obsolete too: there is no thread-free GPU stream
there, use ``any_thread_stream()`` (a thread-local stream on the GPU).

Upstream: ml-explore/mlx#3578 (``new_thread_unsafe_stream``), #3395.
"""

from __future__ import annotations

from ..registry.registry import Patch, get_original, obsolete, skip

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext, Verdict

__all__ = ["ENV", "PATCHES", "thread_free_streams"]

ENV = "MLX_PORTABLE_THREAD_FREE_STREAMS"


def _opted_in() -> bool:
    import os

    if not os.environ.get(ENV, "").strip():
        return False  # unset or empty: off (the settings module is not loaded at import for this)
    from ..settings import read_flag  # a bad value is refused by activate() (settings.OTHER_FLAGS)

    try:
        return read_flag(ENV)
    except ValueError:
        return False


def _check(ctx: PatchContext) -> Verdict | None:
    mx = ctx.mx
    try:
        get_original(mx, "new_thread_local_stream")
    except AttributeError:
        return obsolete(f"mlx {ctx.mlx_version} does not bind streams to threads")
    if not hasattr(mx, "new_thread_unsafe_stream"):
        return obsolete(
            f"mlx {ctx.mlx_version} has no thread-free GPU stream (new_thread_unsafe_stream arrived in "
            "0.32.0); use mlx_portable.any_thread_stream()"
        )
    if not _opted_in():
        return skip(f"opt-in: set {ENV}=1 to make mx.new_stream streams usable from any thread")
    return None


def _apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    unsafe = mx.new_thread_unsafe_stream

    def thread_free(_original: Any) -> Any:
        def new_stream(device: Any) -> Any:
            return unsafe(device)

        return new_stream

    ctx.wrap(
        mx,
        "new_stream",
        thread_free,
        doc=(
            f"\n\nmlx-portable (thread_free_streams, {ENV}=1): a stream any thread can use, "
            "mx.new_thread_unsafe_stream. Do not evaluate on it from two threads at once."
        ),
    )


thread_free_streams = Patch(
    name="thread_free_streams",
    summary=f"mx.new_stream returns a stream any thread can use (opt-in: {ENV}=1)",
    why=(
        "code written for mlx < 0.31.2 uses one stream from several threads; mlx >= 0.32 binds it to its "
        "thread: RuntimeError: There is no Stream(cpu, 0) in current thread."
    ),
    apply=_apply,
    check=_check,
    mlx_versions=">=0.32.0",
    when="import",
    upstream="https://github.com/ml-explore/mlx/pull/3578",
)

PATCHES = (thread_free_streams,)
