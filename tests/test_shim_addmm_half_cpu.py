"""``addmm_half_cpu``: nn.Linear with a bias in float16 / bfloat16 on the CPU, mlx < 0.29.4."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from helpers.shim_helpers import mlx_version, run_script
from helpers.subproc import env_with_settings
from packaging.version import Version

import mlx_portable

pytestmark = pytest.mark.usefixtures("deactivated_after")


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16, mx.float32])
@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (0.5, 2.0)])
def test_addmm_matches_float32_reference_when_active(dtype: mx.Dtype, alpha: float, beta: float) -> None:
    mlx_portable.activate()
    rng = np.random.default_rng(0)
    c, a, b = (rng.standard_normal(s).astype(np.float32) for s in [(3, 9), (3, 7), (7, 9)])
    got = mx.addmm(mx.array(c, dtype), mx.array(a, dtype), mx.array(b, dtype), alpha=alpha, beta=beta)
    assert got.dtype == dtype
    expected = alpha * (a @ b) + beta * c
    tol = 1e-5 if dtype == mx.float32 else 0.1
    assert np.allclose(np.array(got.astype(mx.float32)), expected, atol=tol, rtol=tol)


def test_half_precision_linear_with_bias_when_active() -> None:
    mlx_portable.activate()
    layer = nn.Linear(8, 4, bias=True)
    ref = layer(mx.ones((2, 8)))
    layer.set_dtype(mx.bfloat16)
    out = layer(mx.ones((2, 8), dtype=mx.bfloat16))
    assert out.dtype == mx.bfloat16
    assert np.allclose(np.array(out.astype(mx.float32)), np.array(ref), atol=0.1)


SCRIPT = """
import mlx_portable
mlx_portable.activate()
import mlx.core as mx, mlx.nn as nn
layer = nn.Linear(8, 4, bias=True)
layer.set_dtype(mx.float16)
mx.eval(layer(mx.ones((2, 8), dtype=mx.float16)))
print("ok")
"""


@pytest.mark.slow_every_mlx
def test_without_the_shim_half_precision_linear_fails_on_old_mlx() -> None:
    done = run_script(SCRIPT, env_with_settings(MLX_PORTABLE_DISABLE="addmm_half_cpu"))
    if mlx_version() < Version("0.29"):
        assert done.returncode != 0, done.stdout
        assert "[AddMM::eval_cpu] Currently only supports float32" in done.stdout
    else:
        assert done.returncode == 0 and "ok" in done.stdout, done.stdout
    active = run_script(SCRIPT, env_with_settings())
    assert active.returncode == 0 and "ok" in active.stdout, active.stdout
