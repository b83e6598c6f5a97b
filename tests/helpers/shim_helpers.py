"""Helpers for the shim tests: version facts of the installed mlx and child processes."""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from packaging.version import Version

from mlx_portable.registry.registry import get_original

from .subproc import run_python


def mlx_version() -> Version:
    import mlx.core as mx

    return Version(mx.__version__)


def mlx_lm_version() -> Version | None:
    try:
        return Version(version("mlx-lm"))
    except PackageNotFoundError:
        return None


def native(obj: Any, attr: str) -> bool:
    """Whether ``obj.attr`` exists without mlx-portable (a patch may have added it)."""
    try:
        get_original(obj, attr)
    except AttributeError:
        return False
    return True


def run_script(
    script: str, env: dict[str, str], *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter; its output combined in ``.stdout``."""
    return run_python(script, *args, env=env, timeout=timeout, combine=True)
