"""``quantize_modes``: mlx >= 0.29's quantization modes on every mlx, bit-exact to mlx 0.32.4.

Packed weights, scales and dequantized values are compared bit for bit with
the mlx 0.32.4 wheel's (``tests/fixtures/quantize_modes_reference.npz``,
written by ``tests/fixtures/regenerate_quantization.py``); matrix products
agree to one rounding of the output dtype.  ``mode="affine"`` is checked to
be the old mlx's own result.  The failures without the patch are shown in a
fresh interpreter with ``MLX_PORTABLE=0``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.shim_helpers import mlx_version, run_script
from helpers.subproc import env_with_settings
from packaging.version import Version

from mlx_portable.registry.registry import get_original, registry

mx = pytest.importorskip("mlx.core")
np = pytest.importorskip("numpy")
nn = pytest.importorskip("mlx.nn")

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from regenerate_quantization import DTYPES, MODES, quant_inputs  # noqa: E402

REF = np.load(FIXTURES / "quantize_modes_reference.npz")
DATA = quant_inputs()
#: |got - want| / max|want| for a product rounded to the dtype once more than mlx 0.32.4's.
PRODUCT_TOL = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1.6e-2}
CASES = [(m, g, b, d) for (m, g, b) in MODES for d in DTYPES]


pytestmark = pytest.mark.usefixtures("activated")


def _bits(a: Any) -> Any:
    return np.array(mx.view(a, mx.uint16)) if a.dtype == mx.bfloat16 else np.array(a)


def _rel(got: Any, want: Any) -> float:
    return float(np.abs(np.array(got.astype(mx.float32)) - want).max() / np.abs(want).max())


@pytest.mark.parametrize(("mode", "group_size", "bits", "dtype"), CASES)
def test_quantize_and_dequantize_bit_exact(mode: str, group_size: int, bits: int, dtype: str) -> None:
    key = f"{mode}_{dtype}"
    w = mx.array(DATA["w"]).astype(getattr(mx, dtype))
    wq, scales = mx.quantize(w, group_size, bits, mode=mode)
    assert np.array_equal(np.array(wq), REF[f"{key}_wq"])
    assert np.array_equal(np.array(scales), REF[f"{key}_scales"])
    deq = mx.dequantize(wq, scales, None, group_size, bits, mode=mode, dtype=getattr(mx, dtype))
    assert _bits(deq).tobytes() == REF[f"{key}_deq"].tobytes()
    assert mx.quantize(w, mode=mode)[1].shape == scales.shape  # per-mode defaults


@pytest.mark.parametrize(("mode", "group_size", "bits", "dtype"), CASES)
def test_quantized_matmul_within_one_rounding(mode: str, group_size: int, bits: int, dtype: str) -> None:
    key = f"{mode}_{dtype}"
    x = mx.array(DATA["x"]).astype(getattr(mx, dtype))
    wq, scales = mx.array(REF[f"{key}_wq"]), mx.array(REF[f"{key}_scales"])
    out = mx.quantized_matmul(x, wq, scales, None, True, group_size, bits, mode=mode)
    assert out.dtype == x.dtype
    assert _rel(out, REF[f"{key}_qmm"]) <= PRODUCT_TOL[dtype]


def test_nvfp4_global_scale_bit_exact() -> None:
    gs = mx.array(3.5, dtype=mx.float32)
    wq, scales = mx.quantize(mx.array(DATA["w"]), 16, 4, mode="nvfp4", global_scale=gs)
    assert np.array_equal(np.array(wq), REF["nvfp4_global_wq"])
    assert np.array_equal(np.array(scales), REF["nvfp4_global_scales"])
    deq = mx.dequantize(wq, scales, None, 16, 4, mode="nvfp4", global_scale=gs, dtype=mx.float32)
    assert np.array(deq).tobytes() == REF["nvfp4_global_deq"].tobytes()


@pytest.mark.parametrize("mode", ["affine", "mxfp4", "mxfp8", "nvfp4"])
def test_gather_qmm_matches_dequantized_gather(mode: str) -> None:
    rng = np.random.default_rng(3)
    w = mx.array(rng.normal(size=(3, 16, 64)).astype(np.float32))
    wq, scales, *biases = mx.quantize(w, mode=mode)
    bias = biases[0] if biases else None
    x = mx.array(rng.normal(size=(4, 1, 64)).astype(np.float32))
    idx = mx.array([2, 0, 1, 2], dtype=mx.uint32)
    out = mx.gather_qmm(x, wq, scales, bias, rhs_indices=idx, transpose=True, mode=mode)
    dense = mx.dequantize(wq, scales, bias, mode=mode, dtype=mx.float32)
    want = np.stack([np.array(x[i]) @ np.array(dense[int(idx[i])]).T for i in range(4)])
    assert out.shape == (4, 1, 16)
    np.testing.assert_allclose(np.array(out), want, rtol=1e-4, atol=1e-4)


def test_affine_is_the_old_default_exactly() -> None:
    w = mx.array(DATA["w"][:, :128])
    original = get_original(mx, "quantize")
    want = original(w, 64, 4)
    got = mx.quantize(w, mode="affine")
    assert len(got) == 3
    for a, b in zip(got, want, strict=True):
        assert np.array(a).tobytes() == np.array(b).tobytes()
    x = mx.array(DATA["x"])
    native = get_original(mx, "quantized_matmul")(x, *want, True, 64, 4)
    out = mx.quantized_matmul(x, *got, mode="affine")
    if registry.is_patched("quantized_matmul_cpu"):  # CPU: dequantize-then-GEMM, another summation order
        np.testing.assert_allclose(np.array(out), np.array(native), rtol=1e-5, atol=1e-5)
    else:
        assert np.array(out).tobytes() == np.array(native).tobytes()
    with pytest.raises(ValueError, match="Biases must be provided for affine quantization"):
        mx.dequantize(want[0], want[1])
    with pytest.raises(ValueError, match="Invalid quantization mode 'int3'"):
        mx.quantize(w, mode="int3")


@pytest.mark.parametrize("mode", ["affine", "mxfp4", "mxfp8", "nvfp4"])
def test_nn_layers_take_a_mode(mode: str) -> None:
    model = nn.Sequential(nn.Linear(64, 32), nn.Embedding(12, 64), nn.Linear(64, 8, bias=False))
    dense_out = model.layers[0](mx.array(DATA["x"][:, :64]))
    nn.quantize(model, mode=mode)
    lin, emb, lin2 = model.layers
    assert isinstance(lin, nn.QuantizedLinear) and isinstance(emb, nn.QuantizedEmbedding)
    assert lin.mode == emb.mode == lin2.mode == mode
    assert f"mode={mode}" in repr(lin)
    out = lin(mx.array(DATA["x"][:, :64]))
    assert out.shape == (5, 32) and _rel(out, np.array(dense_out)) < 0.5  # a quantized approximation
    assert emb(mx.array([0, 3])).shape == (2, 64) and emb.as_linear(mx.ones((1, 64))).shape == (1, 12)
    built = nn.QuantizedLinear(64, 16, mode=mode)
    assert built.mode == mode and (built.get("biases") is None) == (mode != "affine")
    assert nn.Linear(64, 16).to_quantized(mode=mode).mode == mode
    assert nn.Embedding(4, 64).to_quantized(mode=mode).mode == mode


def test_quantized_layers_built_without_a_mode_are_affine() -> None:
    layer = nn.QuantizedLinear(64, 8)
    assert layer.mode == "affine" and (layer.group_size, layer.bits) == (64, 4)


CHILD = """
import mlx.core as mx, mlx.nn as nn
def attempt(name, fn):
    try:
        fn(); print(name, "ok")
    except Exception as e:
        print(name, type(e).__name__, str(e).splitlines()[0])
