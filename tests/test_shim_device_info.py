"""``device_info``: ``mx.device_info`` / ``mx.device_count`` on mlx < 0.30.4.

Real on the CPU wheels; Metal and CUDA through the simulated ``mlx.core`` of
tests/helpers/simulated_mlx.py (tests say "simulated").
"""

from __future__ import annotations

import importlib.util
import platform
from collections.abc import Iterator

import pytest
from helpers.shim_helpers import native, run_script
from helpers.simulated_mlx import CUDA_KEYS_H100, METAL_KEYS_M2, make_fake_mlx

import mlx_portable
from mlx_portable import _mlx
from mlx_portable.backend_table import backend_class
from mlx_portable.backends import cuda as cuda_backend
from mlx_portable.patches.device_info import device_info as device_info_patch
from mlx_portable.patches.device_info import make_device_count, make_device_info
from mlx_portable.registry.registry import Registry

mx = pytest.importorskip("mlx.core")

NATIVE = native(mx, "device_info") and native(mx, "device_count")


def _needs_shim() -> None:
    if NATIVE:
        pytest.skip(f"mlx {mx.__version__} has mx.device_info natively: nothing to shim")


WIRED_HELPER = """
import mlx_portable
mlx_portable.activate()
from mlx_lm.utils import maybe_set_recommended_wired_limit
print("previous limit:", maybe_set_recommended_wired_limit())
"""


def test_mlx_lm_wired_limit_helper_works_with_the_shim_and_fails_without(python_env: dict[str, str]) -> None:
    _needs_shim()
    if importlib.util.find_spec("mlx_lm") is None:
        pytest.skip("mlx-lm is not installed")
    with_shim = run_script(WIRED_HELPER, python_env)
    assert with_shim.returncode == 0, with_shim.stdout
    # CPU: no max_recommended_working_set_size, so mlx-lm leaves the limit alone.
    assert "previous limit: None" in with_shim.stdout

    # Only this patch left out (mlx-lm would not even import without thread_local_stream).
    without = run_script(WIRED_HELPER, {**python_env, "MLX_PORTABLE_DISABLE": "device_info"})
    assert without.returncode != 0
    assert "AttributeError: module 'mlx.core' has no attribute 'device_info'" in without.stdout


def test_added_functions_match_the_cpu_backend_and_newer_mlx_keys() -> None:
    _needs_shim()
    mlx_portable.activate()
    try:
        assert mlx_portable.report().patch("device_info").status == "applied"
        info = mx.device_info()
        assert set(info) == {"device_name", "architecture"}  # what mlx >= 0.30.4 returns on the CPU
        assert info == mx.device_info(mx.cpu) == mx.device_info(mx.Device(mx.cpu))
        assert info["architecture"] == platform.machine()
        assert info["device_name"] == mlx_portable.current_backend().device_info().device_name
        assert mx.device_info(mx.gpu) == {}  # a CPU wheel has no GPU; newer mlx says {} too
        assert mx.device_count(mx.cpu) == 1
        assert mx.device_count(mx.gpu) == 0
        with pytest.raises(TypeError, match="device type"):
            mx.device_count(mx.Device(mx.cpu))
        with pytest.raises(TypeError, match="device_info"):
            mx.device_info("cpu")
    finally:
        mlx_portable.deactivate()
    assert not hasattr(mx, "device_info")


def test_cpu_keys_equal_those_of_the_real_device_info() -> None:
    if not NATIVE:
        pytest.skip(f"mlx {mx.__version__} has no native mx.device_info to compare with")
    ours = make_device_info(mx)
    assert set(ours(mx.cpu)) == set(mx.device_info(mx.cpu))
    assert ours(mx.cpu)["architecture"] == mx.device_info(mx.cpu)["architecture"]
    assert ours(mx.gpu) == mx.device_info(mx.gpu)
    assert make_device_count(mx)(mx.gpu) == mx.device_count(mx.gpu)
    assert make_device_count(mx)(mx.cpu) == mx.device_count(mx.cpu)


@pytest.fixture
def fake_registry() -> Iterator[Registry]:
    registry = Registry()
    registry.register(device_info_patch)
    yield registry
    registry.revert_all()
    _mlx.set_override(None)


def test_simulated_metal_0_28_returns_metal_keys_and_follows_the_default_device(
    fake_registry: Registry,
) -> None:
    registry = fake_registry
    fake = make_fake_mlx("0.28.0", "metal")
    _mlx.set_override(fake)
    assert registry.apply(backend=backend_class("metal")()) == ["device_info"]
    assert fake.device_info() == METAL_KEYS_M2  # GPU is the default device
    assert fake.device_info(fake.gpu)["max_recommended_working_set_size"] == 77_309_411_328
    assert fake.device_count(fake.gpu) == 1
    fake.set_default_device(fake.cpu)
    assert "max_recommended_working_set_size" not in fake.device_info()
    assert set(fake.device_info()) == {"device_name", "architecture"}
    registry.revert_all()
    assert not hasattr(fake, "device_info")


def test_simulated_cpu_wheel_0_28_never_calls_metal_device_info(fake_registry: Registry) -> None:
    registry = fake_registry
    fake = make_fake_mlx("0.28.0", "cpu")
    with pytest.raises(RuntimeError, match="Cannot get device info without metal backend"):
        fake.metal.device_info()
    _mlx.set_override(fake)
    registry.apply(backend=backend_class("cpu")())
    assert fake.device_info(fake.gpu) == {}
    assert fake.device_count(fake.gpu) == 0


def test_simulated_cuda_0_30_0_names_the_driver_gpu(
    fake_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = fake_registry
    fake = make_fake_mlx("0.30.0", "cuda")
    monkeypatch.setattr(cuda_backend, "proc_gpu_names", lambda: [CUDA_KEYS_H100["device_name"]] * 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    _mlx.set_override(fake)
    registry.apply(backend=backend_class("cuda")())
    assert fake.device_count(fake.gpu) == 2
    assert fake.device_info(fake.gpu) == {"device_name": CUDA_KEYS_H100["device_name"]}
    assert "max_recommended_working_set_size" not in fake.device_info()  # mlx-lm skips the wired limit
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert fake.device_count(fake.gpu) == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert fake.device_count(fake.gpu) == 0
    assert fake.device_info(fake.gpu) == {}


def test_simulated_0_30_6_is_obsolete(fake_registry: Registry) -> None:
    registry = fake_registry
    fake = make_fake_mlx("0.30.6", "metal")
    _mlx.set_override(fake)
    original = fake.device_info
    assert registry.apply(backend=backend_class("metal")()) == []
    assert registry.record("device_info").status == "obsolete"
    assert fake.device_info is original
