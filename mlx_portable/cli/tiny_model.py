"""A tiny, offline language model for tests, benchmarks and ``mlx-portable check``.

Builds a model directory the way a Hugging Face checkpoint converted for
mlx-lm looks (``config.json``, ``model.safetensors``, ``tokenizer.json``,
``tokenizer_config.json``) from mlx-lm's own model classes, with random
weights and a byte-level tokenizer built with the ``tokenizers`` library, so
nothing is downloaded and every mlx-lm code path (``mlx_lm.load``,
``generate``, ``stream_generate``, the command line, the server) runs on it.

Why the weights look the way they do:

* every matrix weight is drawn from a normal distribution with standard
  deviation ``2 / sqrt(fan_in)`` (NumPy, seeded), so activations neither
  vanish nor saturate and greedy decoding does not collapse into one
  repeated token (at least 8 distinct ids in 32 greedy tokens);
* the output-projection rows of the special tokens are zero, so their logit
  is exactly 0 while the largest of the 256 byte logits is positive: greedy
  decoding never emits end-of-sequence, and a 32-token run is 32 tokens on
  every mlx and mlx-lm version;
* weights are drawn with NumPy rather than ``mx.random`` and stored as
  float32, so the same seed gives the same bytes on every mlx version.

mlx-lm, NumPy and ``tokenizers`` are imported inside the functions only.
"""

from __future__ import annotations

import importlib
import json
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "CHAT_TEMPLATE",
    "EOS_TOKEN",
    "SPECIAL_TOKENS",
    "build_tiny_model",
    "tiny_model_config",
    "write_tiny_model",
]

#: Special tokens, after the 256 byte tokens (ids 256, 257, 258).
EOS_TOKEN = "<|endoftext|>"
SPECIAL_TOKENS: tuple[str, ...] = (EOS_TOKEN, "<|im_start|>", "<|im_end|>")
_BYTE_VOCAB = 256

#: A ChatML template: enough for ``mlx_lm.generate`` and ``mlx_lm.server``.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_BASE_CONFIG: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-5,
    "vocab_size": _BYTE_VOCAB + len(SPECIAL_TOKENS),
    "max_position_embeddings": 2048,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "bos_token_id": _BYTE_VOCAB,
    "eos_token_id": _BYTE_VOCAB,
}


def tiny_model_config(model_type: str = "llama", **overrides: Any) -> dict[str, Any]:
    """The ``config.json`` contents of the tiny model (hidden 64, 2 layers, vocab 259).

    ``overrides`` replace or add keys (e.g. ``num_hidden_layers=4``).  The
    vocabulary must hold the tokenizer's 259 tokens.
    """
    if not isinstance(model_type, str) or not model_type:
        raise ValueError(f"model_type must be an mlx-lm model type such as 'llama', got {model_type!r}")
    config = {"model_type": model_type, **_BASE_CONFIG, **overrides}
    if int(config["vocab_size"]) < _BASE_CONFIG["vocab_size"]:
        raise ValueError(
            f"vocab_size={config['vocab_size']} is too small: the byte-level tokenizer has "
            f"{_BASE_CONFIG['vocab_size']} tokens; pass vocab_size >= {_BASE_CONFIG['vocab_size']}"
        )
    return config


def _model_classes(model_type: str) -> tuple[Any, Any]:
    try:
        module = importlib.import_module(f"mlx_lm.models.{model_type}")
    except ModuleNotFoundError as exc:
        if exc.name == "mlx_lm":
            raise ModuleNotFoundError(
                "the tiny model is built from mlx-lm's model classes: pip install mlx-lm", name=exc.name
            ) from exc
        raise ValueError(
            f"mlx-lm has no model type {model_type!r} (no module mlx_lm.models.{model_type})"
        ) from exc
    return module.Model, module.ModelArgs


