"""``fp8_conversion``: mx.from_fp8 / mx.to_fp8 bit-identical to mlx 0.32.4 on every mlx.

The reference bytes and bit patterns come from the mlx 0.32.4 wheel
(``tests/fixtures/regenerate_quantization.py``).  Without the patch, mlx <
0.30 has no such functions and mlx 0.30-0.32.2 decode the NaN byte to 480.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.shim_helpers import mlx_version, native, run_script
from helpers.subproc import env_with_settings
from packaging.version import Version

mx = pytest.importorskip("mlx.core")
np = pytest.importorskip("numpy")

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from regenerate_quantization import fp8_inputs  # noqa: E402

REF = np.load(FIXTURES / "fp8_reference.npz")
DTYPES = ("float32", "float16", "bfloat16")


pytestmark = pytest.mark.usefixtures("activated")


def _bits(a: Any) -> Any:
    return np.array(mx.view(a, mx.uint16)) if a.dtype == mx.bfloat16 else np.array(a)


@pytest.mark.parametrize("dtype", DTYPES)
def test_from_fp8_every_byte_bit_exact(dtype: str) -> None:
    got = _bits(mx.from_fp8(mx.arange(256).astype(mx.uint8), getattr(mx, dtype)))
    assert got.tobytes() == REF[f"from_fp8_{dtype}"].tobytes()
    assert mx.from_fp8(mx.array([1], dtype=mx.uint8)).dtype == mx.bfloat16  # the default dtype


@pytest.mark.parametrize(("key", "dtype"), [("f16", "float16"), ("bf16", "bfloat16"), ("f32", "float32")])
def test_to_fp8_rounding_bit_exact(key: str, dtype: str) -> None:
    """Every float16 / bfloat16 pattern (inf, NaN, subnormals) and 40k float32 patterns."""
    bits = fp8_inputs()[f"{key}_bits"]
    got = np.array(mx.to_fp8(mx.view(mx.array(bits), getattr(mx, dtype))))
    want = REF[f"to_fp8_{key}"]
    assert got.dtype == np.uint8
    assert int((got != want).sum()) == 0


def test_bad_dtypes_raise_mlx_errors() -> None:
    with pytest.raises(ValueError, match=r"\[from_fp8\] Input must have type uint8"):
        mx.from_fp8(mx.array([1.0]))
    with pytest.raises(ValueError, match=r"\[to_fp8\] Only real floating types"):
        mx.to_fp8(mx.array([1]))


def test_without_the_patch_fp8_is_missing_or_decodes_nan_as_480() -> None:
    script = (
        "import mlx.core as mx\n"
        "print('decoded', mx.from_fp8(mx.array([127], dtype=mx.uint8), mx.float32).item())\n"
    )
    version = mlx_version()
    if version >= Version("0.32.3"):
        pytest.skip(f"mlx {version} decodes e4m3 as 0.32.4 does: nothing to patch")
    without = run_script(script, env_with_settings(MLX_PORTABLE="0"))
    if not native(mx, "from_fp8"):
        assert "AttributeError: module 'mlx.core' has no attribute 'from_fp8'" in without.stdout
    else:
        assert "decoded 480.0" in without.stdout, without.stdout[-2000:]
    with_it = run_script("import mlx_portable\n" + script, env_with_settings())
    assert "decoded nan" in with_it.stdout, with_it.stdout[-2000:]
