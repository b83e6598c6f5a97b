"""Per-call cost of the ``sdpa_sinks`` wrapper against mlx's own function, side by side.

    python benchmarks/sdpa_sinks.py [--calls N] [--rounds R]

The wrapper is what ``activate()`` installs on mlx < 0.29.1; with
``sinks=None`` it adds one Python call in front of mlx's fused kernel.  Two
figures per shape, each the median over rounds that alternate wrapped and
unwrapped calls:

* ``build``: building the lazy graph only (no evaluation) -- the wrapper's
  own overhead, in nanoseconds per call;
* ``build+eval``: one call evaluated, as a decoding step does.

Runs on any mlx (the wrapper is built directly when the patch is obsolete).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import mlx.core as mx

from mlx_portable._mlx import mlx_version
from mlx_portable.patches.sdpa_sinks import _wrap
from mlx_portable.registry.registry import get_original

# (batch, n_q_heads, n_kv_heads, t_q, t_kv, head_dim): one decode step of a
# small GQA model, and a prompt of 128 tokens.
SHAPES = [(1, 32, 8, 1, 512, 64), (1, 32, 8, 128, 128, 64)]


def _per_call(fn: Callable[[], Any], calls: int, evaluate: bool) -> float:
    start = time.perf_counter_ns()
    if evaluate:
        for _ in range(calls):
            mx.eval(fn())
    else:
        for _ in range(calls):
            fn()
    return (time.perf_counter_ns() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round (build only)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    original = get_original(mx.fast, "scaled_dot_product_attention")
    wrapped = _wrap(mx, original)
    print(f"mlx {mlx_version()}, device {mx.default_device()}; median of {args.rounds} alternating rounds")
    header = f"{'shape (B,Hq,Hkv,Tq,Tkv,D)':<28} {'what':<11} {'unwrapped':>12} {'wrapped':>12}"
    print(f"{header} {'diff':>10} {'ratio':>7}")
    for b, hq, hkv, tq, tkv, d in SHAPES:
        q = mx.random.normal((b, hq, tq, d))
        k = mx.random.normal((b, hkv, tkv, d))
        v = mx.random.normal((b, hkv, tkv, d))
        mask = "causal" if tq > 1 else None
        mx.eval(q, k, v)

        scale = d**-0.5

        def plain(q: Any = q, k: Any = k, v: Any = v, mask: Any = mask, scale: float = scale) -> Any:
            return original(q, k, v, scale=scale, mask=mask)

        def shimmed(q: Any = q, k: Any = k, v: Any = v, mask: Any = mask, scale: float = scale) -> Any:
            return wrapped(q, k, v, scale=scale, mask=mask, sinks=None)

        assert mx.array_equal(plain(), shimmed()).item()
        for what, evaluate, calls in (
            ("build", False, args.calls),
            ("build+eval", True, max(args.calls // 20, 20)),
        ):
            _per_call(plain, calls, evaluate)  # warm-up
            _per_call(shimmed, calls, evaluate)
            base: list[float] = []
            ours: list[float] = []
            for _ in range(args.rounds):
                base.append(_per_call(plain, calls, evaluate))
                ours.append(_per_call(shimmed, calls, evaluate))
            b_ns, o_ns = statistics.median(base), statistics.median(ours)
            label = str((b, hq, hkv, tq, tkv, d)).replace(" ", "")
            print(
                f"{label:<28} {what:<11} {b_ns / 1000:>9.2f} us {o_ns / 1000:>9.2f} us "
                f"{(o_ns - b_ns):>7.0f} ns {b_ns / o_ns:>7.3f}"
            )
    print("ratio = unwrapped time / wrapped time (1.000: no cost)")


if __name__ == "__main__":
    main()
