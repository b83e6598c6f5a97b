"""A folder that holds an installed patch plugin (a module and its dist-info), for child processes.

``importlib.metadata`` finds a ``*.dist-info`` folder on any ``sys.path``
entry, so putting this folder on ``PYTHONPATH`` installs the plugin for the
child without building a wheel.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

FAILING_PATCH = """
from mlx_portable import Patch

def _apply(ctx):
    raise RuntimeError("this patch always fails")

always_fails = Patch("always_fails", "a patch that fails", "a test plugin", _apply)
"""

BROKEN_MODULE = 'raise ImportError("this plugin module is broken")\n'


def plugin_site(root: Path, module: str, entry_point: str, *, name: str = "mp_site_plugin") -> Path:
    """``root/site`` with module ``name`` (source ``module``) registered as ``entry_point``."""
    site = root / "site"
    dist = site / f"{name}-1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (site / f"{name}.py").write_text(textwrap.dedent(module), encoding="utf-8")
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        f"[mlx_portable.patches]\n{name} = {name}:{entry_point}\n", encoding="utf-8"
    )
    return site
