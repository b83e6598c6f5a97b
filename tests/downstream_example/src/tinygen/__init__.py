"""tinygen: greedy text generation with mlx-lm, in this process or in a spawned worker.

Plain MLX code, as a downstream project writes it: no mlx-portable here.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path


def generate_text(model_dir: str | Path, prompt: str = "hello", max_tokens: int = 8) -> str:
    """Greedy ``max_tokens`` tokens from the model in ``model_dir``."""
    import mlx_lm

    model, tokenizer = mlx_lm.load(str(model_dir))
    return str(mlx_lm.generate(model, tokenizer, prompt=prompt, max_tokens=max_tokens, verbose=False))


def generate_in_worker(model_dir: str | Path, prompt: str = "hello", max_tokens: int = 8) -> str:
    """The same, in a ``multiprocessing`` spawn worker (a fresh interpreter)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return str(pool.apply(generate_text, (str(model_dir), prompt, max_tokens)))
