"""What ``import mlx_portable`` adds on top of ``import mlx.core``, what the
first ``activate()`` and a repeat ``activate()`` cost.

Goals (issue: core): <= 3 ms added at import, <= 10 us per repeat activate().
Each import is measured in a fresh interpreter, alternating the two cases so
that machine noise hits both alike; medians are printed.  The package is
byte-compiled first (as an installed wheel is), since compiling sources on
first import is not what users pay.

The first ``activate()`` reads every installed distribution's
``entry_points.txt`` for plugins (there is no cache on disk: a cache file is
one more thing someone else could write); the ``entry points`` row is that
read alone, per installed distribution.

    python benchmarks/import_and_activate.py [--runs 30]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

MEASURE = """
import time
t0 = time.perf_counter()
import mlx.core
t1 = time.perf_counter()
{second}
t2 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3)
"""


def one_run(second: str) -> tuple[float, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, "-c", MEASURE.format(second=second)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    ).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    compileall.compile_dir(str(REPO / "mlx_portable"), quiet=1)

    mlx_only: list[float] = []
    added: list[float] = []
    baseline_second: list[float] = []
    for _ in range(args.runs):
        core_ms, _ = one_run("pass")
        mlx_only.append(core_ms)
        _, portable_ms = one_run("import mlx_portable")
        added.append(portable_ms)
        _, empty_ms = one_run("pass")
        baseline_second.append(empty_ms)

    first: list[float] = []
    for _ in range(args.runs):
        _, activate_ms = one_run("import mlx_portable; mlx_portable.activate()")
        _, import_ms = one_run("import mlx_portable")
        first.append(activate_ms - import_ms)

    import mlx_portable
    from mlx_portable import distributions

    dists = [(p, f) for p, (_, f) in distributions.installed().items()]
    scans = timeit.repeat(lambda: distributions._scan(dists, "mlx_portable.patches"), number=20, repeat=5)
    scan_ms = min(scans) / 20 * 1e3

    mlx_portable.activate()
    n = 200_000
    per_call_us = min(timeit.repeat(mlx_portable.activate, number=n, repeat=5)) / n * 1e6

    print(
        f"python {sys.version.split()[0]}, mlx {mlx_portable.report().versions['mlx']}, {args.runs} runs each"
    )
    print(f"import mlx.core                      median {statistics.median(mlx_only):8.2f} ms")
    print(
        f"import mlx_portable after mlx.core   median {statistics.median(added):8.3f} ms "
        f"(empty statement: {statistics.median(baseline_second):.3f} ms)   goal <= 3 ms"
    )
    print(f"first activate() (less the import)   median {statistics.median(first):8.3f} ms")
    print(
        f"entry points of {len(dists)} distributions  {scan_ms:8.3f} ms "
        f"({scan_ms / max(len(dists), 1) * 1e3:.1f} us each)"
    )
    print(f"repeat activate()                    {per_call_us:8.3f} us per call   goal <= 10 us")


if __name__ == "__main__":
    main()
