"""``rope_batch_offsets``: ``mx.fast.rope`` with one offset per example on mlx < 0.29.1."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from helpers.shim_helpers import run_script

import mlx_portable
from mlx_portable.patches.rope_batch_offsets import _wrap
from mlx_portable.registry.registry import get_original

mx = pytest.importorskip("mlx.core")
np = pytest.importorskip("numpy")

NATIVE = "vector of" in (get_original(mx.fast, "rope").__doc__ or "")


def reference(x: Any, dims: int, base: float, scale: float, offsets: Any) -> Any:
    """Non-traditional RoPE in float64, one position offset per batch element."""
    return reference_any(x, dims, False, base, scale, offsets)


def _x(batch: int = 3) -> Any:
    return mx.array(np.random.default_rng(0).standard_normal((batch, 4, 5, 16)).astype(np.float32))


def _kwargs(offset: Any) -> dict[str, Any]:
    return {"traditional": False, "base": 10000.0, "scale": 1.0, "offset": offset}


def test_per_example_offsets_match_float64_numpy_and_newer_mlx() -> None:
    x = _x()
    offsets = [0, 7, 3]
    wrapped = _wrap(mx, get_original(mx.fast, "rope"))
    out = wrapped(x, 12, **_kwargs(mx.array(offsets)))
    np.testing.assert_allclose(np.asarray(out), reference(x, 12, 10000.0, 1.0, offsets), rtol=1e-4, atol=1e-4)
    if NATIVE:  # mlx >= 0.29.1 computes the same thing in one kernel call
        native = get_original(mx.fast, "rope")(x, 12, **_kwargs(mx.array(offsets)))
        np.testing.assert_allclose(np.asarray(out), np.asarray(native), rtol=1e-6, atol=1e-6)


def test_wrong_number_of_offsets_is_a_clear_error() -> None:
    wrapped = _wrap(mx, get_original(mx.fast, "rope"))
    with pytest.raises(ValueError, match=r"vector with 3 elements but has shape \(2,\)"):
        wrapped(_x(), 16, **_kwargs(mx.array([1, 2])))


def _needs_shim() -> None:
    if NATIVE:
        pytest.skip(f"mlx {mx.__version__} takes per-example rope offsets natively: nothing to shim")


def test_patch_applies_and_scalar_offsets_are_untouched() -> None:
    _needs_shim()
    original = get_original(mx.fast, "rope")  # mlx's own, whether or not import applied the shim
    x = _x()
    with pytest.raises(ValueError, match=r"\[rope\] offset must be a scalar but has shape \(3\)"):
        original(x, 16, **_kwargs(mx.array([0, 1, 2])))
    mlx_portable.activate()
    try:
        assert mlx_portable.report().patch("rope_batch_offsets").status == "applied"
        assert mx.fast.rope is not original
        for scalar in (5, mx.array(5), mx.array([5])):
            assert mx.array_equal(
                mx.fast.rope(x, 16, **_kwargs(scalar)), original(x, 16, **_kwargs(5))
            ).item()
        out = mx.fast.rope(x, 16, **_kwargs(mx.array([0, 1, 2])))
        np.testing.assert_allclose(
            np.asarray(out), reference(x, 16, 10000.0, 1.0, [0, 1, 2]), rtol=1e-4, atol=1e-4
        )
    finally:
        mlx_portable.deactivate()
    assert mx.fast.rope is original


BATCH = """
import sys
import mlx_portable
mlx_portable.activate()
from mlx_lm import batch_generate, load
model, tokenizer = load(sys.argv[1])
prompts = [tokenizer.encode("hello"), tokenizer.encode("a longer prompt")]
print("texts:", batch_generate(model, tokenizer, prompts, max_tokens=4).texts)
"""


@pytest.mark.slow
def test_mlx_lm_batch_generate_works_with_the_shim_and_fails_without(
    tiny_model_dir: Path, python_env: dict[str, str]
) -> None:
    _needs_shim()
    if importlib.util.find_spec("mlx_lm") is None:
        pytest.skip("mlx-lm is not installed")
    with_shim = run_script(BATCH, python_env, str(tiny_model_dir))
    assert with_shim.returncode == 0, with_shim.stdout
    assert "texts:" in with_shim.stdout
    without = run_script(
        BATCH, {**python_env, "MLX_PORTABLE_DISABLE": "rope_batch_offsets"}, str(tiny_model_dir)
    )
    assert without.returncode != 0
    assert "ValueError: [rope] offset must be a scalar but has shape (2)." in without.stdout


def reference_any(x: Any, dims: int, traditional: bool, base: float, scale: float, offsets: Any) -> Any:
    """RoPE in float64 for any layout (B, ..., T, D), halves or interleaved pairs."""
    x = np.asarray(x, dtype=np.float64)
    t = x.shape[-2]
    freqs = base ** (-np.arange(0, dims, 2) / dims)
    out = x.copy()
    for i, offset in enumerate(offsets):
        theta = ((offset + np.arange(t)) * scale)[:, None] * freqs[None, :]
        cos, sin = np.cos(theta), np.sin(theta)
        if traditional:
            x1, x2 = x[i, ..., 0:dims:2], x[i, ..., 1:dims:2]
            out[i, ..., 0:dims:2] = x1 * cos - x2 * sin
            out[i, ..., 1:dims:2] = x1 * sin + x2 * cos
        else:
            x1, x2 = x[i, ..., : dims // 2], x[i, ..., dims // 2 : dims]
            out[i, ..., : dims // 2] = x1 * cos - x2 * sin
            out[i, ..., dims // 2 : dims] = x1 * sin + x2 * cos
    return out


@pytest.mark.parametrize("traditional", [False, True], ids=["halves", "traditional"])
@pytest.mark.parametrize("shape", [(3, 2, 4, 16), (3, 4, 16), (3, 2, 2, 1, 16)], ids=["4d", "3d", "5d"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("dims", [16, 12], ids=["all-dims", "partial"])
def test_one_pass_matches_float64_and_the_native_vector_call(
    traditional: bool, shape: Any, dtype: str, dims: int
) -> None:
    # Positions and angles in float32 as mlx >= 0.29.1 computes them; older
    # mlx's own per-sequence rope is less precise in bfloat16, so the
    # reference is float64 NumPy, and the native vector call where it exists.
    native = get_original(mx.fast, "rope")
    x32 = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    x = mx.array(x32).astype(getattr(mx, dtype))
    offsets = [5, 0, 130]
    kwargs = {"traditional": traditional, "base": 500.0, "scale": 0.5}
    out = _wrap(mx, native)(x, dims, offset=mx.array(offsets), **kwargs)
    assert out.dtype == x.dtype and out.shape == x.shape
    got = np.asarray(out.astype(mx.float32))
    want = reference_any(np.asarray(x.astype(mx.float32)), dims, traditional, 500.0, 0.5, offsets)
    tol = 1e-4 if dtype == "float32" else 3e-2
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    if NATIVE and dtype == "float32":
        vector = native(x, dims, offset=mx.array(offsets), **kwargs)
        np.testing.assert_allclose(got, np.asarray(vector), rtol=1e-5, atol=1e-5)


def test_custom_freqs_and_explicit_stream() -> None:
    native = get_original(mx.fast, "rope")
    x = _x()
    freqs = mx.array([1.0, 3.0, 10.0, 30.0, 100.0, 300.0])
    wrapped = _wrap(mx, native)
    out = wrapped(
        x, 12, traditional=False, base=None, scale=1.0, offset=mx.array([0, 7, 3]), freqs=freqs, stream=mx.cpu
    )
    each = [
        native(x[i : i + 1], 12, traditional=False, base=None, scale=1.0, offset=o, freqs=freqs)
        for i, o in enumerate([0, 7, 3])
    ]
    np.testing.assert_allclose(np.asarray(out), np.asarray(mx.concatenate(each)), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="offset must be an integer"):
        wrapped(x, 12, **_kwargs(mx.array([0.0, 1.0, 2.0])))
