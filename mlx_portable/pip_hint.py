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

    Every ``activate()`` on a machine without CUDA builds this hint (the CUDA
    probe's reason), so the common case stays off ``shutil``, ``shlex`` and
    ``sysconfig`` (7 ms of imports on a 2-core machine, more than the rest of
    the probe): they are imported only for a path that needs quoting and under
    ``python -S``.
    """
    import os

    python = _quoted(sys.executable)
    if not _has_pip():
        return f"uv pip {verb} --python {python}"
    here = os.path.dirname(os.path.abspath(sys.executable))
    found = _first_on_path("pip")
    if found is not None and os.path.dirname(os.path.abspath(found)) == here:
        return f"pip {verb}"
    return f"{python} -m pip {verb}"


#: What a POSIX shell takes unquoted (``shlex.quote``'s own set).
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_")


def _quoted(word: str) -> str:
    if word and _SAFE.issuperset(word):
        return word
    import shlex

    return shlex.quote(word)


def _has_pip() -> bool:
    """Whether pip is installed in this environment (its site-packages, even under ``python -S``)."""
    import os

    for folder in sys.path:
        if os.path.basename(folder) in ("site-packages", "dist-packages") and os.path.isdir(
            os.path.join(folder, "pip")
        ):
            return True
    import sysconfig

    try:
        if os.path.isdir(os.path.join(sysconfig.get_paths()["purelib"], "pip")):
            return True
    except Exception:  # sysconfig's data for a platform the process was told it is on (a simulation)
        pass
    import importlib.util

    try:
        return importlib.util.find_spec("pip") is not None
    except (ImportError, ValueError):
        return False


def _first_on_path(command: str) -> str | None:
    """``shutil.which(command)`` on POSIX; elsewhere shutil itself (PATHEXT and the like)."""
    import os

    if os.name != "posix":
        import shutil

        return shutil.which(command)
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or os.curdir, command)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None
