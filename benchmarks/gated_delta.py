"""Gated delta off Metal: the router against mlx-lm's per-token loop, with every candidate route.

    python benchmarks/gated_delta.py [--lengths 1,16,64,256,1024] [--rounds 5]

Qwen3-Next-like heads (4 key / 8 value heads of 128 x 128, float32, batch 1).
For each length, in alternating order within every round: mlx-lm's
``gated_delta_ops`` (the loop every non-Metal device runs: the reference),
the router (``mlx_portable.fallbacks.gated_delta.gated_delta_kernel``) and
each route it picks from (the compiled per-token recurrence, the chunked WY
form, ``mx.fast.gated_delta_update`` on mlx >= 0.32.3).  Prints each one's
time as a ratio to the loop's (< 1: faster), median over rounds, and the
router's spread; the crossovers recorded in ``gated_delta.py`` come from
these columns.  Run it with each mlx (e.g. ``/work/envs/mlx-0.28.0``).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import mlx.core as mx

from mlx_portable.fallbacks import gated_delta as gd


def _once(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    mx.eval(fn())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default="1,16,64,256,1024")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    mx.set_default_device(mx.cpu)
    import mlx_portable

    mlx_portable.activate()  # mlx-lm's loop needs it on mlx < 0.29
    module = importlib.import_module("mlx_lm.models.gated_delta")
    loop = mlx_portable.get_original(module, "gated_delta_ops")
    try:
        tiny = [mx.ones((1, 1, 1, 32)), mx.ones((1, 1, 1, 32)), mx.ones((1, 1, 1, 8))]
        mx.eval(loop(*tiny, mx.ones((1, 1, 1)), mx.ones((1, 1, 1))))
    except ValueError:  # mlx < 0.29: its compiled step rejects mask=None; the same loop, fixed
        loop = gd.gated_delta_recurrent
    fast = getattr(mx.fast, "gated_delta_update", None)
    routes: dict[str, Callable[..., Any]] = {
        "mlx-lm loop": loop,
        "router": gd.gated_delta_kernel,
        "recurrent": gd.gated_delta_recurrent,
        "chunked": gd.gated_delta_chunked,
    }
    if fast is not None:
        routes["fast op"] = fast
    names = list(routes)
    hk, hv, dk, dv = 4, 8, 128, 128
    print(
        f"mlx {mx.__version__}, CPU; {hk}/{hv} heads {dk}x{dv}; ratio = time / mlx-lm loop, median of rounds"
    )
    print(
        f"{'tokens':>6} {'loop ms':>9} " + " ".join(f"{n:>10}" for n in names[1:]) + "  router spread  route"
    )
    for steps in (int(t) for t in args.lengths.split(",")):
        k = mx.random.normal((1, steps, hk, dk))
        k = k / mx.linalg.norm(k, axis=-1, keepdims=True)
        q = mx.random.normal((1, steps, hk, dk)) * dk**-0.5
        v = mx.random.normal((1, steps, hv, dv))
        g = mx.random.uniform(0.5, 1.0, (1, steps, hv))
        beta = mx.random.uniform(0.0, 1.0, (1, steps, hv))
        state = mx.zeros((1, hv, dv, dk))
        mx.eval(q, k, v, g, beta, state)
        inputs = (q, k, v, g, beta, state)
        calls = {name: (lambda f=f, a=inputs: f(*a)) for name, f in routes.items()}
        for fn in calls.values():
            mx.eval(fn())
        repeat = max(1, min(9, 64 // steps))
        ratios: dict[str, list[float]] = {n: [] for n in names}
        base_times = []
        for r in range(args.rounds):
            per: dict[str, list[float]] = {n: [] for n in names}
            for i in range(repeat):
                for name in names if (r + i) % 2 == 0 else names[::-1]:
                    per[name].append(_once(calls[name]))
            base = statistics.median(per[names[0]])
            base_times.append(base)
            for name in names:
                ratios[name].append(statistics.median(per[name]) / base)
        route = gd.choose_route(steps, vector_gates=False, on_cpu=True, fast=fast is not None)
        cells = " ".join(f"{statistics.median(ratios[n]):>10.2f}" for n in names[1:])
        spread = f"{min(ratios['router']):.2f}-{max(ratios['router']):.2f}"
        print(f"{steps:>6} {statistics.median(base_times) * 1e3:>9.2f} {cells}  {spread:>13}  {route}")


if __name__ == "__main__":
    main()
