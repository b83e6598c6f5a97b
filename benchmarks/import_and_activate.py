"""What ``import mlx_portable`` adds on top of ``import mlx.core``, what the
first ``activate()`` costs, and what a repeat ``activate()`` costs.

Goals, as ratios to ``import mlx.core`` measured beside them (the machine's
own yardstick): ``import mlx_portable`` after ``mlx.core`` <= 0.30x, the first
``activate()`` <= 0.5x; a repeat ``activate()`` <= 10 us.  Each import is
measured in a fresh interpreter, alternating the cases so that machine noise
hits all alike; medians are printed.  The package is byte-compiled first (as
an installed wheel is), since compiling sources on first import is not what
users pay.  ``--against DIR`` measures another checkout (an older commit, say)
in the same alternation, so the two sets of figures are side by side.

The first ``activate()`` reads every installed distribution's
``entry_points.txt`` for plugins (there is no cache on disk: a cache file is
one more thing someone else could write); the ``entry points`` row is that
read alone, per installed distribution.

    python benchmarks/import_and_activate.py [--runs 30] [--against DIR]

Figures, mlx 0.32.4, Python 3.11, 25 runs, 2 cores shared with other work
(load average about 3-4), this checkout beside the commit before the shim
modules obsolete on the loaded mlx were left out (``--against``), one run:

    import mlx.core                          25.56 ms
    import mlx_portable after mlx.core       10.46 ms = 0.41x   (before: 16.74 ms = 0.65x)
    first activate()                         11.29 ms = 0.44x   (before: 13.42 ms = 0.53x)

An earlier run on a quieter machine: 5.71 ms = 0.41x against 9.23 ms = 0.66x
(``import mlx.core`` 14.04 ms), the first ``activate()`` 0.45x against 0.48x.
What is left of the import is mostly its own machinery (about 20 modules:
registry, settings, validation, hooks) and the shims that may apply here
(the CUDA library check, which scans the installed packages, and 4 small ones).

With the CPU BLAS shim merged at import (``when="import"``), ``import
mlx_portable`` after ``import mlx.core`` measured 41.7 ms = 3.57x (``import
mlx.core`` 11.7 ms): about 24 ms of it was that shim parsing libmlx's ELF
in pure Python (twice), loading the library and reading ``/proc/self/maps``
twice per slot (48 times).  The binding now parses libmlx once (only the
relocation entries that name a symbol), reads ``/proc/self/maps`` once per
bind and once per restore, and runs at ``activate()`` (DESIGN.md's flow:
the import applies only what does not depend on the backend choice).  Same
machine, loaded by other work (load average 3.5-3.7 on 2 cores), 25 runs,
this checkout beside the commit before (``--against``), one run:

    import mlx.core                          14.91 ms
    import mlx_portable after mlx.core        8.92 ms = 0.60x   (before: 71.51 ms = 4.79x)
    first activate()                         63.21 ms = 4.24x   (before: 56.57 ms = 3.79x)

The first ``activate()`` now includes the binding, which the import paid
before.  Split, 15 fresh interpreters each, alternated, same load:
``activate()`` 55.1 ms with the binding, 22.2 ms with
``MLX_PORTABLE_DISABLE=cpu_blas``, so the binding is about 33 ms of it
under this load (libmlx's relocations 3-9 ms, finding and loading
OpenBLAS 2-10 ms, the rest the activate machinery's own imports: the
backend probes, the patch modules, the plugin scan).  Neither goal is met
yet: what is left of the import is its own ~29 modules (marshal and file
opens dominate) and the CUDA library check's scan of the installed packages.

Later, the same tree merged with the other work of the day, a quieter
machine (load average 1.2), 30 runs: ``import mlx.core`` 12.82 ms,
``import mlx_portable`` after it 6.59 ms = 0.51x, first ``activate()``
40.18 ms = 3.13x, repeat 3.3 us; ``activate()`` alone with
``MLX_PORTABLE_DISABLE=cpu_blas`` 20.5-22.8 ms, of which the CUDA probe's
install hint (``pip_command``: ``shutil``, ``sysconfig``) is about 8 ms, the
plugin scan 4 ms and the patch and backend modules' imports most of the rest.

Then the binding and the machinery made cheaper (the ELF read skips the
mlx.core extension and unpacks only libmlx's wanted rows, the install hint
keeps off ``shutil``/``shlex``/``sysconfig``, the CPU routes off ``typing``
and ``threading``), idle machine (load 0.1-0.3), 25 runs, ``--against`` the
commit before, one run; the third row is ``activate(disable=["cpu_blas"])``,
what ``activate()`` costs less the binding:

    import mlx.core                           9.77 ms
    import mlx_portable after mlx.core        5.25 ms = 0.54x   (before: 5.44 ms = 0.56x)
    first activate()                         21.17 ms = 2.17x   (before: 34.57 ms = 3.54x)
    ... with disable=['cpu_blas']             6.99 ms = 0.72x   (before: 17.40 ms = 1.78x)

Then fewer modules on both paths (the settings, ``activation`` and
``cuda/`` modules off the import path; ``activate()`` leaving out the shim
modules obsolete on this mlx or waiting for an unimported module, as the
import does) and the binding's survey of libmlx 3.1 -> 1.4 ms; machine
idle but for this (load 0.9), 31 runs, ``--against`` the commit before:

    import mlx.core                          11.7 ms
    import mlx_portable after mlx.core        5.50 ms = 0.47x   (before: 6.60 ms = 0.57x)
    first activate()                         21.43 ms = 1.84x   (before: 23.91 ms = 2.06x)
    ... with disable=['cpu_blas']             7.51 ms = 0.65x   (before: 9.76 ms = 0.84x)

What is left of the import is 23 modules of the package at about 0.15 ms
each on this machine (``importlib``'s own work per module, the file reads
and unmarshalling; the module bodies themselves run in 0.27 ms all
together) and 0.7 ms of deciding and applying the import-time patches.
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
{third}
t3 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
"""


