"""mlx-lm 0.32.2's model families, plain and quantized, generate as on mlx 0.32.4 (issue 10, item 4).

Every family in ``mlx_lm.models`` is built with tiny random weights from a
config generated from its ``ModelArgs`` (``family_configs.py``), optionally
quantized (affine 4-bit, mxfp4, mxfp8, nvfp4), and run through greedy
``generate_step`` and ``batch_generate`` with prompts of different lengths.
Tokens must equal mlx 0.32.4's (``expected_families.json``, written by
``regenerate_families.py``), or be near-ties within ``harness.TOLERANCE``
(teacher-forced on 0.32.4's tokens).  A case that fails on mlx 0.32.4
itself is recorded there and skipped here with its error.

By default a small fast subset runs; the full sweep (all families x all
variants, several minutes per mlx) runs with ``pytest -m families
tests/families`` or ``nox -s families``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
EXPECTED = json.loads((HERE / "expected_families.json").read_text(encoding="utf-8"))

#: The families, their configs and the harness are mlx-lm 0.32.2's (its model classes and
#: BatchGenerator); the matrix's older-mlx-lm environment checks mlx-lm 0.31.2 elsewhere.
FAMILIES_MLX_LM = "0.32.2"
import mlx_portable  # noqa: E402, F401  (its import-time shims: mlx-lm 0.32.2 imports on older mlx)

_mlx_lm = pytest.importorskip("mlx_lm")
if _mlx_lm.__version__ != FAMILIES_MLX_LM:
    pytest.skip(
        f"the family sweep is mlx-lm {FAMILIES_MLX_LM}'s; this environment has mlx-lm {_mlx_lm.__version__}",
        allow_module_level=True,
    )

#: The default subset: a dense model, two MoE families (gather_qmm), a state-space model, each quant mode.
FAST = [
    ("llama", "plain"),
    ("llama", "affine"),
    ("qwen3_moe", "mxfp4"),
    ("gpt_oss", "nvfp4"),
    ("mamba2", "mxfp8"),
]
ALL = [(family, variant) for family, variants in sorted(EXPECTED["cases"].items()) for variant in variants]


def _check(family: str, variant: str) -> None:
    import harness

    want = EXPECTED["cases"][family][variant]
    if "error" in want:
        pytest.skip(f"{family}/{variant} fails on mlx 0.32.4 itself: {want['error']}")
    status, why = harness.compare(family, variant, want, harness.run_case(family, variant))
    assert status in ("exact", "tolerance"), f"{family}/{variant}: {why}"


@pytest.mark.parametrize(("family", "variant"), FAST)
def test_family_fast_subset(family: str, variant: str, mlx_lm_activated: ModuleType) -> None:
    _check(family, variant)


@pytest.mark.families
@pytest.mark.slow
@pytest.mark.parametrize(("family", "variant"), [c for c in ALL if c not in FAST])
def test_family_full_sweep(family: str, variant: str, mlx_lm_activated: ModuleType) -> None:
    # Deselected unless -m families (tests/conftest.py).
    _check(family, variant)
