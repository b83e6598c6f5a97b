"""Rewrite expected_greedy.json: the greedy tokens of the tiny model (seed 0).

Run deliberately, only when the tiny model itself changes (its weights,
tokenizer or prompt), never to make a failing matrix pass::

    python tests/matrix/regenerate_expected.py

The matrix asserts that every mlx version produces exactly these ids.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

EXPECTED = Path(__file__).with_name("expected_greedy.json")
PROMPT = "hello"
MAX_TOKENS = 32
SEED = 0


def chat_prompt_ids(tokenizer: Any) -> list[int]:
    """The prompt ``python -m mlx_lm.generate --prompt hello`` builds with the chat template."""
    ids = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True)
    return [int(i) for i in ids]


def greedy_ids(model: Any, prompt_ids: list[int], max_tokens: int = MAX_TOKENS) -> list[int]:
    import mlx.core as mx
    from mlx_lm.generate import generate_step

    steps = generate_step(mx.array(prompt_ids), model, max_tokens=max_tokens)
    return [int(token) for token, _logprobs in steps]


def main() -> None:
    import mlx.core as mx

    import mlx_portable

    mlx_portable.activate()
    import mlx_lm

    from mlx_portable.cli.tiny_model import write_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer, *_ = mlx_lm.load(str(write_tiny_model(Path(tmp) / "llama", seed=SEED)))
    data = {
        "seed": SEED,
        "prompt": PROMPT,
        "max_tokens": MAX_TOKENS,
        "generated_with_mlx": mx.__version__,  # type: ignore[attr-defined]
        "greedy_ids": greedy_ids(model, tokenizer.encode(PROMPT)),
        "chat_greedy_ids": greedy_ids(model, chat_prompt_ids(tokenizer)),
    }
    EXPECTED.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {EXPECTED}")


if __name__ == "__main__":
    main()
