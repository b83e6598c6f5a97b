"""Start-up cost of the auto-activation switch, cost of the first ``activate()``, and the no-mlx probe.

Every figure is a median over ``--runs`` fresh interpreters (default 30),
alternating the cases compared so that machine noise hits both alike; the
ratios are printed side by side.

1. **Start-up with ``MLX_PORTABLE_AUTOACTIVATE=1``**, for a Python that never
   imports mlx: ``python -c pass`` in a throw-away virtual environment whose
   site-packages hold the checkout's ``.pth`` file (and start-up module),
   switch on against switch off.  Goal: <= 1 ms added.
2. **First ``activate()``** against ``import mlx.core`` in the same
   interpreter (CPU time of the thread) (``import mlx_portable`` measured apart), also with 250 extra
   installed distributions on ``sys.path``.  Goal: ratio <= 0.5.
3. **``probe_installed()``**, mlx not imported.  Goal: <= 5 ms.

``--repo PATH`` measures another checkout with the same procedure (e.g. the
main branch, for before/after figures).  The package is byte-compiled first.

    python benchmarks/lifecycle.py [--runs 30] [--repo PATH]
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "tests"))
from helpers.subproc import env_without_checkout, linked_venv  # noqa: E402  (the tests' venv builder)

# CPU time of this thread (time.thread_time): far less disturbed by a shared machine than wall time.
ACTIVATE = """
import time
t0 = time.thread_time()
import mlx.core
t1 = time.thread_time()
import mlx_portable
t2 = time.thread_time()
mlx_portable.activate()
t3 = time.thread_time()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
"""

PROBE = """
import time
t0 = time.perf_counter()
import mlx_portable
t1 = time.perf_counter()
facts = mlx_portable.probe_installed()
t2 = time.perf_counter()
import sys
assert "mlx.core" not in sys.modules
print((t1 - t0) * 1e3, (t2 - t1) * 1e3)
"""


def make_venv(where: Path, repo: Path) -> Path:
    """A venv that sees the test environment's packages, with this checkout "installed" by ``.pth``."""
    python, site = linked_venv(where)
    (site / "01_checkout.pth").write_text(f"{repo}\n")
    for item in (repo / "pth").iterdir():
        if item.suffix in (".pth", ".py"):
            shutil.copy(item, site / item.name)
    compileall.compile_dir(str(site), quiet=1, maxlevels=0)  # as an installer that compiles bytecode does
    return python


def fake_distributions(where: Path, count: int) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        info = where / f"fake_dist_{i}-1.{i}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fake-dist-{i}\nVersion: 1.{i}\n")
        (info / "entry_points.txt").write_text(f"[console_scripts]\nfake{i} = fake_dist_{i}:main\n")
    return where


def wall_and_cpu_ms(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, from ``wait4``) of one child, in ms."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} exited {proc.returncode}")
    return (time.perf_counter() - t0) * 1e3, (usage.ru_utime + usage.ru_stime) * 1e3


def startup_module_us(python: Path) -> float | None:
    """``-X importtime``'s cumulative time of the start-up module, in microseconds (noise-free-ish)."""
    done = subprocess.run(
        [str(python), "-X", "importtime", "-c", "pass"],
        env=env_without_checkout(MLX_PORTABLE_AUTOACTIVATE="1"),
        capture_output=True,
        text=True,
        check=True,
    )
    for line in done.stderr.splitlines():
        if line.rstrip().endswith("_mlx_portable_startup") or line.rstrip().endswith(
            "mlx_portable._autoactivate"
        ):
            return float(line.split("|")[1])
    return None


def floats(cmd: list[str], env: dict[str, str]) -> list[float]:
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return [float(x) for x in out.split()]


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--repo", type=Path, default=HERE)
    args = parser.parse_args()
    repo = args.repo.resolve()
    compileall.compile_dir(str(repo / "mlx_portable"), quiet=1)
    runs = args.runs
    print(f"checkout {repo}, python {sys.version.split()[0]}, {runs} runs each, alternating; machine shared")

    with tempfile.TemporaryDirectory() as tmp:
        python = make_venv(Path(tmp) / "venv", repo)
        # 1. start-up, switch on vs off, never importing mlx
        off: list[tuple[float, float]] = []
        on: list[tuple[float, float]] = []
        for _ in range(runs):
            off.append(wall_and_cpu_ms([str(python), "-c", "pass"], env_without_checkout()))
            auto = env_without_checkout(MLX_PORTABLE_AUTOACTIVATE="1")
            on.append(wall_and_cpu_ms([str(python), "-c", "pass"], auto))
        for i, what in ((0, "wall"), (1, "CPU ")):
            a, b = median([x[i] for x in off]), median([x[i] for x in on])
            print(
                f"start-up, no mlx, {what}: switch off {a:7.2f} ms   on {b:7.2f} ms   "
                f"added {b - a:+6.2f} ms   (goal <= 1 ms)"
            )
        cumulative = startup_module_us(python)
        if cumulative is not None:
            print(f"start-up module import (-X importtime, cumulative): {cumulative / 1e3:.3f} ms")

        # 2. first activate() against import mlx.core, plain and with 250 extra distributions
        extra = fake_distributions(Path(tmp) / "many", 250)
        for label, env in (
            ("installed as is", env_without_checkout(PYTHONPATH=str(repo))),
            ("+250 distributions", env_without_checkout(PYTHONPATH=os.pathsep.join([str(repo), str(extra)]))),
        ):
            core: list[float] = []
            imp: list[float] = []
            act: list[float] = []
            for _ in range(runs):
                c, i, a = floats([sys.executable, "-c", ACTIVATE], env)
                core.append(c)
                imp.append(i)
                act.append(a)
            print(
                f"first activate(), {label:18s}: import mlx.core {median(core):6.2f} ms   "
                f"import mlx_portable {median(imp):6.2f} ms   activate() {median(act):6.2f} ms   "
                f"ratio activate/mlx.core {median(act) / median(core):5.2f}   (goal <= 0.5)"
            )

        # 3. probe without mlx
        if (repo / "mlx_portable" / "installed_probe.py").exists():
            imp_ms: list[float] = []
            probe_ms: list[float] = []
            for _ in range(runs):
                i, p = floats([sys.executable, "-c", PROBE], env_without_checkout(PYTHONPATH=str(repo)))
                imp_ms.append(i)
                probe_ms.append(p)
            print(
                f"probe_installed():  {median(probe_ms):6.2f} ms (after import mlx_portable, "
                f"{median(imp_ms):.2f} ms)   goal <= 5 ms"
            )
        else:
            print("probe_installed(): not in this checkout")


if __name__ == "__main__":
    main()
