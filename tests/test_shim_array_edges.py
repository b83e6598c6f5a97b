"""The array-edge shims: each scenario gives mlx 0.32.4's answer with mlx-portable on every mlx.

Every scenario runs in a fresh interpreter twice: with mlx-portable imported
(the answer must be mlx 0.32.4's) and with only that shim disabled (on the
mlx versions the shim is for, the failure it prevents must show: wrong
values, an error, or the process killed by SIGFPE; elsewhere the native
answer is already right and the shim reports itself obsolete).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import mlx.core as mx
import pytest
from helpers.shim_helpers import mlx_version
from helpers.subproc import child_env, run_python
from packaging.specifiers import SpecifierSet

import mlx_portable
from mlx_portable.patches import array_arguments, empty_reductions, float64_values, index_views
from mlx_portable.patches.array_arguments import masked_assign
from mlx_portable.patches.index_views import gather_reads_in_memory_order

PATCHES = (
    *index_views.PATCHES,
    *empty_reductions.PATCHES,
    *float64_values.PATCHES,
    *array_arguments.PATCHES,
)

PRELUDE = "import mlx_portable\nimport mlx.core as mx\nimport numpy as np\n"

#: shim -> (scenario printing one line, mlx 0.32.4's line, what the shim prevents on its versions)
SCENARIOS: dict[str, tuple[str, str, str]] = {
    "gather_view_order": (
        "a = mx.arange(6.0).reshape(2, 3)\n"
        "v = a.T[None]\n"
        "i = mx.array([0])\n"
        "print(v[0].tolist(), v[-1].tolist(), v[i].tolist(), mx.take(v, i, axis=0).tolist(),"
        " mx.expand_dims(a.T, 0)[0, ...].tolist(), v[i, :, 1].tolist())",
        "[[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]] [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]] "
        "[[[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]] [[[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]] "
        "[[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]] [[3.0, 4.0, 5.0]]",
        "wrong",
    ),
    "empty_axis_take": (
        "print(mx.zeros((2, 0))[0].shape, mx.zeros((1, 0, 8))[0].shape,"
        " mx.zeros((3, 0))[mx.array([2, 0])].shape, mx.take(mx.zeros((2, 0)), mx.array([1]), axis=0).shape)",
        "(0,) (0, 8) (2, 0) (1, 0)",
        "[take] Cannot do a non-empty take from an array with zero elements",
    ),
    "empty_scan": (
        "x = mx.zeros((0, 3))\n"
        "out = [mx.cumsum(x, axis=0), mx.cumprod(x, axis=1), mx.cummax(x, axis=0),"
        " x.cummin(axis=1), mx.logcumsumexp(x, axis=0), mx.cumsum(mx.zeros((0,), dtype=mx.bool_)),"
        " mx.sort(x, axis=0), mx.argsort(mx.zeros((3, 0)), axis=1)]\n"
        "mx.eval(out)\n"
        "print([(o.shape, str(o.dtype)) for o in out])",
        "[((0, 3), 'mlx.core.float32'), ((0, 3), 'mlx.core.float32'), ((0, 3), 'mlx.core.float32'), "
        "((0, 3), 'mlx.core.float32'), ((0, 3), 'mlx.core.float32'), ((0,), 'mlx.core.int32'), "
        "((0, 3), 'mlx.core.float32'), ((3, 0), 'mlx.core.uint32')]",
        "SIGFPE",
    ),
    "empty_extremes": (
        "x = mx.zeros((0, 3))\n"
        "out = [mx.max(x, axis=1), mx.min(x, axis=(1,), keepdims=True), x.max(axis=-1),"
        " mx.zeros((2, 0, 3)).min(axis=2)]\n"
        "mx.eval(out)\n"
        "print([o.shape for o in out])",
        "[(0,), (0, 1), (0,), (2, 0)]",
        "Cannot max reduce zero size array",
    ),
    "negative_stride_views": (
        "a = mx.arange(12.0).reshape(3, 4)\n"
        "r = a[:, ::-1]\n"
        "print(r[0, 1:].tolist(), r[1:, 2].tolist(), a[::-1][1:].tolist())",
        "[2.0, 1.0, 0.0] [5.0, 9.0] [[4.0, 5.0, 6.0, 7.0], [0.0, 1.0, 2.0, 3.0]]",
        "wrong",
    ),
    "float64_tolist": (
        "a = mx.array([[1.5, -2.25], [3.0, 0.125]], dtype=mx.float64)\n"
        "print(a.tolist(), a.T.tolist(), mx.array(0.5, dtype=mx.float64).tolist())",
        "[[1.5, -2.25], [3.0, 0.125]] [[1.5, 3.0], [-2.25, 0.125]] 0.5",
        "TypeError: data type cannot be converted to Python list",
    ),
    "float64_from_python": (
        "a = mx.array([[0.1, 1e300], [1 / 3, -7.0]], dtype=mx.float64)\n"
        "print(memoryview(a).tolist(), memoryview(mx.array(0.1, dtype=mx.float64)).tolist())",
        "[[0.1, 1e+300], [0.3333333333333333, -7.0]] 0.1",
        "wrong",
    ),
    "float64_linspace": (
        "print(memoryview(mx.linspace(0, 1, 7, dtype=mx.float64)).tolist())",
        "[0.0, 0.16666666666666666, 0.3333333333333333, 0.5, 0.6666666666666666, 0.8333333333333334, 1.0]",
        "wrong",
    ),
    "bool_mask_assign": (
        "x = mx.zeros((4,))\n"
        "x[mx.array([True, False, True, False])] = mx.array([1.0, 2.0])\n"
        "y = mx.zeros((2, 3))\n"
        "y[mx.array([[True, False, True], [False, True, False]])] = 7\n"
        "z = mx.zeros((3, 2))\n"
        "z[np.array([False, True, True])] = mx.array([[1.0, 2.0], [3.0, 4.0]])\n"
        "print(x.tolist(), y.tolist(), z.tolist())",
        "[1.0, 0.0, 2.0, 0.0] [[7.0, 0.0, 7.0], [0.0, 7.0, 0.0]] [[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]]",
        "Error",
    ),
    "tile_array_reps": (
        "a = mx.arange(2.0)\n"
        "print(mx.tile(a, [mx.array(2.0), 1]).tolist(), mx.tile(a, mx.array(2)).tolist(),"
        " mx.tile(a, (mx.array(2.7),)).tolist())",
        "[[0.0, 1.0], [0.0, 1.0]] [0.0, 1.0, 0.0, 1.0] [0.0, 1.0, 0.0, 1.0]",
        "TypeError: tile(): incompatible function arguments",
    ),
}


@pytest.fixture(autouse=True)
def _leave_inactive() -> Iterator[None]:
    yield None
    mlx_portable.deactivate()


def _needed(name: str) -> bool:
    patch = next(p for p in PATCHES if p.name == name)
    return mlx_version() in SpecifierSet(patch.mlx_versions)


def _child(code: str, disable: str = "") -> tuple[int, str]:
    env = child_env(MLX_PORTABLE_DISABLE=disable) if disable else child_env()
    done = run_python(PRELUDE + code, env=env, timeout=120, combine=True)
    return done.returncode, done.stdout.strip()


def test_every_shim_has_a_scenario() -> None:
    assert set(SCENARIOS) == {p.name for p in PATCHES}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.slow_every_mlx
def test_scenario_gives_the_answer_of_mlx_0_32_4(name: str) -> None:
    code, expected, _ = SCENARIOS[name]
    rc, out = _child(code)
    assert rc == 0, out
    assert out.splitlines()[-1] == expected


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.slow_every_mlx
def test_without_the_shim_the_scenario_fails_where_it_is_needed(name: str) -> None:
    code, expected, failure = SCENARIOS[name]
    rc, out = _child(code, disable=name)
    if not _needed(name):
        assert rc == 0, out
        assert out.splitlines()[-1] == expected, "the native answer is already mlx 0.32.4's"
        return
    if failure == "SIGFPE":
        assert rc == -signal.SIGFPE, (rc, out)  # the whole process dies, no exception
    elif failure == "wrong":
        assert rc == 0, out
        assert out.splitlines()[-1] != expected  # silently wrong values, no error
    else:
        assert rc != 0 and failure in out, out


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_report_says_applied_or_obsolete_by_version(name: str) -> None:
    mlx_portable.activate()
    line = mlx_portable.report().patch(name)
    assert line.status == ("applied" if _needed(name) else "obsolete"), line


def test_memory_order_rule_matches_the_gather_kernel_test() -> None:
    # The (1, 3, 2) view of a transposed (2, 3) array: the kernel copies in memory order.
    assert gather_reads_in_memory_order((1, 3, 2), (0,))
    # A one-axis slice is copied right whatever the layout; a longer gathered axis blocks the copy.
    assert not gather_reads_in_memory_order((1, 1, 5), (0,))
    assert not gather_reads_in_memory_order((3, 3, 2), (0,))
    # Gathering the last non-singleton axis of a 3-D transposed array.
    assert gather_reads_in_memory_order((4, 3, 2), (2,))
    assert not gather_reads_in_memory_order((4, 3, 2), (1,))


def test_gather_on_transposed_views_matches_numpy_with_the_shim() -> None:
    import numpy as np

    mlx_portable.activate()
    base = np.arange(24.0, dtype=np.float32).reshape(4, 3, 2)
    view = mx.array(base).transpose(2, 1, 0)  # (2, 3, 4), column-contiguous
    ref = base.transpose(2, 1, 0)
    idx = np.array([1, 0], dtype=np.int32)
    assert np.array_equal(np.array(mx.take(view, mx.array(idx), axis=2)), np.take(ref, idx, axis=2))
    assert np.array_equal(np.array(view[None][0]), ref)
    assert np.array_equal(np.array(view[None][mx.array(idx[:1] * 0)]), ref[None][idx[:1] * 0])


def test_exact_float64_builds_nested_lists_and_leaves_the_rest_to_mlx() -> None:
    from mlx_portable.patches.float64_values import exact_float64

    out = exact_float64(mx, [[0.1, 2], [3.5, -1e-300]])
    assert out.dtype == mx.float64 and out.shape == (2, 2)
    assert memoryview(out).tolist() == [[0.1, 2.0], [3.5, -1e-300]]
    assert exact_float64(mx, [[1.0], [2.0, 3.0]]) is None  # ragged: mlx's own error
    assert exact_float64(mx, [True]) is None  # bools: mlx converts them
    assert exact_float64(mx, []).shape == (0,)


def test_masked_assign_checks_like_masked_scatter() -> None:
    x = mx.zeros((2, 3))
    with pytest.raises(ValueError, match="Scalar masks are not supported"):
        masked_assign(mx, x, mx.array(True), 1.0)
    with pytest.raises(ValueError, match="same shape as the beginning"):
        masked_assign(mx, x, mx.array([True, False, True]), 1.0)
    out = masked_assign(
        mx, x, mx.array([[False, True, True], [True, False, False]]), mx.array([1.0, 2.0, 3.0])
    )
    assert out.tolist() == [[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]]
    assert masked_assign(mx, x, mx.zeros((2, 3), dtype=mx.bool_), mx.array([])).tolist() == x.tolist()


def test_empty_axis_index_into_the_empty_axis_still_raises() -> None:
    mlx_portable.activate()
    assert mx.zeros((2, 0))[5].shape == (0,)  # 0.32.4 does not check the bound either
    assert mx.zeros((2, 0, 3))[mx.array([1]), :, 0].shape == (1, 0)
    with pytest.raises(ValueError, match=r"\[take\] Cannot do a non-empty take"):
        mx.eval(mx.zeros((0, 3))[0])
