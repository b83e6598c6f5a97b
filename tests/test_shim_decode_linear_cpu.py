"""``decode_linear_cpu``: one float32 row through nn.Linear on the CPU, the weight in blocks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from helpers.shim_helpers import run_script
from helpers.subproc import env_with_settings

import mlx_portable
from mlx_portable.fallbacks import row_products
from mlx_portable.registry.registry import get_original, registry


@pytest.fixture(autouse=True)
def _routes() -> Iterator[None]:
    """Active, with the measured answer fixed so the route does not depend on the load."""
    mlx_portable.activate()
    row_products.assume_blocked_rows(True)
    yield None
    row_products.assume_blocked_rows(None)
    mlx_portable.deactivate()


def _routed() -> dict[str, int]:
    counts: dict[str, int] = registry.record("decode_linear_cpu").state["routed"]
    return counts


def _close(got: mx.array, expected: mx.array) -> None:
    g, e = np.array(got), np.array(expected)
    assert g.shape == e.shape
    np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5 * float(np.abs(e).max()))


def _layer(n_in: int, n_out: int, bias: bool, seed: int = 0) -> nn.Linear:
    mx.random.seed(seed)
    layer = nn.Linear(n_in, n_out, bias=bias)
    mx.eval(layer.parameters())
    return layer


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shape", [(256,), (1, 256), (1, 1, 256)])
def test_one_row_takes_the_blocked_route_with_mlx_results(shape: tuple[int, ...], bias: bool) -> None:
    layer = _layer(256, 2048, bias)
    x = mx.random.normal(shape, key=mx.random.key(1))
    before = _routed()["linear"]
    got = layer(x)
    assert _routed()["linear"] == before + 1
    assert got.shape == (*shape[:-1], 2048) and got.dtype == mx.float32
    _close(got, get_original(nn.Linear, "__call__")(layer, x))


def test_rows_past_the_last_whole_block_are_computed_too() -> None:
    layer = _layer(1024, 2 * 512 + 100, True)  # 512-row blocks for K=1024 (bound 1e6): 2 blocks + 100
    assert row_products.block_rows(1124, 1024) == 512
    x = mx.random.normal((1, 1, 1024), key=mx.random.key(2))
    before = _routed()["linear"]
    got = layer(x)
    assert _routed()["linear"] == before + 1
    _close(got, x @ layer.weight.T + layer.bias)


def test_tied_embedding_head_takes_the_route() -> None:
    mx.random.seed(3)
    embedding = nn.Embedding(3000, 256)
    mx.eval(embedding.parameters())
    x = mx.random.normal((1, 1, 256), key=mx.random.key(4))
    before = _routed()["embedding"]
    got = embedding.as_linear(x)
    assert _routed()["embedding"] == before + 1
    _close(got, x @ embedding.weight.T)


def test_block_rows_follow_the_bound() -> None:
    assert row_products.block_rows(32000, 1024) == 512
    assert row_products.block_rows(32000, 2816) == 352  # 1e6 // 2816 = 355, a multiple of 32
    assert row_products.block_rows(14336, 4096) == 224
    assert row_products.block_rows(4096, 40000) == 0  # a block under 32 rows does not pay
    assert row_products.block_rows(512, 1024) == 0  # one block: mlx's own call is within the bound
    assert row_products.block_rows(4096, 0) == 0


def test_prompts_half_precision_small_weights_and_other_inputs_are_left_to_mlx() -> None:
    layer = _layer(256, 2048, True)
    before = dict(_routed())
    original = get_original(nn.Linear, "__call__")
    for x in (
        mx.random.normal((2, 256), key=mx.random.key(5)),  # two rows: a prompt
        mx.random.normal((1, 3, 256), key=mx.random.key(6)),
        mx.random.normal((1, 0, 256), key=mx.random.key(6)),  # no rows
    ):
        assert mx.array_equal(layer(x), original(layer, x)).item()
    half = _layer(256, 2048, False)
    half.set_dtype(mx.bfloat16)
    x16 = mx.ones((1, 256), dtype=mx.bfloat16)
    assert mx.array_equal(half(x16), original(half, x16)).item()
    small = _layer(64, 128, False)
    x64 = mx.ones((1, 64))
    assert mx.array_equal(small(x64), original(small, x64)).item()
    # A wrong width is mlx's own error, unchanged.
    with pytest.raises(ValueError) as ours:
        layer(mx.ones((1, 255)))
    with pytest.raises(ValueError) as mlx_own:
        original(layer, mx.ones((1, 255)))
    assert str(ours.value) == str(mlx_own.value)
    assert _routed() == before


def test_no_route_when_not_measured_faster() -> None:
    row_products.assume_blocked_rows(False)
    layer = _layer(256, 2048, False)
    before = _routed()["linear"]
    x = mx.ones((1, 256))
    assert mx.array_equal(layer(x), get_original(nn.Linear, "__call__")(layer, x)).item()
    assert _routed()["linear"] == before
    with pytest.raises(ValueError, match="True, False or None"):
        row_products.assume_blocked_rows("yes")  # type: ignore[arg-type]


def test_gpu_default_device_is_left_to_mlx_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU default device (simulated: this CPU build has none) keeps mlx's own call."""
    layer = _layer(256, 2048, False)
    before = _routed()["linear"]
    monkeypatch.setattr(mx, "default_device", lambda: mx.Device(mx.gpu))
    x = mx.ones((1, 256))
    got = layer(x)
    monkeypatch.undo()
    assert _routed()["linear"] == before
    assert mx.array_equal(got, get_original(nn.Linear, "__call__")(layer, x)).item()