def one_run(second: str, third: str = "pass", repo: Path = REPO) -> tuple[float, float, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, "-c", MEASURE.format(second=second, third=third)],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,  # ``python -c`` puts the working directory first on sys.path: make it the checkout measured
        check=True,
        timeout=120,
    ).stdout.split()
    return float(out[0]), float(out[1]), float(out[2])


def _median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--against", type=Path, help="another checkout, measured in the same alternation")
    args = parser.parse_args()
    repos = {"this checkout": REPO}
    if args.against is not None:
        repos[f"{args.against}"] = args.against.resolve()
    for repo in repos.values():
        compileall.compile_dir(str(repo / "mlx_portable"), quiet=1)

    mlx_only: list[float] = []
    empty: list[float] = []
    # What the speed tricks avoid: the standard modules mlx.core does not load.
    stdlib: dict[str, list[float]] = {"typing": [], "dataclasses": []}
    added: dict[str, list[float]] = {label: [] for label in repos}
    first_activate: dict[str, list[float]] = {label: [] for label in repos}
    # The same, less the CPU BLAS binding: what activate()'s own machinery costs.
    without_blas: dict[str, list[float]] = {label: [] for label in repos}
    for _ in range(args.runs):
        core_ms, empty_ms, _ = one_run("pass")
        mlx_only.append(core_ms)
        empty.append(empty_ms)
        for module, found in stdlib.items():
            found.append(one_run(f"import {module}")[1])
        for label, repo in repos.items():
            _, portable_ms, activate_ms = one_run("import mlx_portable", "mlx_portable.activate()", repo)
            added[label].append(portable_ms)
            first_activate[label].append(activate_ms)
            plain = one_run("import mlx_portable", "mlx_portable.activate(disable=['cpu_blas'])", repo)
            without_blas[label].append(plain[2])

    import mlx_portable
    from mlx_portable import distributions

    dists = [(p, f) for p, (_, f) in distributions.installed().items()]
    scans = timeit.repeat(lambda: distributions._scan(dists, "mlx_portable.patches"), number=20, repeat=5)
    scan_ms = min(scans) / 20 * 1e3

    mlx_portable.activate()
    n = 200_000
    per_call_us = min(timeit.repeat(mlx_portable.activate, number=n, repeat=5)) / n * 1e6

    core = _median(mlx_only)
    print(
        f"python {sys.version.split()[0]}, mlx {mlx_portable.report().versions['mlx']}, {args.runs} runs each"
    )
    print(
        f"import mlx.core                      median {core:8.2f} ms "
        f"(empty statement: {_median(empty):.3f} ms)"
    )
    for module, found in stdlib.items():
        cost = _median(found)
        print(f"import {module} after mlx.core      median {cost:8.3f} ms = {cost / core:.2f}x")
    for label in repos:
        imp, act = _median(added[label]), _median(first_activate[label])
        print(f"{label}:")
        print(
            f"  import mlx_portable after mlx.core median {imp:8.3f} ms = {imp / core:.2f}x   goal <= 0.30x"
        )
        print(f"  first activate()                   median {act:8.3f} ms = {act / core:.2f}x   goal <= 0.5x")
        own = _median(without_blas[label])
        print(f"  ... with disable=['cpu_blas']      median {own:8.3f} ms = {own / core:.2f}x")
    print(f"repeat activate() (this checkout)    {per_call_us:8.3f} us per call   goal <= 10 us")
    print(
        f"entry points of {len(dists)} distributions  {scan_ms:8.3f} ms "
        f"({scan_ms / max(len(dists), 1) * 1e3:.1f} us each)"
    )


if __name__ == "__main__":
    main()
