"""``metal_fast_synch``: never set (upstream calls it unreliable); flagged in a distributed run."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator

import pytest
from helpers.shim_helpers import run_script

from mlx_portable.backend_table import backend_class
from mlx_portable.errors import PortabilityWarning
from mlx_portable.patches.metal_fast_synch import FAST_SYNCH, metal_fast_synch
from mlx_portable.registry.registry import Registry

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
    done = run_script(REPORT, env)
    assert done.returncode == 0, done.stdout
    assert "value: None" in done.stdout
    assert "status: skipped" in done.stdout
    assert f"only mlx's Metal backend (macOS) reads {FAST_SYNCH}; left unset on {sys.platform}" in done.stdout


@linux_only
def test_user_value_off_macos_is_kept_and_said_to_have_no_effect(python_env: dict[str, str]) -> None:
    done = run_script(REPORT, {**python_env, FAST_SYNCH: "1"})
    assert done.returncode == 0, done.stdout
    assert "value: 1" in done.stdout
    assert f"{FAST_SYNCH}='1' is set but has no effect on {sys.platform}" in done.stdout


@pytest.fixture
def simulated_mac(monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delenv(FAST_SYNCH, raising=False)
    for name in (
        "MLX_HOSTFILE",
        "MLX_RANK",
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_RANK",
        "MPI_LOCALNRANKS",
    ):
        monkeypatch.delenv(name, raising=False)
    registry = Registry()
    registry.register(metal_fast_synch)
    yield registry
    registry.revert_all()


def test_simulated_mac_leaves_it_unset_by_default(simulated_mac: Registry) -> None:
    assert simulated_mac.apply(backend=None, import_time=True) == []
    record = simulated_mac.record("metal_fast_synch")
    assert record.status == "skipped"
    assert "left unset (mlx's default" in record.reason
    assert "ml-explore/mlx#3830" in record.reason
    assert FAST_SYNCH not in os.environ


def test_simulated_mac_keeps_the_users_value(
    simulated_mac: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAST_SYNCH, "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no distributed launch: no warning
        assert simulated_mac.apply(backend=backend_class("metal")()) == []
    record = simulated_mac.record("metal_fast_synch")
    assert record.status == "skipped"
    assert "was set by the user; left as it is" in record.reason
    assert os.environ[FAST_SYNCH] == "1"


def test_simulated_mac_warns_when_set_in_a_distributed_launch(
    simulated_mac: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAST_SYNCH, "1")
    monkeypatch.setenv("MLX_HOSTFILE", "/tmp/hosts.json")
    monkeypatch.setenv("MLX_RANK", "0")
    with pytest.warns(
        PortabilityWarning, match=r"MLX_METAL_FAST_SYNCH='1' is set in a distributed run \(ring\)"
    ):
        simulated_mac.apply(backend=backend_class("metal")())
    record = simulated_mac.record("metal_fast_synch")
    assert "together with a distributed launch (ring)" in record.reason
    assert os.environ[FAST_SYNCH] == "1"


def test_simulated_mac_zero_in_a_distributed_launch_is_not_flagged(
    simulated_mac: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAST_SYNCH, "0")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        simulated_mac.apply(backend=backend_class("metal")())
    assert "was set by the user; left as it is" in simulated_mac.record("metal_fast_synch").reason
