"""The behaviour diff: this mlx computes what mlx 0.32.4 computes, with mlx-portable active."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest
from helpers.subproc import env_with_settings

from tools.apidiff.behaviour import (
    CASES,
    DTYPES,
    REFERENCE_PATH,
    compare,
    load_findings,
    load_reference,
)
from tools.apidiff.statuses import UNCLASSIFIED, finding_disposition


def _sweep(**env: str) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "tools.apidiff", "behaviour"],
        env=env_with_settings(**env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines and lines[-1].endswith("findings"), done.stdout
    return dict(line.split(": ", 1) for line in lines[:-1])


def test_reference_holds_every_case_of_mlx_0_32_4() -> None:
    reference = load_reference(REFERENCE_PATH)
    assert set(reference) == {f"{c}/{d}" for c in CASES for d in DTYPES}
    errors = {k: v for k, v in reference.items() if isinstance(v, str)}
    assert not errors, f"mlx 0.32.4 raised in the reference: {errors}"


def test_every_recorded_finding_has_a_disposition() -> None:
    keys = {k for modes in load_findings().values() for found in modes.values() for k in found}
    assert not [k for k in keys if finding_disposition(k) == UNCLASSIFIED]


def test_compare_flags_errors_nan_and_tolerance() -> None:
    import numpy as np

    ref = {"a/float32": np.array([1.0, 2.0]), "b/float16": np.array([1.0]), "c/float32": np.array([0.0])}
    got = {"a/float32": "ValueError: x", "b/float16": np.array([1.5]), "c/float32": np.array([np.nan])}
    found = compare(got, ref)
    assert set(found) == {"a/float32", "b/float16", "c/float32"}
    assert found["c/float32"].startswith("NaN")
    assert compare(ref, ref) == {}


@pytest.mark.slow  # the sweep: 126 op runs in child interpreters, about 8 s
def test_sweep_matches_the_record_for_this_mlx() -> None:
    mlx = version("mlx")
    record = load_findings()
    if mlx not in record:
        pytest.skip(f"mlx {mlx} not in behaviour_findings.json: run the sweep with --record")
    assert _sweep() == record[mlx]["activated"]
    if record[mlx]["plain"]:
        # The findings mlx-portable removes are real here: without it they come back.
        assert _sweep(MLX_PORTABLE="0") == record[mlx]["plain"]
