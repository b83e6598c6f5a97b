"""``patch_status()``: "is anything patched, or will it be?"; ``is_active()``: whether activate() ran."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers.subproc import REPO, child_env, env_without_checkout, linked_venv, run_python
from helpers.tool_paths import uv_binary

STATUS = """
import json, sys
import mlx_portable
def show(label):
    s = mlx_portable.patch_status()
    print(label + "=" + json.dumps({"bool": bool(s), "active": s.active, "applied": list(s.applied),
          "waiting": list(s.waiting), "armed": s.activates_on_import, "enabled": s.enabled,
          "is_active": mlx_portable.is_active(), "text": str(s)}))
show("import")
import mlx.core
show("mlx")
if len(sys.argv) > 1:
    mlx_portable.activate()
    show("activated")
"""


def _states(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    assert done.returncode == 0, done.stderr
    return {
        line.split("=", 1)[0]: json.loads(line.split("=", 1)[1])
        for line in done.stdout.splitlines()
        if "=" in line
    }


def test_plain_import_is_not_active_but_may_be_patched() -> None:
    states = _states(run_python(STATUS, "activate", env=child_env()))
    mlx = states["mlx"]
    assert mlx["is_active"] is False and mlx["active"] is False and mlx["armed"] is False
    assert mlx["bool"] == bool(mlx["applied"] or mlx["waiting"])
    assert "not activated" in mlx["text"]
    done = states["activated"]
    assert done["is_active"] is True and done["active"] is True
    assert set(mlx["applied"]) <= set(done["applied"])
    assert done["text"].startswith("mlx-portable active (activate() has run); ")


@pytest.mark.slow_every_mlx
def test_the_switch_arms_activation_before_mlx_is_imported(tmp_path: Path) -> None:
    """Under MLX_PORTABLE_AUTOACTIVATE=1 (the installed start-up hook): armed, then active at import mlx."""
    uv = uv_binary()
    if uv is None:
        pytest.skip("uv is needed to install mlx-portable with its start-up hook")
    python, _ = linked_venv(tmp_path / "venv")  # installed: its .pth start-up hook runs
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), "--no-deps", "-e", str(REPO)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    done = subprocess.run(
        [str(python), "-c", STATUS], env=env_without_checkout(MLX_PORTABLE_AUTOACTIVATE="1"),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    states = _states(done)
    before, after = states["import"], states["mlx"]
    assert before["is_active"] is False and before["armed"] is True and before["bool"] is True
    assert "activates at the first import of mlx" in before["text"]
    assert after["is_active"] is True and after["armed"] is False


@pytest.mark.slow_every_mlx
def test_switched_off_nothing_is_or_will_be() -> None:
    states = _states(run_python(STATUS, env=child_env(MLX_PORTABLE="0", MLX_PORTABLE_AUTOACTIVATE="1")))
    for state in states.values():
        assert state["bool"] is False and state["enabled"] is False and state["applied"] == []
        assert "off (MLX_PORTABLE=0)" in state["text"]
