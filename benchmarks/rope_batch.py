"""Batch RoPE on old mlx (the ``rope_batch_offsets`` shim) against the native call of a newer mlx.

    python benchmarks/rope_batch.py [--old /work/envs/mlx-0.28.0/bin/python]
                                    [--new /work/envs/mlx-0.32.4/bin/python] [--rounds 9]

Two worker processes, one per interpreter, time ``mx.fast.rope`` with one
offset per sequence (a ``batch_generate`` decode step: (B, 32, 1, 128)
queries) in alternating rounds, so both see the same machine load: on the old
mlx through the shim (and, for reference, the shim's former per-sequence
loop), on the new mlx natively.  As in a decode step, where RoPE is a node of
the whole model's graph, ``--per-eval`` calls (default 32, one per layer of a
32-layer model) are evaluated together and the time is divided by them; with
``--per-eval 1`` every call is evaluated alone, and the figure is mostly mlx's
evaluation round trip (50-120 us on this machine, whatever the op).  Each
round's figure is the median; the ratio printed is shim / native, median over
rounds with its spread, and ``shim/old scalar`` compares the shim with the old
mlx's own call for one offset shared by the batch (what that mlx can do
natively; it isolates the shim's cost from the two versions' differences).
The outputs of the two mlx versions are compared bit for bit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = r"""
import json, sys, time, statistics
import mlx.core as mx
import mlx_portable
mlx_portable.activate()
from mlx_portable.registry.registry import get_original

native = get_original(mx.fast, "rope")

def per_sequence(x, offsets):  # the shim before: one kernel call per sequence
    return mx.concatenate([native(x[i:i+1], 128, traditional=False, base=10000.0, scale=1.0,
                                  offset=offsets[i]) for i in range(x.shape[0])], axis=0)

cases = {}
for line in sys.stdin:
    cmd = json.loads(line)
    key = (cmd["batch"], cmd["dtype"])
    if key not in cases:
        mx.random.seed(0)
        x = mx.random.normal((cmd["batch"], 32, 1, 128)).astype(getattr(mx, cmd["dtype"]))
        offsets = mx.array([(37 * i) % 500 + 3 for i in range(cmd["batch"])])
        mx.eval(x, offsets)
        cases[key] = (x, offsets)
    x, offsets = cases[key]
    if cmd["variant"] == "loop":
        fn = lambda: per_sequence(x, offsets)
    elif cmd["variant"] == "scalar":  # what this mlx does natively: one offset for the whole batch
        fn = lambda: native(x, 128, traditional=False, base=10000.0, scale=1.0, offset=7)
    else:
        fn = lambda: mx.fast.rope(x, 128, traditional=False, base=10000.0, scale=1.0, offset=offsets)
    if cmd.get("save"):
        out = fn().astype(mx.float32)
        mx.eval(out)
        import numpy as np
        np.save(cmd["save"], np.array(out))
    per_eval = cmd["per_eval"]
    mx.eval(*[fn() for _ in range(per_eval)])
    times = []
    for _ in range(cmd["calls"]):
        t0 = time.perf_counter()
        mx.eval(*[fn() for _ in range(per_eval)])
        times.append((time.perf_counter() - t0) / per_eval)
    print(json.dumps({"median": statistics.median(times), "mlx": mx.__version__}), flush=True)
"""


class Worker:
    def __init__(self, python: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [python, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )

    def run(self, **cmd: object) -> dict[str, float | str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"worker {self.proc.args[0]} ended early")
        return json.loads(line)  # type: ignore[no-any-return]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", default="/work/envs/mlx-0.28.0/bin/python")
    parser.add_argument("--new", default="/work/envs/mlx-0.32.4/bin/python")
    parser.add_argument("--batches", default="4,16")
    parser.add_argument("--dtypes", default="bfloat16,float32")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=50, help="evaluations per round and variant")
    parser.add_argument("--per-eval", type=int, default=32, help="rope calls per evaluation")
    args = parser.parse_args()
    import numpy as np

    old, new = Worker(args.old), Worker(args.new)
    try:
        header = None
        with tempfile.TemporaryDirectory() as tmp:
            for dtype in args.dtypes.split(","):
                for batch in (int(b) for b in args.batches.split(",")):
                    a, b = Path(tmp, "old.npy"), Path(tmp, "new.npy")
                    first_old = old.run(
                        batch=batch, dtype=dtype, variant="shim", calls=1, per_eval=1, save=str(a)
                    )
                    first_new = new.run(
                        batch=batch, dtype=dtype, variant="native", calls=1, per_eval=1, save=str(b)
                    )
                    if header is None:
                        header = f"shim on mlx {first_old['mlx']} against native mlx {first_new['mlx']}"
                        print(
                            header + f"; {args.per_eval} call(s) per evaluation; medians of {args.rounds} "
                            "alternating rounds, ratio = x / native"
                        )
                        print(
                            f"{'dtype':>9} {'B':>3} {'native':>9} {'shim':>9} {'ratio':>6} {'spread':>10} "
                            f"{'loop before':>11} {'ratio':>6} {'shim/old scalar':>15} {'max |diff|':>10}"
                        )
                    diff = float(np.abs(np.load(a) - np.load(b)).max())
                    shim, loop, native, r_shim, r_loop, r_scalar = [], [], [], [], [], []
                    for r in range(args.rounds):
                        plan = [(new, "native"), (old, "shim"), (old, "loop"), (old, "scalar")]
                        got = {
                            variant: float(
                                worker.run(
                                    batch=batch,
                                    dtype=dtype,
                                    variant=variant,
                                    calls=args.calls,
                                    per_eval=args.per_eval,
                                )["median"]
                            )
                            for worker, variant in (plan if r % 2 else plan[::-1])
                        }
                        native.append(got["native"])
                        shim.append(got["shim"])
                        loop.append(got["loop"])
                        r_shim.append(got["shim"] / got["native"])
                        r_loop.append(got["loop"] / got["native"])
                        r_scalar.append(got["shim"] / got["scalar"])
                    print(
                        f"{dtype:>9} {batch:>3} {statistics.median(native) * 1e6:>7.1f}us "
                        f"{statistics.median(shim) * 1e6:>7.1f}us {statistics.median(r_shim):>6.2f} "
                        f"{min(r_shim):>4.2f}-{max(r_shim):<4.2f} {statistics.median(loop) * 1e6:>9.1f}us "
                        f"{statistics.median(r_loop):>6.2f} {statistics.median(r_scalar):>15.2f} "
                        f"{diff:>10.3g}"
                    )
    finally:
        old.close()
        new.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
