"""``wired_limit``: ``set_wired_limit`` does nothing where no wired memory is in use.

Real on the CPU wheels (where mlx itself already returns 0, so the patch is
obsolete); Metal through the simulated ``mlx.core`` (tests say "simulated").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers.simulated_mlx import METAL_KEYS_M2, make_fake_mlx

import mlx_portable
from mlx_portable import _mlx
from mlx_portable.backend_table import backend_class
from mlx_portable.patches.wired_limit import _wrap, wired_limit
from mlx_portable.registry.registry import Registry

mx = pytest.importorskip("mlx.core")

TOO_BIG = METAL_KEYS_M2["max_recommended_working_set_size"] + 1
METAL_ERROR = (
    "[metal::set_wired_limit] Setting a wired limit larger than the maximum working set size is not allowed."
)


def test_cpu_wheel_returns_0_natively_so_the_patch_is_obsolete() -> None:
    if mx.metal.is_available():
        pytest.skip("this mlx wheel has Metal: see the simulated tests for what the patch does there")
    original = mx.set_wired_limit
    mlx_portable.activate()
    try:
        entry = mlx_portable.report().patch("wired_limit")
        assert entry.status == "obsolete"
        assert "no Metal" in entry.reason
        assert mx.set_wired_limit is original
        assert mx.set_wired_limit(1 << 40) == 0  # mlx-cpu: no wired memory, no error
    finally:
        mlx_portable.deactivate()


@pytest.fixture
def metal() -> Iterator[tuple[Registry, Any]]:
    fake = make_fake_mlx("0.32.4", "metal")
    _mlx.set_override(fake)
    registry = Registry()
    registry.register(wired_limit)
    yield registry, fake
    registry.revert_all()
    _mlx.set_override(None)


def test_simulated_metal_cpu_default_raises_without_the_patch(metal: tuple[Registry, Any]) -> None:
    _registry, fake = metal
    fake.set_default_device(fake.cpu)
    with pytest.raises(ValueError) as excinfo:
        fake.set_wired_limit(TOO_BIG)
    assert str(excinfo.value) == METAL_ERROR


def test_simulated_metal_cpu_default_returns_0_without_effect(metal: tuple[Registry, Any]) -> None:
    registry, fake = metal
    assert registry.apply(backend=backend_class("metal")()) == ["wired_limit"]
    fake.set_default_device(fake.cpu)
    assert fake.set_wired_limit(TOO_BIG) == 0
    assert fake.metal.set_wired_limit(1 << 30) == 0
    assert fake._state["wired_limit"] == 0  # nothing was wired


def test_simulated_metal_gpu_default_is_unchanged(metal: tuple[Registry, Any]) -> None:
    registry, fake = metal
    original = fake.set_wired_limit
    registry.apply(backend=backend_class("metal")())
    assert fake.set_wired_limit is not original
    assert fake.set_wired_limit(1 << 30) == 0
    assert fake._state["wired_limit"] == 1 << 30
    assert fake.metal.set_wired_limit(1 << 31) == 1 << 30
    with pytest.raises(ValueError) as excinfo:
        fake.set_wired_limit(TOO_BIG)
    assert str(excinfo.value) == METAL_ERROR
    registry.revert_all()
    assert fake.set_wired_limit is original


def test_simulated_metal_wheel_with_cpu_backend_never_wires(metal: tuple[Registry, Any]) -> None:
    registry, fake = metal
    registry.apply(backend=backend_class("cpu")())  # MLX_PORTABLE_BACKEND=cpu on a Mac
    assert fake.default_device() == fake.gpu  # even before default_device moves it
    assert fake.set_wired_limit(1 << 30) == 0
    assert fake._state["wired_limit"] == 0


def test_simulated_bad_argument_still_reaches_mlx() -> None:
    fake = make_fake_mlx("0.32.4", "metal")
    fake.set_default_device(fake.cpu)
    seen: list[Any] = []

    def mlx_function(limit: Any) -> int:
        seen.append(limit)
        raise TypeError("set_wired_limit(): incompatible function arguments.")

    wrapped = _wrap(fake, mlx_function, backend_class("metal")())
    for bad in ("lots", -1):
        with pytest.raises(TypeError, match="incompatible function arguments"):
            wrapped(bad)
    assert seen == ["lots", -1]
    assert wrapped(5) == 0  # a valid limit with the CPU as default device: mlx is not called
    assert seen == ["lots", -1]