w = mx.ones((4, 64))
attempt("quantize", lambda: mx.quantize(w, 64, 4, mode="affine"))
attempt("mode", lambda: nn.QuantizedLinear(64, 8).mode)
attempt("nn_nvfp4", lambda: nn.quantize(nn.Sequential(nn.Linear(64, 8)), mode="nvfp4"))
attempt("layer_mxfp8", lambda: nn.QuantizedLinear(64, 8, mode="mxfp8"))
wq, s, b = mx.quantize(mx.ones((2, 8, 64)))
idx = mx.array([1])
x1 = mx.ones((1, 64))
attempt("gather_global", lambda: mx.gather_qmm(x1, wq, s, b, rhs_indices=idx, global_scale=None))
"""


@pytest.mark.slow_every_mlx
def test_what_fails_without_the_patch() -> None:
    version = mlx_version()
    with_it = run_script("import mlx_portable\n" + CHILD, env_with_settings())
    for name in ("quantize", "mode", "nn_nvfp4", "layer_mxfp8", "gather_global"):
        assert f"{name} ok" in with_it.stdout, with_it.stdout[-3000:]
    if version >= Version("0.32.3"):
        pytest.skip(f"mlx {version} has every mode, per-mode defaults, global_scale and the 0.32.4 encoder")
    without = run_script(CHILD, env_with_settings(MLX_PORTABLE="0")).stdout
    # mlx-lm 0.32's QuantizedSwitchLinear passes global_scale= to gather_qmm (mlx 0.32.3).
    assert "gather_global TypeError" in without, without
    if version < Version("0.29.0"):
        assert "quantize TypeError" in without and "mode AttributeError" in without, without
    elif version < Version("0.30.3"):
        assert (
            "nn_nvfp4 ValueError [quantize] nvfp4 quantization requires group size 16 but got 64." in without
        )
        assert "layer_mxfp8 ValueError" in without, without
    elif version < Version("0.32.2"):  # 0.30.3-0.32.1: the mx encoder rounds the E8M0 exponent to nearest
        script = (
            "import sys, numpy as np, mlx.core as mx\n"
            f"sys.path.insert(0, {str(FIXTURES)!r})\n"
            "from regenerate_quantization import quant_inputs\n"
            f"ref = np.load({str(FIXTURES / 'quantize_modes_reference.npz')!r})\n"
            "s = mx.quantize(mx.array(quant_inputs()['w']), 32, 4, mode='mxfp4')[1]\n"
            "print('scales equal', np.array_equal(np.array(s), ref['mxfp4_float32_scales']))\n"
        )
        assert "scales equal False" in run_script(script, env_with_settings(MLX_PORTABLE="0")).stdout
        assert "scales equal True" in run_script("import mlx_portable\n" + script, env_with_settings()).stdout


PARTS = """
import mlx.nn as nn
import mlx_portable
import mlx.core as mx
from mlx_portable.registry.registry import registry
for name in ("quantize_modes", "quantize_modes_nn"):
    print(name, registry.record(name).status)
