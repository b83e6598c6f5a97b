"""Where the tests find the command-line tools the dev extra installs.

The README's test command runs ``.venv/bin/python -m pytest`` without
activating the venv, so ``.venv/bin`` is not on ``PATH``: a tool looked up
with ``shutil.which`` alone is missing there although the dev extra
installed it.  Look beside the interpreter first.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def uv_binary() -> str | None:
    """The ``uv`` executable of this environment (the dev extra's), else one on ``PATH``."""
    try:
        from uv import find_uv_bin  # the uv package's own lookup (its scripts folder)

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    beside = Path(sys.executable).with_name("uv")
    if beside.is_file():
        return str(beside)
    return shutil.which("uv")
