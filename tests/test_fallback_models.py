"""End to end: tiny random-weight BitNet and Muse Spark models from mlx-lm's own classes
load and generate on the CPU with mlx-portable, and fail without it.

Each run is a fresh interpreter (bounded by a timeout): with
``mlx_portable.activate()`` first, and without mlx-portable at all.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest
from helpers.subproc import child_env, run_python

# find_spec, not an import: on mlx < 0.31.2 mlx-lm 0.32 imports only with mlx-portable active.
if importlib.util.find_spec("mlx_lm") is None:
    pytest.skip("mlx_lm is not installed", allow_module_level=True)
if importlib.util.find_spec("tokenizers") is None:
    pytest.skip("tokenizers is not installed", allow_module_level=True)

TIMEOUT = 300

#: Writes a tiny model: mlx_portable.cli.tiny_model for config, tokenizer and
#: float weights, then real BitNet weights (ternary codes packed four per
#: byte, in uint8) and the dtypes the real checkpoints use.
WRITE = r"""
import sys, json
import numpy as np
import mlx_portable
mlx_portable.activate()
import mlx.core as mx
from mlx.utils import tree_flatten
from mlx_portable.cli.tiny_model import write_tiny_model

kind, path = sys.argv[1], sys.argv[2]
if kind == "bitnet":
    write_tiny_model(path, model_type="bitnet", seed=0)
else:
    text = dict(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_hidden_layers=2,
        vocab_size=259, rms_norm_eps=1e-5, post_norm_eps=1e-5, rope_parameters={"rope_theta": 10000.0},
        layer_rope_theta=[10000.0, 0.0], layer_types=["sliding_attention", "full_attention"],
        sliding_window=16, final_logit_softcapping=30.0, output_multiplier=1.0, num_local_experts=4,
        num_experts_per_tok=2, moe_hidden_size=32, moe_intermediate_size=48,
    )
    # transformers (which loads the tokenizer) validates a muse_spark config:
    # its audio encoder width must match the text width.
    write_tiny_model(path, model_type="muse_spark", seed=0, text_config=text,
                     audio_config={"out_hidden_size": 64})
weights = mx.load(path + "/model.safetensors")
rng = np.random.default_rng(1)
out = {}
for name, w in weights.items():
    if kind == "bitnet" and name.endswith("_proj.weight"):
        # Ternary codes 0, 1, 2 (weights -1, 0, +1), four per byte.
        codes = rng.integers(0, 3, (4,) + tuple(w.shape)).astype(np.uint8)
        out[name] = mx.array(codes[0] | codes[1] << 2 | codes[2] << 4 | codes[3] << 6)
    elif kind == "bitnet" and name.endswith("weight_scale"):
        out[name] = mx.array([0.15], dtype=mx.bfloat16)
    elif kind == "muse_spark" and name.endswith(("_alpha", "_beta", "gate.weight", "correction_bias")):
        out[name] = w  # float32 in the real checkpoints too
    elif kind == "muse_spark" and ".mlp.experts." in name:
        # Real checkpoints quantize the experts; unquantized bfloat16 experts
        # hit "[GatherMM::eval] Currently only supports float32." on the CPU.
        out[name] = w
    else:
        out[name] = w.astype(mx.bfloat16)
mx.save_safetensors(path + "/model.safetensors", out, metadata={"format": "mlx"})
"""

#: Generates 12 greedy tokens; prints them, and for BitNet the tokens of the
#: same model with every BitLinear replaced by nn.Linear of its dense weights.
GENERATE = r"""
import sys
if sys.argv[1] == "with":
    import mlx_portable
    mlx_portable.activate()
import mlx.core as mx
from mlx_lm import load
from mlx_lm.generate import generate_step

path = sys.argv[2]
model, tokenizer = load(path)
prompt = mx.array(tokenizer.encode("hello portable world"))

def greedy(m):
    ids = []
    for token, _ in generate_step(prompt, m, max_tokens=12, sampler=lambda x: mx.argmax(x, axis=-1)):
        ids.append(int(token))
    return ids