try:
    mx.quantize(mx.ones((4, 64)), 64, 4, mode="affine"); print("mx ok")
except TypeError as e:
    print("mx TypeError")
try:
    print("nn", nn.QuantizedLinear(64, 8, mode="mxfp8").mode)
except (TypeError, AttributeError, ValueError) as e:
    print("nn", type(e).__name__)
mlx_portable.deactivate()
print("reverted", not hasattr(nn.QuantizedLinear(64, 8), "mode"))
"""


@pytest.mark.parametrize("disable", ["", "quantize_modes", "quantize_modes_nn"])
def test_the_mlx_nn_half_is_its_own_patch_turned_off_with_quantize_modes(disable: str) -> None:
    """``mlx.nn`` imported first: ``quantize_modes_nn`` applies at once, after ``quantize_modes``."""
    version = mlx_version()
    if version >= Version("0.30.3"):
        pytest.skip(f"mlx {version}'s mlx.nn layers take mode= with per-mode defaults")
    out = run_script(PARTS, env_with_settings(MLX_PORTABLE_DISABLE=disable)).stdout
    parent = "skipped" if disable == "quantize_modes" else "applied"
    part = "applied" if disable == "" else "skipped"
    assert f"quantize_modes {parent}" in out and f"quantize_modes_nn {part}" in out, out
    if version < Version("0.29.0"):
        assert ("mx ok" in out) == (parent == "applied"), out
    if part == "applied":
        assert "nn mxfp8" in out, out
    else:  # the old layers: no mode= (< 0.29) or group size 64 for mxfp8 (0.29-0.30.2)
        assert "nn mxfp8" not in out, out
    if version < Version("0.29.0"):
        assert "reverted True" in out, out
