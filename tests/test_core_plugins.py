"""Third-party patches through the ``mlx_portable.patches`` entry-point group.

A real wheel is built here (a zip with its dist-info, as any build backend
writes it), installed into a target folder with whichever installer this
environment has, and activated in a fresh interpreter.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers.subproc import child_env, run_python
from helpers.tool_paths import uv_binary

REPO = Path(__file__).resolve().parents[1]

PLUGIN_MODULE = """
from mlx_portable import Patch

def _apply(ctx):
    import mlx.core as mx
    ctx.set_attr(mx, "mp_plugin_marker", "from the plugin")

marker = Patch(
    "plugin_marker",
    "adds mx.mp_plugin_marker",
    "a test plugin",
    _apply,
)

def broken():
    raise RuntimeError("plugin is broken")
"""


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(dest: Path, *, entry_points: str) -> Path:
    dist = "mp_test_plugin-1.0.dist-info"
    files = {
        "mp_test_plugin.py": PLUGIN_MODULE.encode(),
        f"{dist}/METADATA": b"Metadata-Version: 2.1\nName: mp-test-plugin\nVersion: 1.0\n",
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": entry_points.encode(),
    }
    record = [_record_line(n, d) for n, d in files.items()] + [f"{dist}/RECORD,,"]
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = dest / "mp_test_plugin-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return wheel


def install(wheel: Path, target: Path) -> str:
    """Install with pip or uv when present; else unpack (what installing a pure wheel is)."""
    pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
    if pip.returncode == 0:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
        ]
        subprocess.run([*cmd, str(wheel)], check=True, timeout=120)
        return "pip"
    uv = uv_binary()
    if uv:
        cmd = [uv, "pip", "install", "-q", "--no-deps", "--python", sys.executable, "--target", str(target)]
        subprocess.run([*cmd, str(wheel)], check=True, timeout=120)
        return "uv"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    return "unpack"


def run_with(target: Path, code: str) -> subprocess.CompletedProcess[str]:
    return run_python(code, env=child_env(target, inherit_path=False), timeout=120)


@pytest.mark.slow
def test_entry_point_plugin_is_applied_and_reverted(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, entry_points="[mlx_portable.patches]\nmarker = mp_test_plugin:marker\n")
    install(wheel, tmp_path / "site")
    assert (tmp_path / "site" / "mp_test_plugin-1.0.dist-info" / "entry_points.txt").exists()
    code = (
        "import mlx.core as mx, mlx_portable as m\n"
        "r = m.activate()\n"
        "print(r.patch('plugin_marker').status, mx.mp_plugin_marker)\n"
        "m.deactivate(); print(hasattr(mx, 'mp_plugin_marker'))\n"
    )
    result = run_with(tmp_path / "site", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["applied from the plugin", "False"]


@pytest.mark.slow
def test_broken_plugin_warns_and_activation_goes_on(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, entry_points="[mlx_portable.patches]\nbroken = mp_test_plugin:broken\n")
    install(wheel, tmp_path / "site")
    code = "import mlx_portable as m\nr = m.activate()\nprint('backend', r.backend)\n"
    result = run_with(tmp_path / "site", code)
    assert result.returncode == 0, result.stderr
    assert "backend" in result.stdout
    assert "PortabilityWarning" in result.stderr and "'broken'" in result.stderr
    assert "plugin is broken" in result.stderr