def test_measurement_runs_and_answers_a_bool() -> None:
    row_products.assume_blocked_rows(None)
    assert row_products.blocked_rows_faster(refresh=True) in (True, False)


def test_compiled_functions_and_worker_threads() -> None:
    layer = _layer(256, 2048, True)
    x = mx.random.normal((1, 1, 256), key=mx.random.key(7))
    expected = get_original(nn.Linear, "__call__")(layer, x)
    _close(mx.compile(lambda v: layer(v))(x), expected)
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(np.array(layer(x))))
    worker.start()
    worker.join(60)
    assert len(results) == 1
    np.testing.assert_allclose(results[0], np.array(expected), rtol=1e-5, atol=1e-4)


def test_reverted_by_deactivate() -> None:
    assert nn.Linear.__call__ is not get_original(nn.Linear, "__call__")
    assert "mlx-portable" in (nn.Linear.__call__.__doc__ or "")
    mlx_portable.deactivate()
    assert nn.Linear.__call__ is get_original(nn.Linear, "__call__")
    assert nn.Embedding.as_linear is get_original(nn.Embedding, "as_linear")
    mlx_portable.activate()


GREEDY = """
import json, sys
import mlx_portable
mlx_portable.activate()
import mlx.core as mx
from mlx_portable.fallbacks import row_products
from mlx_portable.cli.tiny_model import build_tiny_model
from mlx_portable.registry.registry import registry
from mlx_lm.models.cache import make_prompt_cache
row_products.assume_blocked_rows(True)
# Wide enough that the MLP's weights (1280 x 256: two blocks and a rest) take the route.
model, _tok = build_tiny_model(seed=0, hidden_size=256, intermediate_size=1280, num_attention_heads=4)
prompt = mx.array([[72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100, 33, 10]])
cache = make_prompt_cache(model)
token = mx.argmax(model(prompt, cache=cache)[:, -1, :], axis=-1)
out, steps = [token.item()], []
for _ in range(31):
    logits = model(token[:, None], cache=cache)[:, -1, :]
    steps.append(logits[0].tolist())
    token = mx.argmax(logits, axis=-1)
    out.append(token.item())
record = registry.record("decode_linear_cpu")
routed = record.state.get("routed", {}).get("linear", 0)
print(json.dumps({"tokens": out, "logits": steps, "routed": routed, "status": record.status}))
"""


@pytest.mark.slow_every_mlx
def test_greedy_tokens_of_a_tiny_model_match_plain_mlx() -> None:
    pytest.importorskip("mlx_lm")
    runs = {}
    for side, env in (
        ("routes", env_with_settings()),
        ("plain", env_with_settings(MLX_PORTABLE_DISABLE="decode_linear_cpu")),
    ):
        done = run_script(GREEDY, env)
        assert done.returncode == 0, done.stdout
        runs[side] = json.loads(done.stdout.strip().splitlines()[-1])
    assert runs["routes"]["status"] == "applied" and runs["routes"]["routed"] >= 31 * 2 * 2
    assert runs["plain"]["status"] != "applied" and runs["plain"]["routed"] == 0
    assert runs["routes"]["tokens"] == runs["plain"]["tokens"]
    routed, plain = np.array(runs["routes"]["logits"]), np.array(runs["plain"]["logits"])
    np.testing.assert_allclose(routed, plain, rtol=0, atol=1e-4 * float(np.abs(plain).max()))
