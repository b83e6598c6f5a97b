"""``thread_local_stream``: ``mx.new_thread_local_stream`` and ``mx.ThreadLocalStream`` on old mlx.

Why: mlx-lm >= 0.31.3 creates its generation stream with
``mx.new_thread_local_stream`` and annotates parameters with
``mx.Stream | mx.ThreadLocalStream``, both evaluated when ``mlx_lm.generate``
is imported.  On mlx < 0.31.2 the import dies with::

    AttributeError: module 'mlx.core' has no attribute 'new_thread_local_stream'

Which: mlx < 0.31.2, every backend (mlx-lm on Linux installs no mlx of its
own, so a new mlx-lm lands on an old mlx routinely).

Semantics: below 0.31.2 a stream is *not* bound to the thread that created
it: any thread may use any stream.  A plain ``mx.new_stream`` therefore
behaves there as a thread-local stream does on newer mlx, so
``new_thread_local_stream`` is ``new_stream`` itself and ``ThreadLocalStream``
is ``Stream``.  Each name is added only where it is missing (always safe:
nothing that exists is replaced), so the patch applies on ``import
mlx_portable`` as soon as ``mlx.core`` is imported.

Upstream: ml-explore/mlx 0.31.2 added thread-local streams; mlx-lm 0.31.3
started to use them (Blaizzy/mlx-vlm#1085, exo-explore/exo#2043 report the
error).
"""

from __future__ import annotations

from ..registry.registry import Patch, obsolete

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..registry.registry import PatchContext, Verdict

__all__ = ["PATCHES", "thread_local_stream"]

_NAMES = ("new_thread_local_stream", "ThreadLocalStream")


def _check(ctx: PatchContext) -> Verdict | None:
    mx = ctx.mx
    if all(hasattr(mx, name) for name in _NAMES):
        return obsolete(f"mlx {ctx.mlx_version} has new_thread_local_stream and ThreadLocalStream")
    return None


def _apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    if not hasattr(mx, "new_thread_local_stream"):
        ctx.set_attr(mx, "new_thread_local_stream", mx.new_stream)
    if not hasattr(mx, "ThreadLocalStream"):
        ctx.set_attr(mx, "ThreadLocalStream", mx.Stream)


thread_local_stream = Patch(
    name="thread_local_stream",
    summary="adds mx.new_thread_local_stream (= mx.new_stream) and mx.ThreadLocalStream (= mx.Stream)",
    why=(
        "mlx-lm >= 0.31.3 fails at import on mlx < 0.31.2: AttributeError: module 'mlx.core' has "
        "no attribute 'new_thread_local_stream'. Below 0.31.2 streams are not bound to threads, "
        "so a plain stream is what a thread-local one is on newer mlx."
    ),
    apply=_apply,
    check=_check,
    mlx_versions="<0.31.2",
    when="import",
    upstream="https://github.com/ml-explore/mlx/releases/tag/v0.31.2",
)

PATCHES = (thread_local_stream,)
