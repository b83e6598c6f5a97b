"""Regenerate the sample outputs shown in docs/*.md, or check that they are current.

    python tools/doc_samples.py --write      # rewrite every sample block in place
    python tools/doc_samples.py --check      # exit 1 and show the diff if one drifted

A sample is a fenced block right after a ``<!-- sample: NAME -->`` comment;
NAME is one of :data:`SAMPLES`.  Each is produced by running the real
command in a fresh interpreter (this one, with this checkout first on the
path) and rendering what it reports; only what differs from machine to
machine is fixed: the platform line, the interpreter's path, the device, and
``check``'s speeds.  The first line of each block says which mlx and mlx-lm
it came from; the test (tests/test_doc_samples.py) compares the blocks when
this environment has those versions.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: Samples made from this environment whose block has no version line of its
#: own (Markdown output starts with a heading): they are compared, like the
#: blocks with one, only where mlx and mlx-lm are the samples' versions.
VERSION_BOUND = frozenset({"doctor-markdown"})

#: What a reader's machine is shown as (a 2-core Linux x86-64 CPU box).
PLATFORM = {
    "system": "Linux",
    "release": "6.1.0",
    "machine": "x86_64",
    "libc": "glibc 2.36",
    "python": "3.11.7",
    "implementation": "CPython",
    "executable": "/home/me/project/.venv/bin/python",
}
DEVICE = {"device_name": "AMD EPYC", "architecture": "x86_64", "memory_size": 25_231_179_776}
#: The bound BLAS as the sample shows it (the wheel's version and the thread count vary by machine).
BLAS = {"version": "0.3.34.481.3", "threads": 2}
WIDTH = 80

_MARK = re.compile(r"<!-- sample: ([a-z-]+) -->\n(```[a-z]*\n)(.*?)(```)", re.DOTALL)
_GEMM_ROW = re.compile(
    r"^(  mlx )[\d,.]+( GFLOP/s, NumPy )[\d,.]+( GFLOP/s on the same arrays: )[\d.]+(x NumPy)$", re.MULTILINE
)
_SPEED_ROW = re.compile(r"^(  \S+ \((?:candidate|reference)\)\s+)([\d,]+|-)(\s+)([\d,]+|-)$", re.MULTILINE)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLX_") and k != "NO_COLOR"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["COLUMNS"] = str(WIDTH)
    return env


def _cli(*args: str, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-m", "mlx_portable", *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=600,
    )


def versions() -> tuple[str, str]:
    """(mlx, mlx-lm) of this environment."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        lm = version("mlx-lm")
    except PackageNotFoundError:
        lm = "none"
    return version("mlx"), lm


def _header(command: str) -> str:
    mlx, lm = versions()
    return f"$ {command}    # mlx[cpu] {mlx}, mlx-lm {lm}, Linux x86-64\n"


def _doctor_data() -> dict[str, object]:
    done = _cli("doctor", "--json")
    data: dict[str, object] = json.loads(done.stdout)
    data["platform"] = dict(PLATFORM)
    data["versions"] = {**data["versions"], "python": PLATFORM["python"]}  # type: ignore[dict-item]
    if isinstance(data.get("device"), dict):
        data["device"] = {**data["device"], **DEVICE}  # type: ignore[dict-item]
    blas = data.get("blas")
    if isinstance(blas, dict) and blas.get("state") == "bound":
        data["blas"] = {**blas, **BLAS}
    return data


def doctor() -> str:
    from mlx_portable.cli.doctor_text import render_text

    return _header("mlx-portable doctor") + render_text(_doctor_data(), width=WIDTH)


def doctor_markdown() -> str:
    from mlx_portable.cli.doctor_text import render_markdown

    return render_markdown(_doctor_data())


def check() -> str:
    done = _cli("check", "-q")
    return _header("mlx-portable check") + done.stdout


