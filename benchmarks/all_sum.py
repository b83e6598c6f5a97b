"""Portable collectives and send/recv against plain ``mx.distributed``: 2 ring ranks on 127.0.0.1.

    python benchmarks/all_sum.py [--sizes 4KiB,256KiB] [--dtypes float32,bfloat16]
                                 [--ops all_sum,send_recv] [--ranks 2] [--rounds 9]

For each operation, size and dtype, every rank runs the plain MLX call
(``mx.eval(mx.distributed.all_sum(x))``) and the portable one
(``dist.eval(dist.all_sum(x, group))``: stream routing plus the dead-rank
watchdog) in the same rounds, so that both see the same machine load: calls
alternate one by one (which goes first flips every pair), each round's figure
is its median call, and rank 0 prints the plain time per call, the bandwidth,
and the portable/plain ratio: the median over the rounds and its spread (min-max).
``send_recv`` is one exchange: rank 0 sends then receives the reply, rank 1
receives then sends it back.

Before the ranks start, the watchdog's own cost is measured in this process
with no communication at all: ``dist.eval`` against ``mx.eval`` on an array
already computed, and building a wrapped ``all_sum`` against MLX's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def parse_size(text: str) -> int:
    for unit in sorted(UNITS, key=len, reverse=True):
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * UNITS[unit])
    return int(text)


def human(n: float) -> str:
    for unit in ("GiB", "MiB", "KiB"):
        if n >= UNITS[unit]:
            return f"{n / UNITS[unit]:.1f} {unit}"
    return f"{n:.0f} B"


def _pair(mx: Any, dist: Any, group: Any, op: str, x: Any) -> tuple[Callable[[], None], Callable[[], None]]:
    """The plain and the portable version of ``op`` on ``x`` for this rank."""
    rank = group.rank()
    peer = (rank + 1) % group.size()
    if op == "all_sum":

        def plain() -> None:
            mx.eval(mx.distributed.all_sum(x, group=group))

        def portable() -> None:
            dist.eval(dist.all_sum(x, group))

        return plain, portable
    if op != "send_recv":
        raise SystemExit(f"unknown op {op!r}: all_sum or send_recv")

    def plain_exchange() -> None:
        if rank == 0:
            mx.eval(mx.distributed.send(x, peer, group=group))
            mx.eval(mx.distributed.recv_like(x, peer, group=group))
        else:
            y = mx.distributed.recv_like(x, peer, group=group)
            mx.eval(y)
            mx.eval(mx.distributed.send(y, peer, group=group))

    def portable_exchange() -> None:
        if rank == 0:
            dist.eval(dist.send(x, peer, group))
            dist.eval(dist.recv_like(x, peer, group))
        else:
            y = dist.recv_like(x, peer, group)
            dist.eval(y)
            dist.eval(dist.send(y, peer, group))

    return plain_exchange, portable_exchange


def rank_main(args: argparse.Namespace) -> None:
    import mlx.core as mx

    import mlx_portable.distributed as dist

    group = dist.init(needs_p2p=True)
    rows = []
    for op in args.ops.split(","):
        for dtype_name in args.dtypes.split(","):
            dtype = getattr(mx, dtype_name)
            for size in args.sizes.split(","):
                nbytes = parse_size(size)
                x = mx.ones(nbytes // dtype.size, dtype=dtype)
                mx.eval(x)
                plain, portable = _pair(mx, dist, group, op, x)
                if args.control:  # plain against itself: the noise floor of the ratio
                    portable = _pair(mx, dist, group, op, x)[0]
                for fn in (plain, portable, plain, portable):  # warm up
                    fn()
                # Same call count on every rank: the slowest rank's probe decides.
                start = time.perf_counter()
                for _ in range(5):
                    plain()
                probe = mx.distributed.all_max(mx.array([(time.perf_counter() - start) / 5]), group=group)
                iters = max(
                    20, min(300, int(args.seconds / args.rounds / 2 / max(float(probe.item()), 1e-6)))
                )
                plain_t, portable_t, ratios = [], [], []
                for _ in range(args.rounds):
                    # Calls alternate one by one; a round's figure is the median call,
                    # so another process taking the cores for a moment moves it little.
                    one_round: tuple[list[float], list[float]] = ([], [])
                    for i in range(2 * iters):
                        first = (i // 2) % 2  # plain, portable, portable, plain, ...
                        fn, store = (plain, one_round[0]) if i % 2 == first else (portable, one_round[1])
                        t0 = time.perf_counter()
                        fn()
                        store.append(time.perf_counter() - t0)
                    plain_t.append(statistics.median(one_round[0]))
                    portable_t.append(statistics.median(one_round[1]))
                    ratios.append(portable_t[-1] / plain_t[-1])
                rows.append(
                    {
                        "op": op,
                        "dtype": dtype_name,
                        "bytes": nbytes,
                        "iters": iters * args.rounds,
                        "plain": statistics.median(plain_t),
                        "portable": statistics.median(portable_t),
                        "ratio": statistics.median(ratios),
                        "ratio_min": min(ratios),
                        "ratio_max": max(ratios),
                    }
                )
    if group.rank() == 0:
        print(json.dumps({"size": group.size(), "rows": rows}), flush=True)


def watchdog_cost(rounds: int) -> dict[str, tuple[float, float, float]]:
    """Median and spread (us per call) of the watchdog and the wrapper, no communication."""
    import mlx.core as mx

    import mlx_portable.distributed as dist

    x = mx.ones(16)
    mx.eval(x)
    group = mx.distributed.init()  # size 1: building the op is what is timed
    cases: dict[str, Callable[[], Any]] = {
        "mx.eval (computed array)": lambda: mx.eval(x),
        "dist.eval (watchdog armed)": lambda: dist.eval(x),
        "build mx.distributed.all_sum": lambda: mx.distributed.all_sum(x, group=group),
        "build dist.all_sum": lambda: dist.all_sum(x, group),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            for _ in range(2000):
                fn()
            samples[name].append((time.perf_counter() - t0) / 2000 * 1e6)
    return {k: (statistics.median(v), min(v), max(v)) for k, v in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="4KiB,256KiB")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--ops", default="all_sum,send_recv")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9, help="alternating rounds per case")
    parser.add_argument("--seconds", type=float, default=2.0, help="time budget per case and variant")
    parser.add_argument("--control", action="store_true", help="time plain against plain (noise floor)")
    args = parser.parse_args()
    if "MLX_RANK" in os.environ:
        rank_main(args)
        return 0

    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from mlx_portable import _mlx
    from mlx_portable.distributed.local_cluster import run_local

    print(f"mlx {_mlx.mlx_version()}, {os.cpu_count()} CPUs; medians of {args.rounds} alternating rounds")
    print("watchdog and wrapper cost in one process, no communication (us per call, median [min-max]):")
    for name, (med, lo, hi) in watchdog_cost(args.rounds).items():
        print(f"  {name:<30} {med:7.2f} [{lo:.2f}-{hi:.2f}]")

    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)}
    results = run_local([str(Path(__file__).resolve()), *sys.argv[1:]], args.ranks, timeout=900, env=env)
    if any(r.returncode != 0 for r in results):
        for r in results:
            print(f"rank {r.rank} exit {r.returncode}\n{r.stdout}\n{r.stderr}", file=sys.stderr)
        return 1
    data = json.loads(results[0].stdout.strip().splitlines()[-1])
    print(f"ring on 127.0.0.1, {data['size']} ranks; ratio = portable / plain mx.distributed")
    header = ("op", "dtype", "size", "iters", "plain", "alg bw", "portable", "ratio", "spread")
    widths = (9, 8, 9, 5, 10, 12, 10, 5, 11)
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for row in data["rows"]:
        t = row["plain"]
        print(
            f"{row['op']:>9} {row['dtype']:>8} {human(row['bytes']):>9} {row['iters']:>5} "
            f"{t * 1e3:>8.3f}ms {human(row['bytes'] / t) + '/s':>12} {row['portable'] * 1e3:>8.3f}ms "
            f"{row['ratio']:>5.3f} {row['ratio_min']:.2f}-{row['ratio_max']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
