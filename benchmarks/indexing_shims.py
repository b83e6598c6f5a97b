"""Per-call cost of the array-edge shims on ordinary (contiguous, non-empty) arrays.

    python benchmarks/indexing_shims.py [--calls 20000] [--rounds 7]

The array-edge shims (``mlx_portable.patches.index_views``, ``empty_reductions``,
``float64_values``, ``array_arguments``) wrap ``mx.array.__getitem__``
and ``__setitem__`` (every model's hot path), ``mx.take``, the scans and
``mx.tile``.  Here each wrapper is built against this mlx (whatever its
version: the wrappers are built directly, not through the version gate) and
called side by side with mlx's own function on the same arrays, alternating
batch by batch so both see the same machine load.  Printed per case: mlx's
time per call (building the lazy result, which is what the wrapper adds to),
the wrapper's, the difference in microseconds and the ratio; each the
fastest batch (other work on a shared machine only adds time).  A last line
gives, for scale, one evaluated ``x[i]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import mlx.core as mx

from mlx_portable.patches import array_arguments, empty_reductions, float64_values, index_views

PATCHES = (
    *index_views.PATCHES,
    *empty_reductions.PATCHES,
    *float64_values.PATCHES,
    *array_arguments.PATCHES,
)


class _Collect:
    """The part of a patch context the apply functions use: records what they would set."""

    def __init__(self) -> None:
        self.mx = mx
        self.set: dict[str, Any] = {}

    def set_attr(self, obj: Any, attr: str, value: Any) -> None:
        owner = "array" if obj is mx.array else "mx"
        self.set[f"{owner}.{attr}"] = value


def wrappers() -> dict[str, dict[str, Any]]:
    """``patch name -> {"array.__getitem__": wrapper, ...}`` built against this mlx."""
    built: dict[str, dict[str, Any]] = {}
    for patch in PATCHES:
        ctx = _Collect()
        patch.apply(ctx)  # type: ignore[arg-type]
        built[patch.name] = ctx.set
    return built


def per_call(fn: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def side_by_side(
    plain: Callable[[], Any], shimmed: Callable[[], Any], calls: int, rounds: int
) -> tuple[float, float]:
    """Microseconds per call of each: the fastest of ``rounds`` batches, the two alternating.

    The fastest batch, not the median: on a shared machine other work only
    ever adds time, so the minimum is the closest to the cost itself.
    """
    batch = max(calls // rounds, 1)
    a, b = [], []
    for r in range(rounds):
        if r % 2 == 0:
            a.append(per_call(plain, batch))
            b.append(per_call(shimmed, batch))
        else:
            b.append(per_call(shimmed, batch))
            a.append(per_call(plain, batch))
    return min(a), min(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=50000, help="calls per case, split into rounds")
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()

    built = wrappers()
    x = mx.random.normal((64, 128))
    mx.eval(x)
    idx = mx.array([3, 1, 7])
    mask = x > 0
    batch1 = mx.random.normal((1, 16, 32))  # batch of one: x[0] checks the gather rule
    mx.eval(idx, mask, batch1)
    get, setitem, take, cumsum, tile = (
        mx.array.__getitem__,
        mx.array.__setitem__,
        mx.take,
        mx.cumsum,
        mx.tile,
    )

    def setter(fn: Any, key: Any) -> Callable[[], Any]:
        y = mx.zeros((64, 128))

        def run() -> None:
            fn(y, key, 1.0)

        return run

    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = []
    for name in ("gather_view_order", "empty_axis_take"):
        wrap = built[name]["array.__getitem__"]
        wtake = built[name]["mx.take"]
        cases += [
            (f"{name}: x[5]", lambda: get(x, 5), lambda w=wrap: w(x, 5)),
            (f"{name}: x[0] of (1, 16, 32)", lambda: get(batch1, 0), lambda w=wrap: w(batch1, 0)),
            (
                f"{name}: x[2:9, ::2]",
                lambda: get(x, (slice(2, 9), slice(None, None, 2))),
                lambda w=wrap: w(x, (slice(2, 9), slice(None, None, 2))),
            ),
            (f"{name}: x[idx]", lambda: get(x, idx), lambda w=wrap: w(x, idx)),
            (
                f"{name}: x[idx, 3:]",
                lambda: get(x, (idx, slice(3, None))),
                lambda w=wrap: w(x, (idx, slice(3, None))),
            ),
            (
                f"{name}: mx.take(x, idx, axis=1)",
                lambda: take(x, idx, axis=1),
                lambda w=wtake: w(x, idx, axis=1),
            ),
        ]
    wset = built["bool_mask_assign"]["array.__setitem__"]
    cases += [
        ("bool_mask_assign: y[5] = 1.0", setter(setitem, 5), setter(wset, 5)),
        ("bool_mask_assign: y[2:9] = 1.0", setter(setitem, slice(2, 9)), setter(wset, slice(2, 9))),
        ("bool_mask_assign: y[idx] = 1.0", setter(setitem, idx), setter(wset, idx)),
        (
            "empty_scan: mx.cumsum(x, axis=1)",
            lambda: cumsum(x, axis=1),
            lambda: built["empty_scan"]["mx.cumsum"](x, axis=1),
        ),
        (
            "tile_array_reps: mx.tile(x, [2, 1])",
            lambda: tile(x, [2, 1]),
            lambda: built["tile_array_reps"]["mx.tile"](x, [2, 1]),
        ),
        (
            "float64_tolist: idx.tolist()",
            lambda: mx.array.tolist(idx),
            lambda: built["float64_tolist"]["array.tolist"](idx),
        ),
    ]

    print(f"mlx {mx.__version__}; {args.calls} calls per case, {args.rounds} alternating batches, fastest")
    print(f"{'case':48} {'mlx us':>8} {'shim us':>8} {'+us':>6} {'ratio':>6}")
    for label, plain, shimmed in cases:
        pa, pb = side_by_side(plain, shimmed, args.calls, args.rounds)
        print(f"{label:48} {pa:8.3f} {pb:8.3f} {pb - pa:6.3f} {pb / pa:6.2f}")
    # As installed: the whole chain mlx-portable puts on this mlx (none where no shim is needed).
    import mlx_portable

    mlx_portable.activate()
    original = mlx_portable.get_original(mx.array, "__getitem__")
    installed = mx.array.__getitem__
    chained = [p.name for p in PATCHES if mlx_portable.report().patch(p.name).status == "applied"]
    print(f"as activated on mlx {mx.__version__} (applied: {', '.join(chained) or 'none'}):")
    for label, key in (("x[5]", 5), ("x[2:9, ::2]", (slice(2, 9), slice(None, None, 2))), ("x[idx]", idx)):
        pa, pb = side_by_side(
            lambda k=key: original(x, k), lambda k=key: installed(x, k), args.calls, args.rounds
        )
        print(f"  {label:46} {pa:8.3f} {pb:8.3f} {pb - pa:6.3f} {pb / pa:6.2f}")
    evaluated = statistics.median(per_call(lambda: mx.eval(get(x, 5)), args.calls // 10) for _ in range(3))
    print(f"for scale: one evaluated x[5] (build + eval) {evaluated:.3f} us")


if __name__ == "__main__":
    main()
