"""``default_device``: the chosen backend's device becomes mlx's default (simulated CUDA wheel).

mlx defaults to the GPU whenever its wheel has one, so ``MLX_PORTABLE_BACKEND=cpu``
on a CUDA machine would still compute on the GPU without the patch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers.simulated_mlx import make_fake_mlx

from mlx_portable import _mlx
from mlx_portable.backend_table import backend_class
from mlx_portable.patches.default_device import default_device
from mlx_portable.registry.registry import Registry


@pytest.fixture
def cuda_wheel() -> Iterator[tuple[Registry, Any]]:
    fake = make_fake_mlx("0.32.4", "cuda")
    _mlx.set_override(fake)
    registry = Registry()
    registry.register(default_device)
    yield registry, fake
    registry.revert_all()
    _mlx.set_override(None)


def test_simulated_cuda_wheel_defaults_to_the_gpu_without_the_patch(cuda_wheel: tuple[Registry, Any]) -> None:
    _registry, fake = cuda_wheel
    assert fake.default_device() == fake.gpu  # what MLX_PORTABLE_BACKEND=cpu alone would leave


def test_simulated_cpu_backend_on_a_cuda_wheel_moves_the_default_and_reverts(
    cuda_wheel: tuple[Registry, Any],
) -> None:
    registry, fake = cuda_wheel
    assert registry.apply(backend=backend_class("cpu")()) == ["default_device"]
    assert fake.default_device() == fake.cpu
    registry.revert_all()
    assert fake.default_device() == fake.gpu


def test_simulated_cuda_backend_on_a_cuda_wheel_is_obsolete(cuda_wheel: tuple[Registry, Any]) -> None:
    registry, _fake = cuda_wheel
    assert registry.apply(backend=backend_class("cuda")()) == []
    record = registry.record("default_device")
    assert record.status == "obsolete" and "already" in record.reason