def _random_weights(model: Any, seed: int) -> dict[str, Any]:
    """Seeded weights for every parameter of ``model`` (see the module docstring)."""
    import mlx.core as mx
    import numpy as np
    from mlx.utils import tree_flatten

    rng = np.random.default_rng(seed)
    special_rows = slice(_BYTE_VOCAB, None)
    weights: dict[str, Any] = {}
    # Sorted names: the draw order (hence the values) does not depend on how a
    # given mlx-lm version happens to order its submodules.
    params: list[tuple[str, Any]] = tree_flatten(model.parameters())  # type: ignore[assignment]
    for name, param in sorted(params, key=lambda item: item[0]):
        shape = tuple(param.shape)
        if len(shape) == 1:
            value = np.zeros(shape) if name.endswith("bias") else np.ones(shape)
        else:
            value = rng.standard_normal(shape) * (2.0 / np.sqrt(shape[-1]))
            if name == "lm_head.weight":
                value[special_rows] = 0.0
        weights[name] = mx.array(value.astype(np.float32))
    return weights


def _tokenizer_json() -> str:
    """A byte-level tokenizer: one token per byte (GPT-2 alphabet) plus the special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    # The GPT-2 byte-to-unicode table, in byte order, so token id == byte value.
    byte_chars = _gpt2_byte_chars()
    if sorted(byte_chars) != sorted(alphabet):
        raise RuntimeError("tokenizers' ByteLevel alphabet is not the GPT-2 byte table")
    vocab = {char: index for index, char in enumerate(byte_chars)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    return str(tokenizer.to_str())


def _gpt2_byte_chars() -> list[str]:
    # The published GPT-2 mapping: printable bytes map to themselves, the rest
    # to code points from 256 up, in byte order.
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def _tokenizer_config() -> dict[str, Any]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": _BASE_CONFIG["max_position_embeddings"],
        "bos_token": None,
        "eos_token": EOS_TOKEN,
        "pad_token": EOS_TOKEN,
        "unk_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }


def _write_tokenizer(path: Path) -> None:
    (path / "tokenizer.json").write_text(_tokenizer_json(), encoding="utf-8")
    (path / "tokenizer_config.json").write_text(json.dumps(_tokenizer_config(), indent=2), encoding="utf-8")
    special_map = {"eos_token": EOS_TOKEN, "pad_token": EOS_TOKEN}
    (path / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2), encoding="utf-8")


def _build_model(config: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    model_class, args_class = _model_classes(config["model_type"])
    model = model_class(args_class.from_dict(config))
    weights = _random_weights(model, seed)
    model.load_weights(list(weights.items()))
    model.eval()
    return model, weights


def _check_seed(seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def write_tiny_model(path: str | Path, *, model_type: str = "llama", seed: int = 0, **overrides: Any) -> Path:
    """Write the tiny model to directory ``path`` (created if missing) and return it.

    The directory holds ``config.json``, ``model.safetensors``,
    ``tokenizer.json``, ``tokenizer_config.json`` and
    ``special_tokens_map.json``; ``mlx_lm.load(path)`` loads it offline.
    The same ``seed`` writes the same weights on every mlx version.
    """
    import mlx.core as mx

    _check_seed(seed)
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a directory; pass a directory path")
    config = tiny_model_config(model_type, **overrides)
    _model, weights = _build_model(config, seed)
    target.mkdir(parents=True, exist_ok=True)
    (target / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    mx.save_safetensors(str(target / "model.safetensors"), weights, metadata={"format": "mlx"})
    _write_tokenizer(target)
    return target


def build_tiny_model(*, seed: int = 0, model_type: str = "llama", **overrides: Any) -> tuple[Any, Any]:
    """The tiny model and its tokenizer, in memory: ``(model, TokenizerWrapper)``.

    Same weights as :func:`write_tiny_model` with the same arguments.  The
    tokenizer comes from mlx-lm's own loader (as ``mlx_lm.load`` returns it).
    """
    _check_seed(seed)
    config = tiny_model_config(model_type, **overrides)
    model, _weights = _build_model(config, seed)
    load_tokenizer = importlib.import_module("mlx_lm.utils").load_tokenizer
    with tempfile.TemporaryDirectory(prefix="mlx-portable-tiny-") as tmp:
        _write_tokenizer(Path(tmp))
        tokenizer = load_tokenizer(Path(tmp), eos_token_ids=config.get("eos_token_id"))
    return model, tokenizer
