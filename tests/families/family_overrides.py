"""Per-family additions to the generated tiny configs, in one place.

``family_configs`` fills every ``ModelArgs`` field from one size table, its
default or its type.  Some families need more: per-layer lists, RoPE
parameter dicts, counts that must agree with each other, or values the
model's code asserts.  Each entry says what its family needs and why.

Not fixed here, because mlx-lm 0.32.2's own code refuses them on mlx 0.32.4
whatever the config (recorded in ``expected_families.json`` with the error):
afm7 quantized (its ``FusedLinear.to_quantized`` takes no ``mode=``, which
``nn.quantize`` passes), muse_spark in mxfp4/mxfp8/nvfp4 (it casts the
activations to the head's weight dtype, uint32 once quantized), and
``batch_generate`` of deepseek_v41, llama4 (their caches do not batch) and
gpt_bigcode (it reads one offset of a batched cache).
"""

from __future__ import annotations

from typing import Any

#: Per family: extra fields (with the reason), applied after the generic rules.
_ROPE = {"rope_type": "default", "rope_theta": 10000.0}
_LLAMA4_ROPE = {**_ROPE, "llama_4_scaling_beta": 0.1, "original_max_position_embeddings": 512}
OVERRIDES: dict[str, tuple[dict[str, Any], str]] = {
    "deepseek_v2": ({"rope_scaling": {"mscale_all_dim": 0, "factor": 1.0}}, "reads rope_scaling keys"),
    "minicpm3": (
        {
            "rope_scaling": {
                "original_max_position_embeddings": 512,
                "short_factor": [1.0] * 4,
                "long_factor": [1.0] * 4,
            }
        },
        "LongRoPE factors per rotary pair (qk_rope_head_dim 8)",
    ),
    "exaone4": (
        {"sliding_window_pattern": "LG", "rope_scaling": None},
        "a string pattern of Local/Global layers",
    ),
    "exaone_moe": ({"is_moe_layer": [False, True]}, "one flag per layer"),
    "glm_moe_dsa": ({"rope_parameters": _ROPE, "topk_method": "noaux_tc"}, "reads rope_parameters"),
    "hunyuan": (
        {"rope_scaling": {"alpha": 1.0, "factor": 1.0, "type": "dynamic"}},
        "reads rope_scaling alpha",
    ),
    "kimi_linear": (
        {
            "linear_attn_config": {
                "kda_layers": [1],
                "full_attn_layers": [2],
                "num_heads": 4,
                "head_dim": 16,
                "short_conv_kernel_size": 4,
            }
        },
        "one KDA and one full-attention layer (1-based)",
    ),
    "llama4_text": ({"no_rope_layers": [1, 0]}, "one flag per layer"),
    "mamba2": ({"time_step_limit": (0.0, float("inf"))}, "a (min, max) pair"),
    "mimo_v2_flash": (
        {"moe_layer_freq": [0, 1], "hybrid_layer_pattern": [0, 1], "topk_method": "noaux_tc"},
        "per-layer MoE and sliding-window flags",
    ),
    "ministral3": ({"rope_parameters": _LLAMA4_ROPE}, "reads rope_parameters"),
    "mistral4": ({"rope_parameters": _LLAMA4_ROPE}, "reads rope_parameters"),
    "openelm": (
        {
            "num_query_heads": [4, 4],
            "num_kv_heads": [2, 2],
            "ffn_multipliers": [2.0, 2.0],
            "num_transformer_layers": 2,
            "model_dim": 64,
            "head_dim": 16,
            "num_gqa_groups": 2,
        },
        "per-layer head counts",
    ),
    "plamo": ({"n_shared_head": 2}, "key/value heads are shared in groups"),
    "recurrent_gemma": ({"block_types": ["recurrent", "attention"]}, "one block type per layer"),
    "step3p5": ({"moe_top_k": 2, "moe_num_experts": 4}, "top-k below the expert count"),
    "longcat_flash": ({"zero_expert_type": "identity"}, "the only zero-expert type"),
    "dbrx": (
        {
            "ffn_config": {"ffn_hidden_size": 128, "moe_num_experts": 4, "moe_top_k": 2},
            "attn_config": {"kv_n_heads": 2, "clip_qkv": 8.0, "rope_theta": 10000.0},
        },
        "DBRX nests its expert and attention settings",
    ),
    "mellum": (
        {"rope_parameters": {"sliding_attention": _ROPE, "full_attention": _ROPE}},
        "RoPE settings per layer type",
    ),
    "spark2_5": (
        {"rope_parameters": {"sliding_attention": _ROPE, "full_attention": _ROPE}},
        "RoPE settings per layer type",
    ),
    "granitemoehybrid": (
        {
            "layer_types": ["mamba", "attention"],
            "mamba_n_heads": 4,
            "mamba_d_head": 16,
            "mamba_n_groups": 1,
            "mamba_d_state": 8,
            "mamba_d_conv": 4,
            "mamba_expand": 2,
        },
        "its own layer type names and Mamba sizes",
    ),
    "nemotron_h": (
        {"layer_types": ["mamba", "attention"], "hybrid_override_pattern": "M*"},
        "its own layer names",
    ),
    "afm7": (
        {"num_kv_reuse_layers": 1},
        "one of the 2 layers reuses the other's keys/values (the generated 2 would leave no layer to reuse)",
    ),
    "gemma4_text": (
        {"num_kv_shared_layers": 0, "global_head_dim": 32, "hidden_size_per_layer_input": 16},
        "no KV-sharing layers (the default 20 exceeds 2 layers); small global heads and per-layer inputs",
    ),
    "gemma4": (
        {"num_kv_shared_layers": 0, "global_head_dim": 32, "hidden_size_per_layer_input": 16},
        "as gemma4_text, for its nested text config",
    ),
    "llama4": (
        {"num_experts_per_tok": 1, "num_hidden_layers": 4, "attention_chunk_size": 8},
        "one expert per token (asserted); 4 layers, as every 4th is the global one (reads cache[3])",
    ),
    "kimi_k3": (
        {
            "linear_attn_config": {
                "kda_layers": [1],
                "full_attn_layers": [2],
                "num_heads": 4,
                "head_dim": 16,
                "short_conv_kernel_size": 4,
            },
            "num_experts_per_token": 2,
        },
        "one KDA and one full-attention layer (1-based); top-2 of 4 experts (default 16)",
    ),
    "falcon_h1": (
        {"mamba_n_heads": 8, "mamba_d_head": 16, "mamba_d_ssm": 128, "mamba_chunk_size": 8},
        "Mamba heads x head size must equal its inner width (mamba_d_ssm)",
    ),
    "gemma3n": (
        {
            "activation_sparsity_pattern": [0.0, 0.0],
            "num_kv_shared_layers": 0,
            "altup_num_inputs": 4,
            "altup_active_idx": 0,
            "altup_coef_clip": 120.0,
            "laurel_rank": 8,
            "hidden_size_per_layer_input": 16,
            "rope_local_base_freq": 10000.0,
            "final_logit_softcapping": 30.0,
        },
        "one sparsity value per layer; no KV-sharing layers (2 would share both layers); the AltUp"
        " active stream must index one of its inputs (the generated 2 of 2 reads past the end: NaN logits);"
        " a soft cap of 1 would squash the logits into near-ties",
    ),
    "muse_spark": (
        {
            "num_shared_experts": 0,
            "rope_parameters": _ROPE,
            "layer_rope_theta": [10000.0, 10000.0],
            "moe_hidden_size": 64,
            "post_norm_eps": 1e-5,
            "final_logit_softcapping": 30.0,
        },
        "only sparse feed-forward layers are implemented; reads rope_parameters and one RoPE base per layer"
        " (layers are zipped with it); a soft cap of 1 would squash the logits into near-ties",
    ),
    "nemotron-nas": (
        {"block_configs": [{"attention": {"n_heads_in_group": 2}, "ffn": {"ffn_mult": 2.0}}] * 2},
        "one block config per layer (attention with 2 query heads per KV head, FFN x2)",
    ),
    "prism_hadamard_qwen35": (
        {
            "schema_version": 1,
            "tensor_namespace": "mlx-lm-text",
            "quantization": {"bits": 2, "group_size": 128, "mode": "affine"},
            "head_dim": 32,
            "modules": [
                {
                    "path": "model.layers.1.self_attn.o_proj",
                    "embedding": False,
                    "dtype": "float16",
                    "block": 0,
                }
            ],
        },
        "a text-only pack with its 2-bit affine manifest: one packed layer, the full-attention output"
        " projection (4 heads of 32 = a 128-wide input, as packing requires), no Hadamard block"
        " (the smallest is 512 wide)",
    ),
    "phi3small": (
        {
            "ff_intermediate_size": 128,
            "gegelu_limit": 20.0,
            "blocksparse_block_size": 32,
            "blocksparse_num_local_blocks": 2,
            "blocksparse_vert_stride": 2,
            "rope_embedding_base": 10000.0,
            "vocab_size": 100352,
        },
        "the model masks its tokenizer's reserved ids 100256-100351 in the logits, an unchecked write past"
        " a smaller vocabulary (heap corruption, then a crash); block-sparse attention takes blocks of"
        " 32 or 64 only; a 128-wide GeGLU (the generated 2 would be degenerate)",
    ),
    "minimax_m3_vl": ({"moe_layer_freq": [0, 1]}, "one MoE flag per layer (one dense, one MoE)"),
}

#: Wrappers whose ``text_config`` is another family's ``ModelArgs``: that family's tiny config.
TEXT_CONFIG_FROM: dict[str, str] = {"lfm2-vl": "lfm2", "qwen3_vl_moe": "qwen3_moe"}
