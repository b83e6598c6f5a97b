"""What ``MLX_PORTABLE_AUTOACTIVATE=1`` adds to ``import mlx.core``, with and without compiled bytecode.

The switch imports mlx-portable and runs ``activate()`` inside the program's
first ``import mlx``.  pip compiles every module to bytecode at install; uv
does not unless asked (``--compile-bytecode`` or ``UV_COMPILE_BYTECODE=1``).
Python then compiles at first import and caches the result in
``__pycache__``, except where it cannot write there (a read-only
site-packages, a container image) or is told not to
(``PYTHONDONTWRITEBYTECODE=1``): then every start compiles mlx-portable's
modules from source again.

Three environments with the same packages (mlx, mlx-cpu, this checkout's
wheel), measured side by side in one run:

- ``compiled``: ``uv pip install --compile-bytecode`` (what pip does);
- ``uv default``: ``uv pip install``, run with ``PYTHONDONTWRITEBYTECODE=1``
  (no bytecode now, and none written);
- ``uv default, cached``: the same environment after one run without the
  variable (Python wrote ``__pycache__`` on its first import).

Each figure is the median CPU time (user + sys, of the child process) of
``python -c "import mlx.core"`` over ``--runs`` fresh interpreters, switch
off and on alternating; the extra cost of the switch is printed beside
``import mlx.core`` alone.

    python benchmarks/autoactivate_bytecode.py [--runs 15] [--mlx 0.32.4]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "tests"))
from tool_paths import uv_binary  # noqa: E402  (the dev extra's uv, beside this interpreter)


def _cpu_ms(python: Path, env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # cwd: the venv's folder, so that ``-c`` (which puts the cwd first on sys.path) cannot
    # pick up a checkout's mlx_portable instead of the installed one.
    cwd = python.parent.parent
    subprocess.run([str(python), "-c", "import mlx.core"], env=env, check=True, timeout=120, cwd=cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1e3


def _env(switch: bool, dont_write: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLX_PORTABLE", "PYTHON"))}
    if switch:
        env["MLX_PORTABLE_AUTOACTIVATE"] = "1"
    if dont_write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--mlx", default="0.32.4")
    args = parser.parse_args()
    uv = uv_binary()
    if uv is None:
        sys.exit("uv is needed (pip install uv, or the dev extra)")
    with tempfile.TemporaryDirectory(prefix="mlx-portable-bytecode-") as tmp:
        root = Path(tmp)
        subprocess.run([uv, "build", "-q", "--wheel", "--out-dir", str(root / "dist"), str(HERE)], check=True)
        (wheel,) = (root / "dist").glob("mlx_portable-*.whl")
        pythons = {}
        for name, flags in (("uv default", []), ("compiled", ["--compile-bytecode"])):
            venv = root / name.replace(" ", "-")
            subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
            python = venv / "bin" / "python"
            reqs = [f"mlx=={args.mlx}", f"mlx-cpu=={args.mlx}", str(wheel)]
            subprocess.run([uv, "pip", "install", "-q", "--python", str(python), *flags, *reqs], check=True)
            pythons[name] = python
            found = len(list(venv.glob("lib/python*/site-packages/mlx_portable/**/__pycache__/*.pyc")))
            print(f"{name}: {found} bytecode files of mlx_portable after the install")
        cases = [
            ("compiled", pythons["compiled"], False),
            ("uv default, PYTHONDONTWRITEBYTECODE=1", pythons["uv default"], True),
        ]
        results: dict[str, dict[bool, list[float]]] = {label: {False: [], True: []} for label, _, _ in cases}
        for _ in range(args.runs):
            for label, python, dont_write in cases:
                for switch in (False, True):
                    results[label][switch].append(_cpu_ms(python, _env(switch, dont_write)))
        # The same uv environment once Python has written __pycache__ (a writable site-packages).
        cached = "uv default, after the first run wrote __pycache__"
        _cpu_ms(pythons["uv default"], _env(True, False))
        results[cached] = {False: [], True: []}
        for _ in range(args.runs):
            for switch in (False, True):
                results[cached][switch].append(_cpu_ms(pythons["uv default"], _env(switch, False)))
    print(f"import mlx.core, CPU ms (median of {args.runs}; mlx {args.mlx}; {os.cpu_count()} cores)")
    print(f"{'environment':<52}{'switch off':>11}{'switch on':>11}{'added':>9}")
    for label, by_switch in results.items():
        off, on = statistics.median(by_switch[False]), statistics.median(by_switch[True])
        print(f"{label:<52}{off:>11.1f}{on:>11.1f}{on - off:>+9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
