"""The one way the tests start a fresh interpreter: this checkout's mlx_portable first on its path.

Activation changes the process (patches, hooks, the cached backend), so a
test that needs a clean start, ``MLX_PORTABLE=0``, or an environment variable
read at import runs its scenario in a child.  :func:`run_python` gives the
child's stdout and stderr (``combine=True``: both in ``.stdout``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["REPO", "child_env", "run_python"]

REPO = Path(__file__).resolve().parents[1]


def child_env(
    *paths: str | os.PathLike[str], base: dict[str, str] | None = None, **extra: str
) -> dict[str, str]:
    """``os.environ`` (or ``base``) plus ``extra``; ``PYTHONPATH`` = ``paths``, this checkout, the rest."""
    import mlx_portable

    root = str(Path(mlx_portable.__file__).resolve().parent.parent)
    env = dict(os.environ if base is None else base)
    parts = [os.fspath(p) for p in paths] + [root, env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in parts if p)
    env.update(extra)
    return env


def run_python(
    code: str,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 240,
    combine: bool = False,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code args...`` in a fresh interpreter (default environment: :func:`child_env`)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=child_env() if env is None else env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if combine else subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )
