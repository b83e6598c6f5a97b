from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight llama written locally: nothing is downloaded."""
    from mlx_portable.cli.tiny_model import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("model") / "llama")
