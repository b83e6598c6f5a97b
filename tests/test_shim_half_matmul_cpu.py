"""``half_matmul_cpu``: bfloat16/float16 products on the CPU through the float32 GEMM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from helpers.shim_helpers import run_script
from helpers.subproc import env_with_settings

import mlx_portable
from mlx_portable.fallbacks import cpu_routes
from mlx_portable.registry.registry import get_original, registry

HALF = [mx.bfloat16, mx.float16]


@pytest.fixture(autouse=True)
def _routes() -> Iterator[None]:
    """Active, with the fast-GEMM answer fixed so the route does not depend on the load."""
    mlx_portable.activate()
    cpu_routes.assume_fast_float32_gemm(True)
    yield None
    cpu_routes.assume_fast_float32_gemm(None)
    mlx_portable.deactivate()


def _routed() -> dict[str, int]:
    counts: dict[str, int] = registry.record("half_matmul_cpu").state["routed"]
    return counts


def _pair(rows: int, dtype: mx.Dtype, seed: int = 0) -> tuple[mx.array, mx.array]:
    key = mx.random.key(seed)
    a = mx.random.normal((rows, 96), key=key).astype(dtype)
    b = mx.random.normal((96, 80), key=mx.random.split(key)[1]).astype(dtype)
    return a, b


def _f32(x: mx.array) -> np.ndarray:
    return np.array(x.astype(mx.float32))


@pytest.mark.parametrize("dtype", HALF)
def test_prompt_sized_product_takes_the_float32_gemm_and_rounds_once(dtype: mx.Dtype) -> None:
    a, b = _pair(16, dtype)
    before = _routed()["matmul"]
    got = mx.matmul(a, b)
    assert _routed()["matmul"] == before + 1
    assert got.dtype == dtype
    # Exactly one rounding of the float32 product: mlx's own semantics.
    expected = (a.astype(mx.float32) @ b.astype(mx.float32)).astype(dtype)
    assert mx.array_equal(got, expected).item()
    # And within one rounding of mlx's own half GEMM (which also sums in float32).
    mlx_own = get_original(mx, "matmul")(a, b)
    ulp = np.abs(_f32(expected)) * (2.0**-7 if dtype == mx.bfloat16 else 2.0**-10) + 1e-3
    assert np.all(np.abs(_f32(got) - _f32(mlx_own)) <= ulp)


@pytest.mark.parametrize("dtype", HALF)
def test_operator_and_linear_layers_take_the_route(dtype: mx.Dtype) -> None:
    a, b = _pair(8, dtype)
    before = dict(_routed())
    at = a @ b
    assert _routed()["matmul"] == before["matmul"] + 1
    assert mx.array_equal(at, mx.matmul(a, b)).item()
    plain = nn.Linear(96, 80, bias=False)
    biased = nn.Linear(96, 80, bias=True)
    plain.set_dtype(dtype)
    biased.set_dtype(dtype)
    x = a
    mx.eval(plain(x), biased(x))
    assert _routed()["matmul"] == before["matmul"] + 3  # a @ b, mx.matmul, plain Linear
    assert _routed()["addmm"] == before["addmm"] + 1  # Linear with bias: mx.addmm
    w, bias = biased.weight.astype(mx.float32), biased.bias.astype(mx.float32)
    expected = mx.addmm(bias, x.astype(mx.float32), w.T).astype(dtype)
    assert mx.array_equal(biased(x), expected).item()


@pytest.mark.parametrize("dtype", HALF)
def test_decode_sized_products_keep_mlx_own_loop(dtype: mx.Dtype) -> None:
    a, b = _pair(1, dtype)
    before = _routed()["matmul"]
    got = a @ b
    assert _routed()["matmul"] == before
    assert mx.array_equal(got, get_original(mx, "matmul")(a, b)).item()


def test_no_route_without_a_fast_float32_gemm() -> None:
    cpu_routes.assume_fast_float32_gemm(False)
    a, b = _pair(64, mx.bfloat16)
    before = _routed()["matmul"]
    assert mx.array_equal(a @ b, get_original(mx, "matmul")(a, b)).item()
    assert _routed()["matmul"] == before


def test_float32_mixed_dtypes_vectors_and_gpu_streams_are_left_to_mlx() -> None:
    before = dict(_routed())
    a, b = _pair(16, mx.float32)
    mx.eval(a @ b, mx.matmul(a, b))
    mixed = mx.matmul(a.astype(mx.bfloat16), b.astype(mx.float16))
    assert mixed.dtype == get_original(mx, "matmul")(a.astype(mx.bfloat16), b.astype(mx.float16)).dtype
    v = mx.ones((96,), dtype=mx.bfloat16)
    mx.eval(v @ b.astype(mx.bfloat16))
    assert _routed() == before
    # A GPU stream reaches mlx's own op, with mlx's own answer (an error on this CPU build).
    half_a, half_b = _pair(16, mx.bfloat16)
    outcomes = []
    for fn in (mx.matmul, get_original(mx, "matmul")):
        try:
            outcomes.append(("ok", fn(half_a, half_b, stream=mx.gpu).dtype))
        except (RuntimeError, ValueError) as exc:
            outcomes.append(("error", str(exc)))
    assert outcomes[0] == outcomes[1]
    assert _routed() == before


def test_cpu_stream_argument_is_respected() -> None:
    a, b = _pair(16, mx.bfloat16)
    before = _routed()["matmul"]
    got = mx.matmul(a, b, stream=mx.cpu)
    assert _routed()["matmul"] == before + 1
    assert mx.array_equal(got, (a.astype(mx.float32) @ b.astype(mx.float32)).astype(mx.bfloat16)).item()


def test_reverted_by_deactivate() -> None:
    assert mx.matmul is not get_original(mx, "matmul")
    mlx_portable.deactivate()
    assert mx.matmul is get_original(mx, "matmul")
    assert mx.addmm is get_original(mx, "addmm")
    assert mx.array.__matmul__ is get_original(mx.array, "__matmul__")
    assert "mlx-portable" not in (mx.fast.scaled_dot_product_attention.__doc__ or "")
    assert registry.record("half_matmul_cpu").status != "applied"
    mlx_portable.activate()


def test_measurement_sees_the_bound_blas() -> None:
    """The real measurement, not the assumed answer: it runs, and answers a bool."""
    cpu_routes.assume_fast_float32_gemm(None)
    assert cpu_routes.fast_float32_gemm(refresh=True) in (True, False)
    with pytest.raises(ValueError, match="True, False or None"):
        cpu_routes.assume_fast_float32_gemm("yes")  # type: ignore[arg-type]


GREEDY = """
import json, sys
import mlx_portable
mlx_portable.activate()
import mlx.core as mx
from mlx_portable.fallbacks import cpu_routes
from mlx_portable.cli.tiny_model import build_tiny_model
from mlx_lm.models.cache import make_prompt_cache
cpu_routes.assume_fast_float32_gemm(True)
model, _tok = build_tiny_model(seed=0, num_hidden_layers=2)
model.set_dtype(getattr(mx, sys.argv[1]))
if sys.argv[2] == "float32":  # the same (rounded) weights, every activation in float32
    model.set_dtype(mx.float32)
