"""The tiny offline model: loadable by mlx-lm, varied greedy output, deterministic."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mlx_portable.cli.tiny_model import EOS_TOKEN, tiny_model_config, write_tiny_model

pytest.importorskip("tokenizers")


def _greedy_ids(model: Any, tokenizer: Any, prompt: str = "hello", n: int = 32) -> list[int]:
    import mlx.core as mx
    from mlx_lm.generate import generate_step

    steps = generate_step(mx.array(tokenizer.encode(prompt)), model, max_tokens=n)
    return [int(token) for token, _logprobs in steps]


def _digest(path: Path) -> str:
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def test_directory_has_the_checkpoint_files(tiny_model_dir: Path) -> None:
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names


def test_mlx_lm_load_gives_varied_greedy_tokens(mlx_lm_activated: ModuleType, tiny_model_dir: Path) -> None:
    model, tokenizer = mlx_lm_activated.load(str(tiny_model_dir))
    ids = _greedy_ids(model, tokenizer)
    assert len(ids) == 32
    assert len(set(ids)) >= 8, ids
    # Special-token logits are pinned to 0: greedy decoding never stops early.
    assert not set(ids) & set(tokenizer.eos_token_ids)


def test_greedy_tokens_are_deterministic(mlx_lm_activated: ModuleType, tiny_model_dir: Path) -> None:
    first = _greedy_ids(*mlx_lm_activated.load(str(tiny_model_dir)))
    second = _greedy_ids(*mlx_lm_activated.load(str(tiny_model_dir)))
    assert first == second


def test_same_seed_same_bytes_other_seed_other_weights(
    mlx_lm_activated: ModuleType, tiny_model_dir: Path, tmp_path: Path
) -> None:
    again = write_tiny_model(tmp_path / "again", seed=0)
    other = write_tiny_model(tmp_path / "other", seed=1)
    assert _digest(again) == _digest(tiny_model_dir)
    assert _digest(other) != _digest(tiny_model_dir)


def test_tokenizer_round_trips_bytes_and_has_eos_and_chat_template(
    mlx_lm_activated: ModuleType, tiny_model_dir: Path
) -> None:
    _model, tokenizer = mlx_lm_activated.load(str(tiny_model_dir))
    text = "Grüße, 世界! 🙂\n\ttabs \x00 and spaces  "
    ids = tokenizer.encode(text)
    assert ids == list(text.encode("utf-8"))  # one token per byte, id == byte value
    assert tokenizer.decode(ids) == text
    assert tokenizer.eos_token == EOS_TOKEN
    assert tokenizer.eos_token_ids == {tokenizer.convert_tokens_to_ids(EOS_TOKEN)}
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_build_tiny_model_matches_the_written_directory(
    mlx_lm_activated: ModuleType, tiny_model_dir: Path
) -> None:
    from mlx_lm.tokenizer_utils import TokenizerWrapper

    from mlx_portable.cli.tiny_model import build_tiny_model

    model, tokenizer = build_tiny_model(seed=0)
    assert isinstance(tokenizer, TokenizerWrapper)
    assert _greedy_ids(model, tokenizer) == _greedy_ids(*mlx_lm_activated.load(str(tiny_model_dir)))


def test_config_overrides_and_bad_input() -> None:
    config = tiny_model_config(num_hidden_layers=3)
    assert config["model_type"] == "llama"
    assert config["num_hidden_layers"] == 3
    with pytest.raises(ValueError, match="vocab_size >= 259"):
        tiny_model_config(vocab_size=100)
    with pytest.raises(ValueError, match="model_type"):
        tiny_model_config("")


def test_bad_seed_and_unknown_model_type_are_clear_errors(
    mlx_lm_activated: ModuleType, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        write_tiny_model(tmp_path / "x", seed=-1)
    with pytest.raises(ValueError, match="no model type 'no_such_arch'"):
        write_tiny_model(tmp_path / "y", model_type="no_such_arch")
    assert not (tmp_path / "y").exists()
