"""``sdpa_sinks``: attention with sinks on mlx < 0.29.1, checked against float64 NumPy.

The ops implementation is checked on every mlx (and against mlx's own fused
kernel where it has sinks); the wrapper and the failure it prevents where it
applies (mlx < 0.29.1).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from helpers.shim_helpers import run_script

import mlx_portable
from mlx_portable.patches.sdpa_sinks import attention_with_sinks
from mlx_portable.registry.registry import get_original

mx = pytest.importorskip("mlx.core")
np = pytest.importorskip("numpy")

NATIVE_SINKS = "sinks" in (get_original(mx.fast, "scaled_dot_product_attention").__doc__ or "")

DTYPES = {"float32": (mx.float32, 2e-5), "float16": (mx.float16, 5e-3), "bfloat16": (mx.bfloat16, 3e-2)}

# (batch, n_q_heads, n_kv_heads, t_q, t_kv, head_dim)
SHAPES = [
    (1, 4, 4, 7, 7, 16),  # multi-head, square
    (2, 8, 2, 5, 9, 32),  # grouped-query, more keys than queries (a cache)
    (1, 6, 1, 1, 13, 64),  # multi-query, one decode step
]


def reference(q: Any, k: Any, v: Any, scale: float, mask: Any, sinks: Any) -> Any:
    """softmax([sink, q k^T * scale + mask]) without the sink column, times v, in float64."""
    q, k, v, sinks = (np.asarray(a, dtype=np.float64) for a in (q, k, v, sinks))
    n_q, n_kv = q.shape[1], k.shape[1]
    k = np.repeat(k, n_q // n_kv, axis=1)
    v = np.repeat(v, n_q // n_kv, axis=1)
    scores = (q * scale) @ np.swapaxes(k, -1, -2)
    t_q, t_kv = scores.shape[-2:]
    if isinstance(mask, str):
        offset = max(t_kv - t_q, 0)
        allowed = np.arange(offset, offset + t_q)[:, None] >= np.arange(t_kv)[None, :]
        scores = np.where(allowed, scores, -np.inf)
    elif mask is not None and mask.dtype == np.bool_:
        scores = np.where(mask, scores, -np.inf)
    elif mask is not None:
        scores = scores + mask
    sink = np.broadcast_to(sinks.reshape(1, -1, 1, 1), (*scores.shape[:-1], 1))
    full = np.concatenate([sink, scores], axis=-1)
    full = np.exp(full - full.max(axis=-1, keepdims=True))
    weights = full / full.sum(axis=-1, keepdims=True)
    return weights[..., 1:] @ v


def _inputs(shape: tuple[int, ...], seed: int) -> tuple[Any, ...]:
    b, n_q, n_kv, t_q, t_kv, d = shape
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((b, n_q, t_q, d)).astype(np.float32)
    k = rng.standard_normal((b, n_kv, t_kv, d)).astype(np.float32)
    v = rng.standard_normal((b, n_kv, t_kv, d)).astype(np.float32)
    sinks = rng.standard_normal(n_q).astype(np.float32) * 2
    return q, k, v, sinks


def _masks(shape: tuple[int, ...], seed: int) -> dict[str, Any]:
    b, n_q, _n_kv, t_q, t_kv, _d = shape
    rng = np.random.default_rng(seed + 100)
    boolean = rng.random((b, 1, t_q, t_kv)) > 0.3
    boolean[..., 0] = True  # every query sees at least one key
    return {
        "none": None,
        "causal": "causal",
        "boolean": boolean,
        "additive": (rng.standard_normal((n_q, t_q, t_kv)) * 3).astype(np.float32),  # per-head, rank 3
    }


def _mask_pair(mask: Any, dtype: Any) -> tuple[Any, Any]:
    """The mask for mlx (additive ones cast to ``dtype``) and what the reference sees."""
    if mask is None or isinstance(mask, str):
        return mask, mask
    if mask.dtype == np.bool_:
        return mx.array(mask), mask
    as_mx = mx.array(mask).astype(dtype)
    return as_mx, np.asarray(as_mx.astype(mx.float32))


def _check(out: Any, expected: Any, dtype: Any, tol: float) -> None:
    assert out.dtype == dtype
    got = np.asarray(out.astype(mx.float32), dtype=np.float64)
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("mask_kind", ["none", "causal", "boolean", "additive"])
def test_ops_implementation_matches_float64_numpy(
    shape: tuple[int, ...], dtype_name: str, mask_kind: str
) -> None:
    dtype, tol = DTYPES[dtype_name]
    q, k, v, sinks = _inputs(shape, seed=len(mask_kind))
    mask = _masks(shape, seed=1)[mask_kind]
    scale = shape[-1] ** -0.5
    # The reference sees the inputs as rounded to dtype, so only the computation is compared.
    rounded = [np.asarray(mx.array(a).astype(dtype).astype(mx.float32)) for a in (q, k, v)]
    mx_mask, ref_mask = _mask_pair(mask, dtype)
    expected = reference(*rounded, scale, ref_mask, sinks)
    out = attention_with_sinks(
        mx, *(mx.array(a).astype(dtype) for a in (q, k, v)), scale=scale, mask=mx_mask, sinks=mx.array(sinks)
    )
    _check(out, expected, dtype, tol)


@pytest.mark.parametrize("mask_kind", ["none", "causal", "boolean", "additive"])
def test_ops_implementation_agrees_with_mlx_fused_kernel(mask_kind: str) -> None:
    if not NATIVE_SINKS:
        pytest.skip(f"mlx {mx.__version__} has no native sinks to compare with")
    shape = SHAPES[1]
    q, k, v, sinks = (mx.array(a) for a in _inputs(shape, seed=3))
    mask, _ = _mask_pair(_masks(shape, seed=3)[mask_kind], mx.float32)
    kwargs = {"scale": 0.2, "mask": mask, "sinks": sinks}
    ours = attention_with_sinks(mx, q, k, v, **kwargs)
    native = get_original(mx.fast, "scaled_dot_product_attention")(q, k, v, **kwargs)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(native), rtol=1e-5, atol=1e-5)


def test_bad_sinks_and_masks_say_what_is_expected() -> None:
    q, k, v, sinks = (mx.array(a) for a in _inputs(SHAPES[1], seed=0))
    with pytest.raises(ValueError, match=r"one logit per query head, shape \(8,\)"):
        attention_with_sinks(mx, q, k, v, scale=1.0, mask=None, sinks=sinks[:3])
    with pytest.raises(ValueError, match="the only string mask is 'causal'"):
        attention_with_sinks(mx, q, k, v, scale=1.0, mask="upper", sinks=sinks)
    with pytest.raises(ValueError, match="multiple of n_kv_heads"):
        attention_with_sinks(mx, q[:, :3], k, v, scale=1.0, mask=None, sinks=sinks[:3])
    with pytest.raises(ValueError, match="rank 4"):
        attention_with_sinks(mx, q[0], k, v, scale=1.0, mask=None, sinks=sinks)


def _needs_shim() -> None:
    if NATIVE_SINKS:
        pytest.skip(f"mlx {mx.__version__} takes sinks= natively: nothing to shim")


def test_wrapper_passes_none_to_the_fused_kernel_and_computes_arrays() -> None:
    _needs_shim()
    fused = mx.fast.scaled_dot_product_attention
    q, k, v, sinks = (mx.array(a) for a in _inputs(SHAPES[1], seed=5))
    with pytest.raises(TypeError, match="incompatible function arguments"):
        fused(q, k, v, scale=0.25, mask="causal", sinks=None)  # what mlx-lm 0.32 hits here
    mlx_portable.activate()
    try:
        assert mlx_portable.report().patch("sdpa_sinks").status == "applied"
        wrapped = mx.fast.scaled_dot_product_attention
        assert wrapped is not fused
        plain = wrapped(q, k, v, scale=0.25, mask="causal", sinks=None)
        assert mx.array_equal(plain, fused(q, k, v, scale=0.25, mask="causal")).item()
        with_sinks = wrapped(q, k, v, scale=0.25, mask="causal", sinks=sinks, stream=mx.cpu)
        expected = reference(np.asarray(q), np.asarray(k), np.asarray(v), 0.25, "causal", np.asarray(sinks))
        _check(with_sinks, expected, mx.float32, 2e-5)
    finally:
        mlx_portable.deactivate()
    assert mx.fast.scaled_dot_product_attention is fused


GENERATE = """
import sys
import mlx_portable
mlx_portable.activate()
from mlx_lm import generate, load
model, tokenizer = load(sys.argv[1])
print("text:", repr(generate(model, tokenizer, prompt="hello", max_tokens=4, verbose=False)))
"""


def test_mlx_lm_generates_with_the_shim_and_fails_without(
    tiny_model_dir: Path, python_env: dict[str, str]
) -> None:
    _needs_shim()
    if importlib.util.find_spec("mlx_lm") is None:
        pytest.skip("mlx-lm is not installed")
    with_shim = run_script(GENERATE, python_env, str(tiny_model_dir))
    assert with_shim.returncode == 0, with_shim.stdout
    assert "text:" in with_shim.stdout
    without = run_script(GENERATE, {**python_env, "MLX_PORTABLE_DISABLE": "sdpa_sinks"}, str(tiny_model_dir))
    assert without.returncode != 0
    assert "scaled_dot_product_attention(): incompatible function arguments" in without.stdout
    assert "sinks: NoneType" in without.stdout


def test_value_head_size_may_differ_from_the_query_head_size() -> None:
    """MiMo-V2-Flash: grouped heads whose values are narrower than queries and keys.

    The fallback once reshaped its output with the query head size:
    ``ValueError: [reshape] Cannot reshape array of size 192 into shape (1,4,6,16)``.
    """
    rng = np.random.default_rng(7)
    q = rng.standard_normal((1, 4, 6, 16)).astype(np.float32)
    k = rng.standard_normal((1, 2, 6, 16)).astype(np.float32)
    v = rng.standard_normal((1, 2, 6, 8)).astype(np.float32)
    sinks = rng.standard_normal(4).astype(np.float32)
    for mask in (None, "causal"):
        got = attention_with_sinks(
            mx, mx.array(q), mx.array(k), mx.array(v), scale=0.25, mask=mask, sinks=mx.array(sinks)
        )
        assert got.shape == (1, 4, 6, 8)
        np.testing.assert_allclose(np.array(got), reference(q, k, v, 0.25, mask, sinks), atol=2e-5)
