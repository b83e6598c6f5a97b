"""``rope_batch_offsets``: ``mx.fast.rope`` takes one offset per batch element on mlx < 0.29.1.

Why: mlx-lm's batch generation (``batch_generate``, ``BatchGenerator``, the
server's batching) keeps one cache position per sequence and passes them to
RoPE as a vector.  mlx < 0.29.1 accepts only a scalar offset::

    ValueError: [rope] offset must be a scalar but has shape (2).

Which: mlx < 0.29.1 (ml-explore/mlx#2564), every backend.

What the wrapper does: a scalar offset (an ``int`` or an array of one
element) goes straight to mlx's kernel.  A vector of ``B`` offsets for an
input of batch size ``B`` runs ``mlx_portable.fallbacks.rope`` on the whole
batch in one pass: the graph newer mlx builds itself wherever ``mx.fast.rope``
has no fused kernel (all of CPU), so CPU results equal those of mlx 0.32
exactly.  (It used to call the kernel once per sequence and concatenate:
3x the native call's time at batch 4, 9x at batch 16.)  A vector of any other
length, or of floats, raises the ``ValueError`` newer mlx raises.

Cost (``python benchmarks/rope_batch.py --rounds 15``: mlx 0.28.0 with the
shim against mlx 0.32.4 natively, alternating rounds; decode-step queries
``(B, 32, 1, 128)``, 32 calls evaluated together as in one decode step of a
32-layer model; 2-core Linux VM, idle; three runs): shim / native is
0.72-0.83 for bfloat16 and float32 at batch 4 and 16, with results equal
(the old per-sequence loop: 3.3-12.2x native).  The rotation is one
elementwise expression over a view with its halves swapped: before mlx 0.32
the CPU allocator has no buffer cache, and the former half-size products plus
their concatenation made batch-16 float32 1.6-1.7x native.  One call per
evaluation (``--per-eval 1``) measures mostly mlx's round trip, shorter on
0.32.4: shim / native 1.14-1.96, and 0.90-1.00 against mlx 0.28.0's own call
for one shared offset.

Upstream: https://github.com/ml-explore/mlx/pull/2564
"""

from __future__ import annotations

from ..registry.registry import Patch, get_original, obsolete, skip

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext, Verdict

__all__ = ["PATCHES", "rope_batch_offsets"]


def _takes_vector_offsets(fn: Any) -> bool:
    # From 0.29.1 the docstring says "... it can be a scalar or vector of B offsets".
    doc = getattr(fn, "__doc__", None) or ""
    return "vector of" in doc


def _check(ctx: PatchContext) -> Verdict | None:
    fast = getattr(ctx.mx, "fast", None)
    if fast is None or not hasattr(fast, "rope"):
        return skip(f"mlx {ctx.mlx_version} has no mx.fast.rope")
    if _takes_vector_offsets(get_original(fast, "rope")):
        return obsolete(f"mlx {ctx.mlx_version}'s mx.fast.rope takes one offset per batch element")
    return None


def _wrap(mx: Any, original: Any) -> Any:
    from ..fallbacks.rope import rope_per_example

    array_type = mx.array

    def rope(
        a: Any,
        dims: int,
        *,
        traditional: bool,
        base: float | None,
        scale: float,
        offset: Any,
        freqs: Any = None,
        stream: Any = None,
    ) -> Any:
        if not isinstance(offset, array_type) or offset.size == 1:
            return original(
                a,
                dims,
                traditional=traditional,
                base=base,
                scale=scale,
                offset=offset,
                freqs=freqs,
                stream=stream,
            )
        batch = a.shape[0] if a.ndim > 0 else 0
        if a.ndim < 3 or offset.ndim > 1 or offset.size != batch:
            raise ValueError(
                f"[rope] offset must be a scalar or vector with {batch} elements but has shape "
                f"{tuple(offset.shape)}."
            )
        if not mx.issubdtype(offset.dtype, mx.integer):
            raise ValueError(f"[rope] offset must be an integer but got type {offset.dtype}.")
        if base is not None and freqs is not None:
            raise ValueError("[rope] Only one of base or freqs can have a value.")
        if stream is None:
            return rope_per_example(
                a, dims, traditional=traditional, base=base, scale=scale, offsets=offset, freqs=freqs
            )
        with mx.stream(stream):
            return rope_per_example(
                a,
                dims,
                traditional=traditional,
                base=base,
                scale=scale,
                offsets=offset,
                freqs=freqs,
                compiled=False,
            )

    return rope


def _apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    ctx.wrap(
        mx.fast,
        "rope",
        lambda original: _wrap(mx, original),
        doc="\n\nmlx-portable: offset may also be a vector of B offsets, one per example in the batch.",
    )


rope_batch_offsets = Patch(
    name="rope_batch_offsets",
    summary="mx.fast.rope accepts a vector of per-example offsets (batch generation)",
    why=(
        "mlx-lm's batch generation passes one RoPE offset per sequence; mlx < 0.29.1 fails with "
        "ValueError: [rope] offset must be a scalar but has shape (B)."
    ),
    apply=_apply,
    check=_check,
    mlx_versions="<0.29.1",
    when="import",  # widens what mlx accepts, whatever the backend: applied by import mlx_portable
    upstream="https://github.com/ml-explore/mlx/pull/2564",
)

PATCHES = (rope_batch_offsets,)
