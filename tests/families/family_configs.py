"""Tiny configurations for every model family in the installed mlx-lm, generated from each ``ModelArgs``.

Every field of a family's ``ModelArgs`` dataclass is filled by one rule: a
value from :data:`SIZES` when the field name is a known size or count (the
same small model everywhere: hidden 64, 2 layers, 4 heads of 16, 4 experts,
vocabulary 259 = the tiny byte-level tokenizer's), else its default, else a
value for its type.  Nested configs (``text_config`` of the multimodal
wrappers, DBRX's ``attn_config``/``ffn_config``) get the same table, since
``ModelArgs.from_dict`` ignores the keys it does not know.  Only
``family_overrides.py`` (and :data:`SKIPPED`) name families, each with its reason.

Shared by ``test_model_families.py`` and ``regenerate_families.py`` (run
with mlx 0.32.4 to rewrite ``expected_families.json``).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any

from family_overrides import OVERRIDES, TEXT_CONFIG_FROM

VOCAB = 259  # mlx_portable.cli.tiny_model's tokenizer: 256 bytes + 3 special tokens
LAYERS = 2

#: Field name -> value, for every field that sets a size or a count.
SIZES: dict[str, Any] = {
    # width and depth
    "hidden_size": 64,
    "d_model": 64,
    "n_embd": 64,
    "dim": 64,
    "hidden_dim": 64,
    "block_dim": 64,
    "num_hidden_layers": LAYERS,
    "num_layers": LAYERS,
    "n_layer": LAYERS,
    "n_layers": LAYERS,
    "num_transformer_layers": LAYERS,
    "intermediate_size": 128,
    "ffn_dim": 128,
    "ffn_hidden_size": 128,
    "n_inner": 128,
    "moe_intermediate_size": 64,
    "expert_ffn_hidden_size": 64,
    "shared_expert_intermediate_size": 64,
    "shared_intermediate_size": 64,
    "intermediate_size_mlp": 128,
    "block_ffn_dim_multiplier": 1.0,
    "vocab_size": VOCAB,
    "num_vocab": VOCAB,
    "vocab_size_per_layer_input": VOCAB,
    "model_dim": 64,
    "o_lora_rank": 32,
    "mamba_d_ssm": 128,
    "dense_intermediate_size": 128,
    "share_expert_dim": 64,
    "max_position_embeddings": 512,
    "n_positions": 512,
    "n_ctx": 512,
    "model_max_length": 512,
    # attention
    "num_attention_heads": 4,
    "n_head": 4,
    "n_heads": 4,
    "num_heads": 4,
    "num_key_value_heads": 2,
    "n_kv_heads": 2,
    "num_kv_heads": 2,
    "multi_query_group_num": 2,
    "head_dim": 16,
    "kv_channels": 16,
    "rotary_dim": 16,
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 8,
    "v_head_dim": 16,
    "kv_lora_rank": 32,
    "q_lora_rank": 32,
    "index_head_dim": 16,
    "index_n_heads": 2,
    "index_topk": 4,
    "sliding_window": 8,
    "sliding_window_size": 8,
    "attention_window_size": 8,
    "swa_num_attention_heads": 4,
    "swa_num_key_value_heads": 2,
    "swa_head_dim": 16,
    "swa_v_head_dim": 16,
    "rope_theta": 10000.0,
    "rotary_emb_base": 10000.0,
    "swa_rope_theta": 10000.0,
    "partial_rotary_factor": 1.0,
    "rotary_pct": 1.0,
    # experts
    "num_experts": 4,
    "n_routed_experts": 4,
    "num_local_experts": 4,
    "moe_num_experts": 4,
    "num_experts_per_tok": 2,
    "moe_topk": 2,
    "top_k": 2,
    "n_shared_experts": 1,
    "num_shared_experts": 1,
    "num_shared_expert": 1,
    "n_group": 1,
    "topk_group": 1,
    "first_k_dense_replace": 1,
    "moe_layer_freq": 1,
    "decoder_sparse_step": 1,
    "num_dense_layers": 1,
    "zero_expert_num": 0,
    # state-space and linear attention
    "state_size": 8,
    "ssm_state_size": 8,
    "mamba_d_state": 8,
    "d_state": 8,
    "time_step_rank": 4,
    "conv_kernel": 4,
    "mamba_d_conv": 4,
    "d_conv": 4,
    "conv_L_cache": 3,
    "n_groups": 1,
    "mamba_num_heads": 4,
    "mamba_head_dim": 16,
    "mamba_expand": 2,
    "expand": 2,
    "chunk_size": 8,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 16,
    "linear_value_head_dim": 16,
    "linear_conv_kernel_dim": 4,
    "group_norm_size": 1,
    # norms and scales
    "rms_norm_eps": 1e-5,
    "norm_eps": 1e-5,
    "layer_norm_eps": 1e-5,
    "layer_norm_epsilon": 1e-5,
    "layernorm_epsilon": 1e-5,
    "routed_scaling_factor": 1.0,
    "logits_scaling": 1.0,
    "attention_multiplier": 1.0,
    "embedding_multiplier": 1.0,
    "residual_multiplier": 1.0,
    "scale_depth": 1.0,
    "scale_emb": 1.0,
    "dim_model_base": 64,
    "mla_scale_q_lora": 1.0,
    "mla_scale_kv_lora": 1.0,
    "tie_word_embeddings": False,
    # layer patterns: with 2 layers, one of each kind
    "sliding_window_pattern": 2,
    "full_attention_interval": 2,
    "attn_layer_period": 2,
    "attn_layer_offset": 1,
    "expert_layer_period": 2,
    "expert_layer_offset": 1,
    "layer_types": ["sliding_attention", "full_attention"],
}

#: Families left out, with the reason.
SKIPPED: dict[str, str] = {
    "olmo": (
        "needs the ai2-olmo package (mlx_lm.models.olmo exits at import without it), which has no"
        " small install: ai2-olmo 0.6.0 brings 59 packages, torch among them"
    ),
}


def families() -> list[str]:
    """Every module of ``mlx_lm.models`` that defines ``Model`` and ``ModelArgs``, sorted."""
    import mlx_lm.models

    found = []
    for info in pkgutil.iter_modules(mlx_lm.models.__path__):
        if info.name in SKIPPED:
            found.append(info.name)
            continue
        module = importlib.import_module(f"mlx_lm.models.{info.name}")
        if hasattr(module, "Model") and hasattr(module, "ModelArgs"):
            found.append(info.name)
    return sorted(found)


def _by_type(field: Any) -> Any:
    kind = str(field.type)
    if kind.startswith(("list", "List", "Optional[list", "Optional[List")) or "list[" in kind.lower():
        return []
    if kind.startswith(("dict", "Dict")):
        return {}
    if "bool" in kind:
        return False
    if "float" in kind:
        return 1.0
    if "int" in kind:
        return 2
    if "str" in kind:
        return ""
    return None


def _fill(args_class: Any, model_type: str, depth: int = 0) -> dict[str, Any]:
    config: dict[str, Any] = {"model_type": model_type}
    for field in dataclasses.fields(args_class):
        name = field.name
        if name in SIZES:
            config[name] = SIZES[name]
        elif name in ("text_config", "attn_config", "ffn_config", "llm_config", "language_config"):
            config[name] = _nested(args_class, model_type) if depth == 0 else {}
        elif name == "model_type":
            continue
        elif field.default is not dataclasses.MISSING:
            config[name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            config[name] = field.default_factory()
        else:
            config[name] = _by_type(field)
    return config


def _nested(args_class: Any, model_type: str) -> dict[str, Any]:
    """A nested config: every other dataclass of the family's module, filled, and the size table."""
    module = importlib.import_module(args_class.__module__)
    nested: dict[str, Any] = {}
    for value in vars(module).values():
        ours = isinstance(value, type) and getattr(value, "__module__", "") == module.__name__
        if ours and dataclasses.is_dataclass(value) and value is not args_class:
            nested.update(_fill(value, model_type, depth=1))
    nested.update(SIZES)
    nested["model_type"] = model_type
    return nested


def tiny_config(family: str) -> dict[str, Any]:
    """The ``config.json`` contents of ``family``'s tiny model."""
    if family in SKIPPED:
        raise LookupError(f"{family}: {SKIPPED[family]}")
    module = importlib.import_module(f"mlx_lm.models.{family}")
    config = _fill(module.ModelArgs, family)
    if family in TEXT_CONFIG_FROM:
        config["text_config"] = tiny_config(TEXT_CONFIG_FROM[family])
    extra, _why = OVERRIDES.get(family, ({}, ""))
    config.update(extra)
    for value in config.values():
        if isinstance(value, dict) and value.get("model_type") == family:
            value.update(extra)  # a nested text config reads the same fields
    return config
