"""``graph_depends`` and ``nn_relu2``: mx.depends and nn.relu2 on mlx < 0.29.

Each shim is shown working on real mlx-lm code, and the same scenario is
shown failing without it (in a fresh process with only that shim disabled:
on these mlx versions mlx-lm needs other shims just to be imported).
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from helpers.subproc import child_env, run_python

import mlx_portable

REPO = Path(__file__).resolve().parents[1]

BATCH_ROTATING = """
import mlx_portable
mlx_portable.activate()
import mlx.core as mx
from mlx_lm.models.cache import BatchRotatingKVCache
cache = BatchRotatingKVCache(max_size=8, left_padding=[1, 0])
for step in range(12):
    n = 5 if step == 0 else 1
    k = mx.ones((2, 2, n, 4)) * step
    keys, values = cache.update_and_fetch(k, k)
    mx.eval(keys, values)
print("shape", tuple(keys.shape), "last", float(keys[0, 0, -1, 0]))
"""

RELU2_MODEL = """
import mlx_portable
mlx_portable.activate()
import mlx.core as mx
import mlx.nn as nn
from mlx_lm.models import nemotron_h
print("relu2", nn.relu2(mx.array([-2.0, 3.0])).tolist())
"""


def _need_mlx_lm() -> None:
    # find_spec, not importorskip: importing mlx_lm here would need the
    # import-time shims that an earlier test's deactivate() removed.
    if importlib.util.find_spec("mlx_lm") is None:
        pytest.skip("mlx-lm is not installed")


pytestmark = pytest.mark.usefixtures("deactivated_after")


def _run(code: str, disable: str = "") -> subprocess.CompletedProcess[str]:
    env = child_env(**({"MLX_PORTABLE_DISABLE": disable} if disable else {}))
    return run_python(code, env=env, timeout=300)


def _natively(name: str, owner: object) -> bool:
    try:
        mlx_portable.get_original(owner, name)
    except AttributeError:
        return False
    return hasattr(owner, name)


def test_depends_returns_inputs_and_evaluates_dependencies() -> None:
    mlx_portable.activate()
    x = mx.arange(6).reshape(2, 3)
    dep = mx.array([1.0]) * 3
    out = mx.depends(x, (dep,))
    assert out is x or bool(mx.array_equal(out, x))
    out_list = mx.depends([x, x], dep)
    assert len(out_list) == 2
    if not _natively("depends", mx):
        assert mlx_portable.report().patch("graph_depends").status == "applied"
        with pytest.raises(TypeError, match="dependencies must be arrays"):
            mx.depends(x, ("not an array",))
    else:
        assert mlx_portable.report().patch("graph_depends").status == "obsolete"


def test_relu2_matches_numpy() -> None:
    import mlx.nn as nn

    mlx_portable.activate()
    x = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    expected = np.maximum(x, 0) ** 2
    np.testing.assert_allclose(np.array(nn.relu2(mx.array(x))), expected, rtol=1e-6)
    np.testing.assert_allclose(np.array(nn.ReLU2()(mx.array(x))), expected, rtol=1e-6)
    status = mlx_portable.report().patch("nn_relu2").status
    assert status in ("applied", "obsolete")


@pytest.mark.slow
def test_batch_rotating_cache_with_and_without_mlx_portable() -> None:
    _need_mlx_lm()
    with_it = _run(BATCH_ROTATING)
    assert with_it.returncode == 0, with_it.stderr[-2000:]
    assert "shape (2, 2, 8, 4) last 11.0" in with_it.stdout
    if hasattr(mx, "depends") and _natively("depends", mx):
        pytest.skip(f"mlx {mx.__version__} has mx.depends natively: nothing fails without the shim")
    without = _run(BATCH_ROTATING, disable="graph_depends")
    assert without.returncode != 0
    assert "AttributeError: module 'mlx.core' has no attribute 'depends'" in without.stderr


@pytest.mark.slow
def test_relu2_model_module_with_and_without_mlx_portable() -> None:
    _need_mlx_lm()
    with_it = _run(RELU2_MODEL)
    assert with_it.returncode == 0, with_it.stderr[-2000:]
    assert "relu2 [0.0, 9.0]" in with_it.stdout
    import mlx.nn as nn

    if _natively("relu2", nn):
        pytest.skip(f"mlx {mx.__version__} has nn.relu2 natively: nothing fails without the shim")
    without = _run(RELU2_MODEL, disable="nn_relu2")
    assert without.returncode != 0
    assert "AttributeError: module 'mlx.nn' has no attribute 'relu2'" in without.stderr


def test_depends_is_lazy_and_keeps_values_exactly() -> None:
    """Nothing is evaluated by mx.depends; evaluating its output evaluates the dependencies.

    The dependency here is a float16 ``gather_mm`` with indices, which mlx's
    CPU cannot run (``[GatherMM::eval] Currently only supports float32``): an
    eager stand-in raised at the call, as the real ``mx.depends`` never does.
    """
    mlx_portable.activate()
    x = mx.array([-0.0, float("nan"), 1.5, float("inf")], dtype=mx.float16)
    a = mx.ones((2, 1, 4), dtype=mx.float16)
    dep = mx.gather_mm(a, mx.ones((2, 4, 3), dtype=mx.float16), None, mx.array([1, 0], dtype=mx.uint32))
    out = mx.depends(x, (dep, mx.array([3])))  # must not evaluate dep
    pair = mx.depends((x, x), [dep])
    assert isinstance(pair, list) and len(pair) == 2  # mlx returns a list for any sequence
    with pytest.raises(Exception, match="GatherMM"):
        mx.eval(out)  # the dependency is in the graph (its float16 CPU kernel then refuses)
    out = mx.depends(x, mx.array([1.0, 2.0]))
    assert out.dtype == x.dtype and out.shape == x.shape
    got = np.array(out.astype(mx.float32))
    assert np.signbit(got[0]) and np.isnan(got[1]) and got[2] == 1.5 and np.isinf(got[3])
