"""The installer command of *this* interpreter, for every hint that says what to install.

A module of its own, importing nothing of the project: ``versions`` and
``install_hint`` both use it, and the CUDA diagnosis imports both.
"""

from __future__ import annotations

import sys

__all__ = ["pip_command"]


def pip_command(verb: str = "install") -> str:
    """The installer command that reaches *this* interpreter: ``pip install`` where that is so.

    A bare ``pip`` is right only when it is this environment's own: a venv made
    by uv has no pip at all, and a ``pip`` found elsewhere on ``PATH`` installs
    into another interpreter.  Then the hint is ``PYTHON -m pip install``
    (pip present, not first on ``PATH``) or ``uv pip install --python PYTHON``
    (no pip in this environment).
    """
    import importlib.util
    import os
    import shlex
    import shutil

    python = shlex.quote(sys.executable)
    import sysconfig

    # Looked for in this environment's site-packages too: under ``python -S`` it is not on sys.path.
    try:
        has_pip = os.path.isdir(os.path.join(sysconfig.get_paths()["purelib"], "pip"))
    except Exception:  # sysconfig's data for a platform the process was told it is on (a simulation)
        has_pip = False
    if not has_pip:
        try:
            has_pip = importlib.util.find_spec("pip") is not None
        except (ImportError, ValueError):
            has_pip = False
    if not has_pip:
        return f"uv pip {verb} --python {python}"
    found = shutil.which("pip")
    here = os.path.dirname(os.path.abspath(sys.executable))
    if found is not None and os.path.dirname(os.path.abspath(found)) == here:
        return f"pip {verb}"
    return f"{python} -m pip {verb}"