forced = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None  # teacher forcing: feed these tokens
prompt = mx.array([[72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100, 33, 10]])
cache = make_prompt_cache(model)
logits = model(prompt, cache=cache)
first = logits[0].astype(mx.float32)
tokens, margins = [], []
for step in range(32):
    last = logits[0, -1, :].astype(mx.float32)
    top2 = mx.sort(last)[-2:]
    tokens.append(mx.argmax(last).item())
    margins.append((top2[1] - top2[0]).item())
    feed = forced[step] if forced is not None else tokens[-1]
    logits = model(mx.array([[feed]]), cache=cache)
print(json.dumps({"tokens": tokens, "margins": margins, "logits": first.tolist()}))
"""


def _greedy(env: dict[str, str], dtype: str, activations: str, forced: list[int] | None = None) -> Any:
    args = [dtype, activations] + ([json.dumps(forced)] if forced is not None else [])
    done = run_script(GREEDY, env, *args)
    assert done.returncode == 0, done.stdout
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.slow_every_mlx
def test_greedy_tokens_of_the_tiny_model_match_mlx_own_half_gemm(dtype: str) -> None:
    pytest.importorskip("mlx_lm")
    plain_env = env_with_settings(MLX_PORTABLE_DISABLE="half_matmul_cpu")
    plain = _greedy(plain_env, dtype, dtype)
    # The routed model is fed mlx's own greedy tokens (teacher forcing), so one near-tie
    # falling the other way does not carry into every later step.
    routes = _greedy(env_with_settings(), dtype, dtype, plain["tokens"])
    routed_logits, plain_logits = np.array(routes["logits"]), np.array(plain["logits"])
    scale = np.abs(plain_logits).max()
    tolerance = scale * (2.0**-5 if dtype == "bfloat16" else 2.0**-8)
    assert np.abs(routed_logits - plain_logits).max() <= tolerance
    # Attention through float32 is more accurate than mlx's half-precision fallback (its
    # products and softmax in the half dtype): the routed logits are no further from the run
    # with every activation in float32 than mlx's own.  (float16: both are dominated by the
    # logits' own rounding, hence the 10 %.)
    reference = np.array(_greedy(plain_env, dtype, "float32")["logits"])
    assert np.abs(routed_logits - reference).mean() <= 1.1 * np.abs(plain_logits - reference).mean()
    # Every greedy choice agrees, except where mlx's own top two logits are a near-tie (within
    # twice the logits' tolerance: seen on mlx 0.29.4 float16, the 8th token; bfloat16, the 14th).
    differ = [i for i, (a, b) in enumerate(zip(routes["tokens"], plain["tokens"], strict=True)) if a != b]
    assert all(plain["margins"][i] <= 2 * tolerance for i in differ), (differ, plain["margins"], tolerance)
    assert len(differ) <= 4, differ
