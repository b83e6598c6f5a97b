"""``compile_constants``: compiled functions take None arguments on every mlx.

Shown on mlx's own ``mx.compile`` (top level, keywords, inside containers,
the compile cache keyed on the constant) and on mlx-lm's gated-delta step,
the real caller; without the patch mlx < 0.29 raises.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers.shim_helpers import run_script
from helpers.subproc import env_with_settings

import mlx_portable
from mlx_portable.registry.registry import get_original

mx = pytest.importorskip("mlx.core")


def rejects_none(mx: Any) -> bool:
    """Whether this mlx's own ``mx.compile`` rejects a ``None`` argument (a tiny trace, run once)."""
    compile = get_original(mx, "compile")
    try:
        compile(lambda a, m=None: a)(mx.zeros(1), None)
    except ValueError:
        return True
    return False


NATIVE_NONE = not rejects_none(mx)


pytestmark = pytest.mark.usefixtures("activated")


def test_status_follows_the_real_behaviour() -> None:
    status = mlx_portable.report().patch("compile_constants").status
    assert status == ("obsolete" if NATIVE_NONE else "applied")


def test_none_anywhere_in_the_arguments() -> None:
    traces = []

    def f(a: Any, b: Any = None, *, opts: Any = None) -> Any:
        traces.append(1)
        out = a if b is None else a + b
        if opts is not None and opts["scale"] is not None:
            out = out * opts["scale"]
        return out

    g = mx.compile(f)
    x = mx.array([1.0, 2.0])
    assert g(x, None).tolist() == [1.0, 2.0]
    assert g(x, x).tolist() == [2.0, 4.0]
    assert g(x, None, opts={"scale": None}).tolist() == [1.0, 2.0]
    assert g(x, None, opts={"scale": mx.array(3.0)}).tolist() == [3.0, 6.0]
    n = len(traces)
    assert g(x + 1, None).tolist() == [2.0, 3.0]  # same constants: the trace is reused
    assert len(traces) == n
    h = mx.compile(lambda pair: pair[0] * 2 if pair[1] is None else pair[0])
    assert h((x, None)).tolist() == [2.0, 4.0] and h([x, x]).tolist() == [1.0, 2.0]


def test_shapeless_and_closures_still_work() -> None:
    state = [mx.array(1.0)]

    def step(a: Any, m: Any = None) -> Any:
        state[0] = state[0] + 1
        return a * state[0] if m is None else a

    g = mx.compile(step, inputs=state, outputs=state, shapeless=True)
    assert g(mx.ones(3), None).tolist() == [2.0, 2.0, 2.0]
    assert g(mx.ones(5)).tolist() == [3.0] * 5


SCRIPT = """
import mlx_portable
import mlx.core as mx
from mlx_lm.models.gated_delta import gated_delta_ops
q = k = mx.ones((1, 3, 2, 8)) * 0.1
v = mx.ones((1, 3, 2, 8))
g = mx.ones((1, 3, 2)) * 0.9
beta = mx.ones((1, 3, 2)) * 0.5
y, state = gated_delta_ops(q, k, v, g, beta, None, None)
mx.eval(y, state)
print("gated delta ok", y.shape)
"""


@pytest.mark.slow
def test_mlx_lm_gated_delta_ops_with_and_without() -> None:
    pytest.importorskip("mlx_lm")
    with_it = run_script(SCRIPT, env_with_settings())
    assert "gated delta ok (1, 3, 2, 8)" in with_it.stdout, with_it.stdout[-3000:]
    if NATIVE_NONE:
        pytest.skip(f"mlx {mx.__version__}'s mx.compile accepts None: nothing fails without the patch")
    without = run_script(SCRIPT, env_with_settings(MLX_PORTABLE_DISABLE="compile_constants"))
    assert "[compile] Function arguments must be trees of arrays or constants" in without.stdout
