"""``array_api_ops``: mx.diff, empty, flip, result_type, searchsorted, ones_like(dtype=) on mlx < 0.32.4.

The shim's functions are checked against fixed expected values on every mlx,
and against mlx's own functions where this mlx has them; without the shim,
the calls mlx-vlm makes fail on older mlx.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from helpers.shim_helpers import mlx_version, run_script
from helpers.subproc import env_with_settings
from packaging.version import Version

from mlx_portable.patches.array_api_ops import _functions, _like

SHIMS = _functions(mx)


pytestmark = pytest.mark.usefixtures("deactivated_after")


def _np(a: mx.array) -> np.ndarray:
    return np.array(a)


@pytest.mark.parametrize("dtype", [mx.int32, mx.float32, mx.float16, mx.bfloat16, mx.bool_])
@pytest.mark.parametrize(("n", "axis"), [(0, -1), (1, -1), (2, 0), (1, 1), (3, -1)])
def test_diff_matches_numpy(dtype: mx.Dtype, n: int, axis: int) -> None:
    base = np.array([[1, 4, 0, 9, 2], [3, 3, 8, 1, 7], [0, 1, 1, 0, 5]])
    a = mx.array(base).astype(dtype)
    expected = np.diff(base.astype(bool) if dtype == mx.bool_ else base, n=n, axis=axis)
    got = SHIMS["diff"](a, n=n, axis=axis)
    assert got.dtype == dtype
    assert np.array_equal(_np(got.astype(mx.float32)), expected.astype(np.float32))
    if hasattr(mx, "diff") and mx.diff is not SHIMS["diff"]:
        assert mx.array_equal(got, mx.diff(a, n=n, axis=axis))


def test_diff_errors_like_newest_mlx() -> None:
    with pytest.raises(ValueError, match=r"\[diff\] Order `n` must be non-negative"):
        SHIMS["diff"](mx.array([1, 2]), n=-1)
    with pytest.raises(ValueError, match=r"\[diff\]"):
        SHIMS["diff"](mx.array(1))


@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted_matches_numpy(side: str) -> None:
    seq = np.array([1, 2, 2, 4, 7, 7, 9], dtype=np.float32)
    values = np.array([[0, 2, 3], [7, 10, 1]], dtype=np.float32)
    got = SHIMS["searchsorted"](mx.array(seq), mx.array(values), side=side)
    assert got.dtype == mx.uint32
    assert got.shape == values.shape
    assert _np(got).tolist() == np.searchsorted(seq, values, side=side).tolist()  # type: ignore[call-overload]
    if Version(mx.__version__) >= Version("0.32.4"):
        assert mx.array_equal(got, mx.searchsorted(mx.array(seq), mx.array(values), side=side))
    empty = SHIMS["searchsorted"](mx.array(seq[:0]), mx.array(values), side=side)
    assert _np(empty).tolist() == [[0, 0, 0], [0, 0, 0]]


def test_searchsorted_errors_like_newest_mlx() -> None:
    with pytest.raises(ValueError, match=r"must be 1-D but has 2 dimensions"):
        SHIMS["searchsorted"](mx.ones((2, 2)), mx.array([1.0]))
    with pytest.raises(ValueError, match=r"Invalid side 'middle'"):
        SHIMS["searchsorted"](mx.array([1.0]), mx.array([1.0]), side="middle")


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)])
def test_flip_matches_numpy(axis: int | tuple[int, int] | None) -> None:
    base = np.arange(12).reshape(3, 4)
    assert _np(SHIMS["flip"](mx.array(base), axis=axis)).tolist() == np.flip(base, axis=axis).tolist()


def test_empty_and_result_type() -> None:
    e = SHIMS["empty"]((2, 3), dtype=mx.float16)
    assert e.shape == (2, 3) and e.dtype == mx.float16
    assert SHIMS["empty"](4).dtype == mx.float32
    assert SHIMS["result_type"](mx.array([1], dtype=mx.int8), mx.uint8) == mx.int16
    assert SHIMS["result_type"](mx.array([1]), mx.float16) == mx.float16
    assert SHIMS["result_type"](mx.bfloat16, mx.float32) == mx.float32
    if hasattr(mx, "result_type") and mx.result_type is not SHIMS["result_type"]:
        for pair in [(mx.int8, mx.uint8), (mx.int32, mx.float16), (mx.bfloat16, mx.float16)]:
            assert SHIMS["result_type"](*pair) == mx.result_type(*pair)


def test_like_with_dtype() -> None:
    ones_like = _like(mx, mx.ones_like, mx.ones)
    a = mx.array([1.5, 2.5])
    assert ones_like(a).dtype == mx.float32
    got = ones_like(a, dtype=mx.bool_)
    assert got.dtype == mx.bool_ and got.tolist() == [True, True]


MLX_VLM_CALLS = """
import sys
import mlx_portable
mlx_portable.activate()
import mlx.core as mx
keys = mx.array([1, 3, 5])
print(mx.searchsorted(keys, mx.array([4])).tolist(), mx.diff(keys).tolist(),
      mx.flip(keys).tolist(), mx.ones_like(keys, dtype=mx.bool_).tolist(),
      mx.empty((0, 4), dtype=mx.float16).shape, mx.result_type(keys, mx.float16))
"""


@pytest.mark.slow_every_mlx
def test_mlx_vlm_calls_work_activated_and_fail_without_shim() -> None:
    done = run_script(MLX_VLM_CALLS, env_with_settings())
    assert done.returncode == 0, done.stdout
    assert "[2] [2, 2] [5, 3, 1] [True, True, True] (0, 4) mlx.core.float16" in done.stdout
    off = run_script(MLX_VLM_CALLS, env_with_settings(MLX_PORTABLE_DISABLE="array_api_ops"))
    if mlx_version() < Version("0.32.4"):
        assert off.returncode != 0
        assert "has no attribute 'searchsorted'" in off.stdout
    else:
        assert off.returncode == 0, off.stdout