print("TOKENS", greedy(model))
if "bitnet" in path:
    import mlx.nn as nn
    from mlx.utils import tree_flatten, tree_unflatten
    from mlx_portable.fallbacks.bitlinear import unpack_ternary
    dense = []
    for name, layer in tree_flatten(model.leaf_modules(), is_leaf=nn.Module.is_module):
        if type(layer).__name__ == "BitLinear":
            codes = unpack_ternary(layer.weight, layer.out_features).astype(mx.float32)
            w = (codes - 1) * layer.weight_scale.astype(mx.float32)
            lin = nn.Linear(layer.in_features, layer.out_features, bias=False)
            lin.weight = w.astype(mx.bfloat16)
            dense.append((name, lin))
    model.update_modules(tree_unflatten(dense))
    print("DENSE", greedy(model))
"""


def _env() -> dict[str, str]:
    """This checkout's mlx_portable first on PYTHONPATH, so a child imports the same code."""
    return child_env(clear=())


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_python(*args, env=_env(), timeout=TIMEOUT)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fallback-models")
    dirs = {}
    spec = importlib.util.find_spec("mlx_lm")
    assert spec is not None and spec.origin is not None
    models = Path(spec.origin).parent / "models"  # looked up without importing mlx_lm
    for kind in ("bitnet", "muse_spark"):
        if not (models / f"{kind}.py").exists():
            continue
        path = root / kind
        done = _run(WRITE, kind, str(path))
        assert done.returncode == 0, done.stderr[-3000:]
        dirs[kind] = path
    return dirs


def _dir(model_dirs: dict[str, Path], kind: str) -> Path:
    if kind not in model_dirs:
        pytest.skip(f"this mlx-lm has no model type {kind!r} (mlx_lm.models.{kind})")
    return model_dirs[kind]


def _tokens(stdout: str, tag: str) -> list[int]:
    line = next(x for x in stdout.splitlines() if x.startswith(tag + " "))
    return [int(t) for t in line[len(tag) + 2 : -1].split(", ")]


@pytest.mark.slow
def test_tiny_bitnet_generates_on_cpu_with_mlx_portable(model_dirs: dict[str, Path]) -> None:
    # On mlx < 0.29 this also needs the nn_relu2 shim (BitNet's MLP calls nn.relu2).
    done = _run(GENERATE, "with", str(_dir(model_dirs, "bitnet")))
    assert done.returncode == 0, done.stderr[-3000:]
    tokens, dense = _tokens(done.stdout, "TOKENS"), _tokens(done.stdout, "DENSE")
    assert len(tokens) == 12
    # Same tokens as plain dense layers with the unpacked weights.
    assert tokens == dense


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bitnet", "muse_spark"])
def test_tiny_model_fails_on_cpu_without_mlx_portable(model_dirs: dict[str, Path], kind: str) -> None:
    done = _run(GENERATE, "without", str(_dir(model_dirs, kind)))
    assert done.returncode != 0
    import mlx.core as mx

    version = tuple(int(p) for p in mx.__version__.split(".")[:3])
    if version < (0, 29):
        want = "RuntimeError: [metal_kernel] No GPU back-end."
    else:
        want = "RuntimeError: [metal_kernel] No Metal back-end."
    if version < (0, 31, 2):
        # mlx-lm 0.32 stops earlier there, at its own import, without mlx-portable.
        assert want in done.stderr or "has no attribute 'new_thread_local_stream'" in done.stderr
    else:
        assert want in done.stderr


@pytest.mark.slow
def test_tiny_muse_spark_generates_on_cpu_with_mlx_portable(model_dirs: dict[str, Path]) -> None:
    done = _run(GENERATE, "with", str(_dir(model_dirs, "muse_spark")))
    assert done.returncode == 0, done.stderr[-3000:]
    tokens = _tokens(done.stdout, "TOKENS")
    assert len(tokens) == 12 and all(0 <= t < 259 for t in tokens)
