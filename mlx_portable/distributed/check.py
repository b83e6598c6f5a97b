"""Check a cluster end to end: run this program on every rank.

    mlx.launch --hostfile cluster.json --backend ring -- python3 -m mlx_portable.distributed.check

Each rank initializes through :func:`mlx_portable.distributed.init`, then,
for float32, float16 and bfloat16, runs ``all_sum``, ``all_max``,
``all_min``, ``all_gather``, ``sum_scatter`` and a send/recv around the
ring (each rank sends to the next, receives from the previous), on inputs
computed on this rank's default device, and compares every result with the
value it must have.  Each rank prints one JSON line (``rank``, ``size``,
``backend`` and the ``reason`` it was chosen, this rank's ``device``, the
``cluster`` it was told about, ``ok``, ``results``) and exits 1 if anything
was wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["main", "run_checks"]

DTYPES = ("float32", "float16", "bfloat16")


def _expect(got: Any, want: list[float]) -> str:
    values = [float(v) for v in got.astype(_mx().float32).tolist()]
    return "ok" if values == want else f"got {values}, want {want}"


def _mx() -> Any:
    from .. import _mlx

    return _mlx.core()


def run_checks(
    group: Any, dtypes: tuple[str, ...] = DTYPES, *, p2p: bool = True
) -> dict[str, dict[str, str]]:
    """Run every check on ``group``; ``{dtype: {operation: "ok" or what went wrong}}``."""
    from . import ops
    from .watchdog import eval as dist_eval

    mx = _mx()
    rank, size = group.rank(), group.size()
    n = 4 * size
    base = [float(i) for i in range(n)]
    results: dict[str, dict[str, str]] = {}
    for name in dtypes:
        dtype = getattr(mx, name)
        # Small integers: exact in every dtype, so results compare with ==.
        x = (mx.arange(n) + rank).astype(dtype)
        outcome: dict[str, str] = {}
        ops_to_check: dict[str, tuple[Any, list[float]]] = {
            "all_sum": (ops.all_sum(x, group), [size * v + sum(range(size)) for v in base]),
            "all_max": (ops.all_max(x, group), [v + size - 1 for v in base]),
            "all_min": (ops.all_min(x, group), base),
            "all_gather": (ops.all_gather(x, group), [v + r for r in range(size) for v in base]),
        }
        chunk = n // size
        summed = [size * v + sum(range(size)) for v in base]
        ops_to_check["sum_scatter"] = (ops.sum_scatter(x, group), summed[rank * chunk : (rank + 1) * chunk])
        if p2p and size > 1:
            dst, src = (rank + 1) % size, (rank - 1) % size
            payload = x * 2
            sent = ops.send(payload, dst, group)
            got = ops.recv_like(payload, src, group)
            # MLX may run two independent transfers in either order: when every
            # rank receives first, nobody sends.  Alternate, as a pipeline does.
            for step in (sent, got) if rank % 2 == 0 else (got, sent):
                dist_eval(step)
            ops_to_check["send_recv"] = (got, [2.0 * (v + src) for v in base])
        for op, (array, want) in ops_to_check.items():
            try:
                dist_eval(array)
                outcome[op] = _expect(array, want) if array.dtype == dtype else f"dtype {array.dtype}"
            except Exception as exc:
                outcome[op] = f"{type(exc).__name__}: {exc}"
        results[name] = outcome
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="auto", help="auto (default), ring, mpi, nccl or jaccl")
    parser.add_argument("--dtypes", default=",".join(DTYPES), help="comma list (default: %(default)s)")
    parser.add_argument("--no-p2p", action="store_true", help="skip send/recv (e.g. on NCCL)")
    args = parser.parse_args(argv)

    from .group import init

    group = init(args.backend, needs_p2p=not args.no_p2p, strict=True)
    results = run_checks(group, tuple(args.dtypes.split(",")), p2p=not args.no_p2p)
    from ..activation import is_active, report

    detail = report().details.get("distributed", {})
    ok = all(v == "ok" for per in results.values() for v in per.values())
    line = {
        "rank": group.rank(),
        "size": group.size(),
        "backend": detail.get("backend"),
        "reason": detail.get("reason"),
        "device": detail.get("facts", {}).get("local"),
        "cluster": detail.get("facts", {}).get("cluster"),
        "cluster_source": detail.get("cluster_source"),
        "activated": is_active(),
        "ok": ok,
        "results": results,
    }
    print(json.dumps(line), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
