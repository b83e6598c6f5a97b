"""mlx-vlm (newest) generates from a text prompt and an image, main and worker thread, with a tiny random VLM.

A second tiny model, mlx-vlm's Muse Glimmer, merges image features into the
text embeddings by boolean-mask assignment (``flat[mask] = features``), an
edge that mlx < 0.30.0 rejects (``bool_mask_assign`` shims it); its greedy
tokens must equal mlx 0.32.4's too.

The model is mlx-vlm's own LLaVA class (a 2-layer CLIP vision tower, a
2-layer llama language model, vocabulary 260 with the image token last),
built in memory with seeded NumPy weights; the image is a fixed 28x28
gradient giving 4 patch tokens.  mlx-vlm's processors come from
transformers and do not depend on mlx, so the prompt ids are written
directly, as the processor would expand them.  Greedy tokens must equal
those mlx 0.32.4 produces, on every mlx the environment holds.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import mlx.core as mx
import pytest
from helpers.subproc import env_with_settings
from packaging.version import Version

if importlib.util.find_spec("mlx_vlm") is None:
    pytest.skip("mlx-vlm is not installed", allow_module_level=True)

pytestmark = pytest.mark.slow  # two child processes building and running the VLM, ~10 s

#: Greedy tokens of mlx 0.32.4 (mlx-vlm 0.7.10): from the image prompt, and from "hello" alone.
EXPECTED = {
    "image": [106, 165, 165, 165, 165, 107, 165, 134, 21, 150, 217, 248, 18, 169, 21, 138],
    "text": [0, 29, 17, 89, 19, 121, 146, 109, 233, 5, 243, 76, 246, 22, 21, 195],
}

SCRIPT = """
import json, os, sys, threading
if sys.argv[1] == "1":
    import mlx_portable
    mlx_portable.activate()
import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten
from mlx_vlm.generate.ar import generate_step
from mlx_vlm.models import llava

IMAGE_TOKEN = 259
text = dict(
    model_type="llama", hidden_size=64, num_hidden_layers=2, intermediate_size=128,
    num_attention_heads=4, num_key_value_heads=2, vocab_size=260, rms_norm_eps=1e-5,
)
vision = dict(
    model_type="clip_vision_model", num_hidden_layers=2, hidden_size=32, intermediate_size=64,
    num_attention_heads=2, image_size=28, patch_size=14, projection_dim=32,
)
cfg = llava.ModelConfig.from_dict(dict(
    model_type="llava", text_config=text, vision_config=vision,
    image_token_index=IMAGE_TOKEN, vocab_size=260, vision_feature_layer=-2,
))
cfg.text_config = llava.TextConfig.from_dict(text)
cfg.vision_config = llava.VisionConfig.from_dict(vision)
model = llava.Model(cfg)
rng = np.random.default_rng(0)

def init(p):
    if p.ndim == 1:
        return np.ones(p.shape, np.float32)
    return (rng.standard_normal(p.shape) * (2 / np.sqrt(p.shape[-1]))).astype(np.float32)

params = sorted(tree_flatten(model.parameters()), key=lambda kv: kv[0])
model.load_weights([(n, mx.array(init(p))) for n, p in params])
model.eval()
# The image: a fixed 28x28 RGB gradient, normalised; 2x2 patches -> 4 image tokens.
img = np.linspace(0, 1, 28 * 28 * 3, dtype=np.float32).reshape(1, 3, 28, 28)
pixel_values = mx.array((img - 0.5) / 0.25)
prompt = [256] + [IMAGE_TOKEN] * 4 + [ord(c) for c in "describe"]
input_ids = mx.array([prompt])
mask = mx.ones(input_ids.shape, dtype=mx.int32)

def run():
    image = [int(t) for t, _ in generate_step(input_ids, model, pixel_values, mask, max_tokens=16)]
    hello = mx.array([[ord(c) for c in "hello"]])
    text_only = [int(t) for t, _ in generate_step(hello, model, None, None, max_tokens=16)]
    return {"image": image, "text": text_only}

res = {"main": run()}
worker = threading.Thread(target=lambda: res.__setitem__("thread", run()))
worker.start()
worker.join()
print(json.dumps(res), flush=True)
os._exit(0)  # see docs/matrix.md: mlx >= 0.32 can abort at exit after a worker thread
"""


#: Greedy tokens of mlx 0.32.4 (mlx-vlm 0.7.10) from the Muse Glimmer prompt with three image tokens.
GLIMMER_EXPECTED = [19, 19, 19, 62, 23, 9, 9, 9]

GLIMMER_SCRIPT = """
import json
import mlx_portable
mlx_portable.activate()
import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten
from mlx_vlm.models import muse_glimmer

IMAGE = 60
cfg = muse_glimmer.ModelConfig.from_dict(dict(
    text_config=dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=8,
                     bos_token_id=1, eos_token_id=2),
    vision_config=dict(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1,
                       pos_emb_height=4, pos_emb_width=4),
    image_token_id=IMAGE, video_token_id=61, out_hidden_size=16, projector_hidden_size=16,
))
model = muse_glimmer.Model(cfg)
rng = np.random.default_rng(0)

def init(p):
    if p.ndim == 1:
        return np.ones(p.shape, np.float32)
    return (rng.standard_normal(p.shape) * (2 / np.sqrt(p.shape[-1]))).astype(np.float32)

params = sorted(tree_flatten(model.parameters()), key=lambda kv: kv[0])
model.load_weights([(n, mx.array(init(p))) for n, p in params])
model.eval()
prompt = mx.array([[1, 5, IMAGE, IMAGE, IMAGE, 7, 9]])
# Precomputed image features (the model's cached_image_features path): the
# embeddings merge is the model's own masked_scatter, flat[mask] = features.
features = mx.array(rng.standard_normal((3, 32)).astype(np.float32))
cache = model.make_cache()
out = model(prompt, pixel_values=mx.zeros((1,)), cached_image_features=features, cache=cache)
tok = mx.argmax(getattr(out, "logits", out)[:, -1, :], axis=-1)
tokens = []
for _ in range(8):
    tokens.append(int(tok.item()))
    out = model(tok[None], cache=cache)
    tok = mx.argmax(getattr(out, "logits", out)[:, -1, :], axis=-1)
print(json.dumps(tokens))
"""


def _run(portable: bool) -> subprocess.CompletedProcess[str]:
    env = env_with_settings(**({} if portable else {"MLX_PORTABLE": "0"}))
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, "1" if portable else "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_vlm_generates_from_text_and_image_in_main_and_worker_thread() -> None:
    done = _run(portable=True)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["main"] == EXPECTED
    assert result["thread"] == EXPECTED


@pytest.mark.skipif(Version(mx.__version__) >= Version("0.31.2"), reason="mlx-vlm runs here without shims")
def test_without_mlx_portable_mlx_vlm_fails_on_old_mlx() -> None:
    done = _run(portable=False)
    assert done.returncode != 0
    assert "has no attribute 'new_thread_local_stream'" in done.stderr


def _run_glimmer(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", GLIMMER_SCRIPT],
        env=env_with_settings(**env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_vlm_merges_image_features_by_mask_assignment() -> None:
    done = _run_glimmer()
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == GLIMMER_EXPECTED


@pytest.mark.skipif(Version(mx.__version__) >= Version("0.30.0"), reason="mask assignment is native here")
def test_without_the_mask_shim_the_merge_fails_on_old_mlx() -> None:
    done = _run_glimmer(MLX_PORTABLE_DISABLE="bool_mask_assign")
    assert done.returncode != 0
    assert "ValueError: [broadcast_shapes]" in done.stderr
