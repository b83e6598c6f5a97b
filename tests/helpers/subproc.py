"""The one way the tests start a fresh interpreter: this checkout's mlx_portable first on its path.

Activation changes the process (patches, hooks, the cached backend), so a
test that needs a clean start, ``MLX_PORTABLE=0``, or an environment variable
read at import runs its scenario in a child.  :func:`child_env` builds the
child's environment; :func:`run_python` runs ``python -c code`` (or
``python -m module``) and gives its stdout and stderr (``combine=True``: both
in ``.stdout``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "REPO",
    "child_env",
    "env_with_settings",
    "env_without_checkout",
    "linked_venv",
    "run_python",
    "sigint_default",
]

REPO = Path(__file__).resolve().parents[2]


def child_env(
    *paths: str | os.PathLike[str],
    clear: Sequence[str] = ("MLX_PORTABLE",),
    inherit_path: bool = True,
    base: dict[str, str] | None = None,
    **extra: str,
) -> dict[str, str]:
    """``os.environ`` (or ``base``) without variables starting with ``clear``, plus ``extra``.

    ``PYTHONPATH`` is ``paths``, then this checkout, then (``inherit_path``)
    the inherited value.
    """
    import mlx_portable

    root = str(Path(mlx_portable.__file__).resolve().parent.parent)
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith(tuple(clear))}
    parts = [os.fspath(p) for p in paths] + [root]
    if inherit_path:
        parts.append(env.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = os.pathsep.join(p for p in parts if p)
    env.update(extra)
    return env


def env_with_settings(**extra: str) -> dict[str, str]:
    """``os.environ`` plus ``extra``, ``MLX_PORTABLE*`` settings kept, this checkout first on ``PYTHONPATH``.

    :func:`child_env` clears the settings; this keeps the ones the test run was
    started with.
    """
    return child_env(clear=(), **extra)


def run_python(
    code: str | None,
    *args: str,
    env: dict[str, str] | None = None,
    module: str | None = None,
    interpreter_args: Sequence[str] = (),
    timeout: float = 240,
    combine: bool = False,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code args...`` (or ``python -m module args...``) in a fresh interpreter."""
    target = ["-m", module] if module is not None else ["-c", code or ""]
    return subprocess.run(
        [sys.executable, *interpreter_args, *target, *args],
        env=child_env() if env is None else env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if combine else subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


def sigint_default() -> None:
    """``Popen(preexec_fn=sigint_default)``: the child takes SIGINT even where this run ignores it.

    A shell starts a background job with SIGINT ignored, and a Python started
    with SIGINT ignored installs no ``KeyboardInterrupt`` handler; a test that
    sends the child SIGINT would then wait for nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def linked_venv(where: Path) -> tuple[Path, Path]:
    """A fresh venv at ``where`` whose site-packages also sees the test environment's packages.

    Returns its interpreter and its site-packages.  mlx, numpy and the rest come
    from the test environment through a ``.pth`` file ("00" sorts before the
    project's own ``.pth`` files), so installing the project there is quick.
    """
    venv.EnvBuilder(with_pip=False, symlinks=True).create(where)
    python = where / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
    )
    (site / "00_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python, site


def env_without_checkout(**extra: str) -> dict[str, str]:
    """``os.environ`` with no ``MLX_PORTABLE*`` variable and no ``PYTHONPATH``, plus ``extra``.

    For a child that must find mlx-portable the way an installed package is
    found (its venv's site-packages), not through this checkout.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLX_PORTABLE") and k != "PYTHONPATH"}
    env.update(extra)
    return env


def build_wheel(out: Path) -> Path:
    """Build mlx-portable's wheel into ``out`` with the dev extra's uv; skip where that cannot work."""
    import pytest

    from .tool_paths import uv_binary

    uv = uv_binary()  # the dev extra installs it beside the interpreter, not on PATH
    if uv is None:
        pytest.skip("uv is needed to build and install the wheel")
    built = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if built.returncode != 0:
        pytest.skip(f"could not build the wheel here: {built.stderr[-300:]}")
    (wheel,) = out.glob("mlx_portable-*.whl")
    return wheel


def venv_with_wheel(tmp_path: Path) -> tuple[Path, Path]:
    """A venv linked to this one's packages with mlx-portable's built wheel installed: (python, site)."""
    from .tool_paths import uv_binary

    wheel = build_wheel(tmp_path / "dist")
    python, site = linked_venv(tmp_path / "venv")
    subprocess.run(
        [uv_binary() or "uv", "pip", "install", "--python", str(python), "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return python, site
