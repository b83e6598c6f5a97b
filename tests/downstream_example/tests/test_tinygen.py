from __future__ import annotations

import pytest
from tinygen import generate_in_worker, generate_text


def test_generates(model_dir):
    assert generate_text(model_dir)


def test_worker_process_generates_the_same(model_dir):
    assert generate_in_worker(model_dir) == generate_text(model_dir)


@pytest.mark.mlx(backend="cpu")
def test_on_the_cpu_backend(mlx_backend):
    assert mlx_backend == "cpu"
