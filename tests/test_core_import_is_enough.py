"""A bare ``import mlx_portable`` (no ``activate()``) is enough for mlx-lm to generate, on every mlx."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.shim_helpers import mlx_version, run_script
from packaging.version import Version

BARE = """
import sys
import mlx_portable
from mlx_lm import batch_generate, generate, load
model, tokenizer = load(sys.argv[1])
text = generate(model, tokenizer, prompt="hello", max_tokens=8, verbose=False)
batch = batch_generate(model, tokenizer, [[1, 2, 3], [4, 5]], max_tokens=4, verbose=False)
print("tokens:", len(text) > 0, "active:", mlx_portable.is_active())
"""


@pytest.mark.slow
def test_mlx_lm_generates_after_a_bare_import(tiny_model_dir: Path, python_env: dict[str, str]) -> None:
    done = run_script(BARE, python_env, str(tiny_model_dir))
    assert done.returncode == 0, done.stdout[-4000:]
    assert "tokens: True active: False" in done.stdout


@pytest.mark.skipif(
    mlx_version() >= Version("0.31.2"), reason="mlx-lm needs no shim at import or first token here"
)
def test_the_same_program_fails_without_the_shims(tiny_model_dir: Path, python_env: dict[str, str]) -> None:
    done = run_script(BARE, {**python_env, "MLX_PORTABLE": "0"}, str(tiny_model_dir))
    assert done.returncode != 0
    assert "new_thread_local_stream" in done.stdout or "incompatible function arguments" in done.stdout
