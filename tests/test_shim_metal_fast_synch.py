"""``metal_fast_synch``: set only on macOS with Metal, never over the user's value."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from shim_helpers import run_child

from mlx_portable.patches import metal_fast_synch as fast_synch_module
from mlx_portable.patches.metal_fast_synch import FAST_SYNCH, metal_fast_synch
from mlx_portable.patches.registry import Registry

REPORT = """
import os
import mlx_portable
entry = mlx_portable.report().patch("metal_fast_synch")
print("value:", os.environ.get("MLX_METAL_FAST_SYNCH"))
print("status:", entry.status)
print("reason:", entry.reason)
"""

linux_only = pytest.mark.skipif(sys.platform == "darwin", reason="checks the behaviour off macOS")


@linux_only
def test_left_unset_off_macos_and_reported(python_env: dict[str, str]) -> None:
    env = {k: v for k, v in python_env.items() if k != FAST_SYNCH}
    done = run_child(REPORT, env)
    assert done.returncode == 0, done.stdout
    assert "value: None" in done.stdout
    assert "status: skipped" in done.stdout
    assert f"only mlx's Metal backend (macOS) reads {FAST_SYNCH}; left unset on {sys.platform}" in done.stdout


@linux_only
def test_user_value_off_macos_is_kept_and_said_to_have_no_effect(python_env: dict[str, str]) -> None:
    done = run_child(REPORT, {**python_env, FAST_SYNCH: "1"})
    assert done.returncode == 0, done.stdout
    assert "value: 1" in done.stdout
    assert f"{FAST_SYNCH}='1' is set but has no effect on {sys.platform}" in done.stdout


@pytest.fixture
def simulated_mac(monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(fast_synch_module, "_machine", lambda: "arm64")
    monkeypatch.delenv(FAST_SYNCH, raising=False)
    registry = Registry()
    registry.register(metal_fast_synch)
    yield registry
    registry.revert_all()


def test_simulated_mac_sets_it_on_import_and_deactivate_unsets_it(simulated_mac: Registry) -> None:
    assert simulated_mac.apply(backend=None, import_time=True) == ["metal_fast_synch"]
    assert os.environ[FAST_SYNCH] == "1"
    simulated_mac.revert_all()
    assert FAST_SYNCH not in os.environ


def test_simulated_mac_keeps_the_users_value(
    simulated_mac: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAST_SYNCH, "0")
    assert simulated_mac.apply(backend="metal") == []
    record = simulated_mac.record("metal_fast_synch")
    assert record.status == "skipped"
    assert "was set by the user" in record.reason
    assert os.environ[FAST_SYNCH] == "0"


def test_simulated_mac_with_cpu_backend_leaves_it_unset(simulated_mac: Registry) -> None:
    assert simulated_mac.apply(backend="cpu") == []
    assert "cpu backend does not read" in simulated_mac.record("metal_fast_synch").reason
    assert FAST_SYNCH not in os.environ


def test_simulated_intel_mac_leaves_it_unset(
    simulated_mac: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fast_synch_module, "_machine", lambda: "x86_64")
    assert simulated_mac.apply(backend=None, import_time=True) == []
    assert "Apple silicon" in simulated_mac.record("metal_fast_synch").reason
    assert FAST_SYNCH not in os.environ