def run_report() -> str:
    """``run --report`` before a one-line script (the report goes to stderr, first)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mlx-portable-sample-") as folder:
        script = Path(folder) / "hello.py"
        script.write_text("print('hello from the target')\n", encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "mlx_portable", "run", "--report", "hello.py"],
            capture_output=True,
            text=True,
            env=_env(),
            cwd=folder,
            timeout=600,
        )
    return _header("mlx-portable run --report hello.py") + done.stderr + done.stdout


def no_mlx() -> str:
    done = _cli("check", flags=("-S",))
    text = done.stderr.replace(sys.executable, "/usr/bin/python3")
    return "$ mlx-portable check\n" + text


def no_backend() -> str:
    """``pip install mlx`` on Linux without a backend package: the loader's own error."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mlx-portable-sample-") as folder:
        package = Path(folder) / "mlx"
        package.mkdir()
        (package / "__init__.py").write_text("", encoding="utf-8")
        error = "libmlx.so: cannot open shared object file: No such file or directory"
        (package / "core.py").write_text(f"raise ImportError({error!r})\n", encoding="utf-8")
        env = {**_env(), "PYTHONPATH": os.pathsep.join([folder, str(ROOT)])}
        done = subprocess.run(
            [sys.executable, "-S", "-m", "mlx_portable", "check"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=600,
        )
    return "$ mlx-portable check\n" + done.stderr.replace(sys.executable, "/usr/bin/python3")


def version_mismatch() -> str:
    """``versions.backend_package_mismatch()`` for mlx 0.32.0 beside mlx-cuda-13 0.31.2."""
    import tempfile

    from mlx_portable.versions import backend_package_mismatch

    with tempfile.TemporaryDirectory(prefix="mlx-portable-sample-") as site:
        for dist, name, version in (("mlx", "mlx", "0.32.0"), ("mlx_cuda_13", "mlx-cuda-13", "0.31.2")):
            info = Path(site) / f"{dist}-{version}.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(
                f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
            )
        return f"{backend_package_mismatch([site])}\n"


SAMPLES: dict[str, Callable[[], str]] = {
    "doctor": doctor,
    "doctor-markdown": doctor_markdown,
    "check": check,
    "run-report": run_report,
    "no-mlx": no_mlx,
    "no-backend": no_backend,
    "version-mismatch": version_mismatch,
}


def comparable(name: str, text: str) -> str:
    """What must match: ``check``'s speeds (tokens/s, GEMM GFLOP/s) differ from run to run."""
    if name == "check":
        text = _GEMM_ROW.sub(lambda m: f"{m[1]}N{m[2]}N{m[3]}N{m[4]}", text)
        return _SPEED_ROW.sub(lambda m: f"{m[1].rstrip()} N N", text)
    return text


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def samples_in(text: str) -> list[tuple[str, str]]:
    """(name, shown text) of every sample block of a page."""
    return [(m[1], m[3]) for m in _MARK.finditer(text)]


def regenerate(text: str, produced: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match[1]
        if name not in SAMPLES:
            raise SystemExit(f"unknown sample {name!r}; known: {', '.join(SAMPLES)}")
        if name not in produced:
            produced[name] = SAMPLES[name]()
        return f"<!-- sample: {name} -->\n{match[2]}{produced[name]}{match[4]}"

    return _MARK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the sample blocks in docs/")
    mode.add_argument("--check", action="store_true", help="exit 1 if a sample block is out of date")
    args = parser.parse_args(argv)
    produced: dict[str, str] = {}
    stale = 0
    for page in pages():
        text = page.read_text(encoding="utf-8")
        new = regenerate(text, produced)
        if args.write and new != text:
            page.write_text(new, encoding="utf-8")
            print(f"rewrote the samples of {page.relative_to(ROOT)}")
        elif args.check:
            for (name, old), (_, fresh) in zip(samples_in(text), samples_in(new), strict=True):
                if comparable(name, old) != comparable(name, fresh):
                    stale += 1
                    sys.stdout.writelines(
                        difflib.unified_diff(
                            old.splitlines(True), fresh.splitlines(True), f"{page.name}: {name}", "now"
                        )
                    )
    return 1 if stale else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
