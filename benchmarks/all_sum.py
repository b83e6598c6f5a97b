"""all_sum bandwidth over loopback: 2 ring ranks on 127.0.0.1.

    python benchmarks/all_sum.py [--sizes 4KiB,256KiB,4MiB,32MiB] [--ranks 2] [--dtype float32]

For each size, both ranks run ``mx.distributed.all_sum`` directly and through
``mlx_portable.distributed.all_sum`` (+ ``eval`` under the watchdog),
interleaved so that both see the same machine load, and rank 0 prints the
time per call, the algorithm bandwidth (bytes / time) and the ring "bus"
bandwidth (2 (n-1)/n bytes / time), with the wrapper/raw time ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import cast

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


def rank_main(sizes: list[int], dtype_name: str, budget: float) -> None:
    import mlx.core as mx

    import mlx_portable.distributed as dist

    group = dist.init(needs_p2p=False)
    dtype = getattr(mx, dtype_name)
    rows = []
    for nbytes in sizes:
        x = mx.ones(nbytes // dtype.size, dtype=dtype)
        mx.eval(x)

        def raw(x: mx.array = x) -> None:
            mx.eval(mx.distributed.all_sum(x, group=group))

        def wrapped(x: mx.array = x) -> None:
            dist.eval(dist.all_sum(x, group))

        for fn in (raw, wrapped):  # warm up
            fn()
        # Same iteration count on every rank: rank 0 decides, all agree.
        start = time.perf_counter()
        raw()
        slowest = mx.distributed.all_max(mx.array([time.perf_counter() - start]), group=group)
        probe = cast(float, slowest.item())
        iters = max(10, min(500, int(budget / max(probe, 1e-6) / 2)))
        times = {"raw": 0.0, "wrapped": 0.0}
        for _ in range(iters):
            for name, fn in (("raw", raw), ("wrapped", wrapped)):
                t0 = time.perf_counter()
                fn()
                times[name] += time.perf_counter() - t0
        rows.append({"bytes": nbytes, "iters": iters, **{k: v / iters for k, v in times.items()}})
    if group.rank() == 0:
        print(json.dumps({"size": group.size(), "rows": rows}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="4KiB,256KiB,4MiB,32MiB")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per size and variant")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    if "MLX_RANK" in os.environ:
        rank_main(sizes, args.dtype, args.seconds)
        return 0

    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from mlx_portable.distributed.local_cluster import run_local

    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)}
    results = run_local([str(Path(__file__).resolve()), *sys.argv[1:]], args.ranks, timeout=600, env=env)
    if any(r.returncode != 0 for r in results):
        for r in results:
            print(f"rank {r.rank} exit {r.returncode}\n{r.stdout}\n{r.stderr}", file=sys.stderr)
        return 1
    data = json.loads(results[0].stdout.strip().splitlines()[-1])
    from mlx_portable import _mlx

    n = data["size"]
    print(f"all_sum over ring on 127.0.0.1, {n} ranks, {args.dtype}, mlx {_mlx.mlx_version()}")
    header = ("size", "iters", "raw time", "alg bw", "bus bw", "wrapped", "ratio")
    widths = (10, 6, 10, 12, 12, 10, 6)
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for row in data["rows"]:
        t = row["raw"]
        alg = row["bytes"] / t
        bus = alg * 2 * (n - 1) / n
        print(
            f"{human(row['bytes']):>10} {row['iters']:>6} {t * 1e3:>8.3f}ms {human(alg) + '/s':>12} "
            f"{human(bus) + '/s':>12} {row['wrapped'] * 1e3:>8.3f}ms {row['wrapped'] / t:>6.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
