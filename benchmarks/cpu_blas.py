"""mlx's CPU BLAS: plain (the wheels' reference libblas) against bound (``cpu_blas``), NumPy as the yardstick.

    python benchmarks/cpu_blas.py [--shape 256,1024,2816] [--rounds 3] [--threads 1,2]

In one process, on the same float32 arrays, alternating within every round:
mlx with its reference BLAS (the slots put back), mlx with the bound
library, and NumPy's own BLAS.  Prints GFLOP/s (best call of each round,
median over rounds), the ratios, and the time of ``mx.linalg.cholesky`` and
``inv`` at 512x512 both ways.  With ``--threads``, the bound rate at each
thread count.  Nothing is asserted: the figures are for reading.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import mlx.core as mx
import numpy as np

import mlx_portable
from mlx_portable.cpu_blas import bind, current, unbind
from mlx_portable.cpu_blas.measure import rate


def _seconds(run: Callable[[], object], calls: int = 3) -> float:
    run()
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="256,1024,2816", help="m,k,n of the GEMM")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="", help="bound thread counts to compare, e.g. 1,2")
    args = parser.parse_args()
    m, k, n = (int(x) for x in args.shape.split(","))
    mlx_portable.activate()
    binding = current() or bind(mx)
    library = binding.library
    print(f"bound: {library.name} {library.version} {library.kernels}, {binding.threads} threads")
    print(f"  ({binding.thread_source}); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    xa, xb = mx.array(a), mx.array(b)
    mx.eval(xa, xb)
    flops = 2.0 * m * k * n

    def on_mlx() -> None:
        mx.eval(mx.matmul(xa, xb, stream=mx.cpu))

    rates: dict[str, list[float]] = {"plain": [], "bound": [], "numpy": []}
    for _ in range(args.rounds):
        unbind()
        rates["plain"].append(rate(on_mlx, flops, calls=2, seconds=0.0))
        bind(mx)
        rates["bound"].append(rate(on_mlx, flops, calls=3, seconds=0.2))
        rates["numpy"].append(rate(lambda: a @ b, flops, calls=3, seconds=0.2))
    med = {name: statistics.median(values) for name, values in rates.items()}
    print(f"\nfloat32 GEMM {m}x{k}x{n}, GFLOP/s (median of {args.rounds} rounds, best call each)")
    for name in ("plain", "bound", "numpy"):
        spread = ", ".join(f"{v:.1f}" for v in rates[name])
        print(f"  {name:<6} {med[name]:8.1f}   ({spread})")
    over_plain, over_numpy = med["bound"] / med["plain"], med["bound"] / med["numpy"]
    print(f"  bound / plain = {over_plain:.1f}x   bound / NumPy = {over_numpy:.2f}x")

    g = rng.standard_normal((512, 512), dtype=np.float32)
    spd = mx.array(g @ g.T + 512 * np.eye(512, dtype=np.float32))
    print("\nLAPACK at 512x512, ms (best of 3): plain / bound")
    for label, fn in (("cholesky", mx.linalg.cholesky), ("inv", mx.linalg.inv)):
        unbind()
        plain = _seconds(lambda fn=fn: mx.eval(fn(spd, stream=mx.cpu)))  # type: ignore[misc]
        bind(mx)
        bound = _seconds(lambda fn=fn: mx.eval(fn(spd, stream=mx.cpu)))  # type: ignore[misc]
        print(f"  {label:<9} {plain * 1e3:8.1f} / {bound * 1e3:8.1f}   ({plain / bound:.1f}x)")

    if args.threads:
        print("\nbound GEMM by thread count, GFLOP/s")
        for count in (int(x) for x in args.threads.split(",")):
            library.set_threads(count)
            print(f"  {count:>2} threads {rate(on_mlx, flops, calls=3, seconds=0.3):8.1f}")
        library.set_threads(binding.threads or 1)


if __name__ == "__main__":
    main()
