"""``sdpa_masked_rows``: a query row whose boolean mask hides every key, mlx 0.27-0.28."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from helpers.shim_helpers import mlx_version, run_script
from helpers.subproc import env_with_settings
from packaging.version import Version

import mlx_portable

pytestmark = pytest.mark.usefixtures("deactivated_after")


def _inputs(dtype: mx.Dtype) -> tuple[mx.array, mx.array, mx.array, mx.array]:
    rng = np.random.default_rng(0)
    q, k, v = (
        mx.array(rng.standard_normal(s).astype(np.float32), dtype)
        for s in [(1, 4, 5, 8), (1, 2, 7, 8), (1, 2, 7, 8)]
    )
    mask = np.ones((5, 7), dtype=bool)
    mask[0] = False  # the first query row sees nothing
    mask[3, 4:] = False
    return q, k, v, mx.array(mask)


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
@pytest.mark.slow_every_mlx
def test_hidden_row_is_mean_of_values_others_unchanged(dtype: mx.Dtype) -> None:
    mlx_portable.activate()
    q, k, v, mask = _inputs(dtype)
    out = np.array(mx.fast.scaled_dot_product_attention(q, k, v, scale=0.3, mask=mask).astype(mx.float32))
    assert not np.isnan(out).any()
    v32 = np.array(v.astype(mx.float32))
    mean_v = np.repeat(v32.mean(axis=2), 2, axis=1)  # [1, 4, 8], GQA: 2 query heads per kv head
    tol = 1e-5 if dtype == mx.float32 else 2e-2
    assert np.allclose(out[:, :, 0, :], mean_v, atol=tol)
    # Other rows: a float64 reference of masked softmax attention.
    q32, k32 = (np.array(x.astype(mx.float32)).astype(np.float64) for x in (q, k))
    k_rep, v_rep = np.repeat(k32, 2, axis=1), np.repeat(v32.astype(np.float64), 2, axis=1)
    scores = 0.3 * q32 @ k_rep.transpose(0, 1, 3, 2)
    scores = np.where(np.array(mask), scores, -np.inf)[:, :, 1:]
    p = np.exp(scores - scores.max(-1, keepdims=True))
    ref = (p / p.sum(-1, keepdims=True)) @ v_rep
    assert np.allclose(out[:, :, 1:], ref, atol=10 * tol)


SCRIPT = """
import mlx_portable
mlx_portable.activate()
import mlx.core as mx
q = mx.ones((1, 2, 3, 8)); mask = mx.array([[False] * 4, [True] * 4, [True] * 4])
kv = mx.ones((1, 2, 4, 8))
out = mx.fast.scaled_dot_product_attention(q, kv, kv, scale=1.0, mask=mask)
print("nan" if mx.isnan(out).any().item() else "numbers")
"""


@pytest.mark.slow_every_mlx
def test_without_the_shim_the_hidden_row_is_nan_on_0_27_and_0_28() -> None:
    off = run_script(SCRIPT, env_with_settings(MLX_PORTABLE_DISABLE="sdpa_masked_rows"))
    assert off.returncode == 0, off.stdout
    broken = Version("0.27") <= mlx_version() < Version("0.29")
    assert off.stdout.strip().splitlines()[-1] == ("nan" if broken else "numbers")
    on = run_script(SCRIPT, env_with_settings())
    assert on.stdout.strip().splitlines()[-1] == "numbers", on.stdout
