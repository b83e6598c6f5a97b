"""A tiny llama split by layers across 2 ranks decodes the same greedy tokens as one process.

Rank 0 holds the embedding and the first half of the layers, rank 1 the
second half, the norm and the head; hidden states go 0 -> 1 and each new
token 1 -> 0 through ``mlx_portable.distributed.send``/``recv`` (ring, CPU
stream), in the model's dtype.  The single-process reference is mlx-lm's own
``generate_step`` with its default (greedy) sampler.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mlx_portable.distributed.local_cluster import run_local

pytestmark = pytest.mark.slow

TOKENS = 12

PROGRAM = textwrap.dedent(
    """
    import json, sys
    import mlx.core as mx
    import mlx_portable.distributed as dist

    model_dir, count, dtypes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    group = dist.init(needs_p2p=True)  # activates mlx-portable before mlx_lm is imported
    import mlx_lm
    from mlx_lm.generate import generate_step
    from mlx_lm.models.base import create_attention_mask
    from mlx_lm.models.cache import KVCache


    def single(model, prompt):
        steps = generate_step(mx.array(prompt), model, max_tokens=count)
        return {"rank": None, "tokens": [int(token) for token, _ in steps]}


    def pipeline(model, prompt):
        rank, inner = group.rank(), model.model
        half = len(inner.layers) // 2
        mine = inner.layers[:half] if rank == 0 else inner.layers[half:]
        cache = [KVCache() for _ in mine]
        hidden = inner.embed_tokens.weight.shape[1]
        dtype = inner.embed_tokens.weight.dtype
        inputs, tokens = mx.array(prompt)[None], []
        for _ in range(count):
            if rank == 0:
                h = inner.embed_tokens(inputs)
            else:
                h = dist.recv((1, inputs.shape[1], hidden), dtype, 0, group)
            mask = create_attention_mask(h, cache[0])
            for layer, layer_cache in zip(mine, cache):
                h = layer(h, mask, cache=layer_cache)
            if rank == 0:
                dist.eval(dist.send(h, 1, group))
                token = dist.recv((1,), mx.uint32, 1, group)
                dist.eval(token)
            else:
                logits = model.lm_head(inner.norm(h[:, -1, :]))
                token = mx.argmax(logits, axis=-1).astype(mx.uint32)
                dist.eval(token)
                dist.eval(dist.send(token, 0, group))
            tokens.append(int(token.item()))
            inputs = token.reshape(1, 1)
        return {"rank": rank, "layers": len(mine), "tokens": tokens}


    for dtype_name in dtypes:
        model, tokenizer = mlx_lm.load(model_dir)
        model.set_dtype(getattr(mx, dtype_name))
        prompt = tokenizer.encode("The quick brown fox")
        run = single if group.size() == 1 else pipeline
        print(json.dumps({"dtype": dtype_name, **run(model, prompt)}), flush=True)
    """
)
DTYPES = ("float32", "bfloat16")


@pytest.fixture(scope="module")
def decoded(
    tiny_model_dir: Path, python_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[dict[str, Any]]]:
    """``{dtype: [single-process result, rank 0, rank 1]}``: one reference run, one 2-rank run."""
    script = tmp_path_factory.mktemp("pipeline") / "pipeline.py"
    script.write_text(PROGRAM)
    args = [str(script), str(tiny_model_dir), str(TOKENS), *DTYPES]
    single_env = {k: v for k, v in python_env.items() if k not in ("MLX_HOSTFILE", "MLX_RANK")}
    single = subprocess.run(
        [sys.executable, *args], env=single_env, capture_output=True, text=True, timeout=240, check=False
    )
    assert single.returncode == 0, single.stderr[-4000:]
    results = run_local(args, 2, timeout=240, env=python_env)
    report = "\n".join(f"rank {r.rank} exit {r.returncode}:\n{r.stdout}\n{r.stderr[-4000:]}" for r in results)
    assert all(r.returncode == 0 for r in results), report
    by_dtype: dict[str, list[dict[str, Any]]] = {d: [] for d in DTYPES}
    for text in (single.stdout, results[0].stdout, results[1].stdout):
        for line in text.splitlines():
            if line.startswith("{"):
                item = json.loads(line)
                by_dtype[item["dtype"]].append(item)
    assert all(len(items) == 3 for items in by_dtype.values()), report
    return by_dtype


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_two_rank_pipeline_matches_single_process(
    decoded: dict[str, list[dict[str, Any]]], dtype: str
) -> None:
    reference, rank0, rank1 = decoded[dtype]
    assert reference["rank"] is None
    assert len(reference["tokens"]) == TOKENS and len(set(reference["tokens"])) >= 4  # a meaningful sequence
    assert (rank0["rank"], rank1["rank"]) == (0, 1)
    assert rank0["layers"] == rank1["layers"] == 1  # the tiny model's 2 layers, one per rank
    assert rank0["tokens"] == rank1["tokens"] == reference["tokens"]
