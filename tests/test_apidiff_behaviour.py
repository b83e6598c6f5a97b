"""The behaviour diff: this mlx computes what mlx 0.32.4 computes, with mlx-portable active."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest
from helpers.subproc import env_with_settings
from packaging.version import Version

from tools.apidiff.behaviour import (
    CASES,
    DTYPES,
    REFERENCE_PATH,
    all_keys,
    compare,
    load_findings,
    load_reference,
)
from tools.apidiff.edges import EDGE_CASES, EDGE_DTYPES
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


#: Edge probes mlx 0.32.4 rejects (recorded as its error: an older mlx computing them is no finding).
REJECTED_BY_0_32_4 = {
    **{f"edge_dtype_matmul/{d}": "[matmul] Only inexact types" for d in ("int32", "int64", "uint8", "bool_")},
    "edge_arg_arange_array_bounds/float32": "arange(): incompatible function arguments",
}


def test_reference_holds_every_case_of_mlx_0_32_4() -> None:
    reference = load_reference(REFERENCE_PATH)
    assert set(reference) == set(all_keys())
    assert {f"{c}/{d}" for c in CASES if not c.startswith("edge_") for d in DTYPES} <= set(reference)
    errors = {k: v for k, v in reference.items() if isinstance(v, str)}
    assert set(errors) == set(REJECTED_BY_0_32_4), f"mlx 0.32.4 raised in the reference: {errors}"
    for key, text in REJECTED_BY_0_32_4.items():
        assert text in errors[key]


def test_sweep_covers_the_edge_classes() -> None:
    classes = {name.split("_")[1] for name in EDGE_CASES}
    assert classes == {"shape", "dtype", "view", "arg", "f64"}
    dtypes = {k.split("/")[1] for k in all_keys() if k.startswith("edge_dtype_")}
    assert dtypes == set(EDGE_DTYPES)
    views = {name for name in EDGE_CASES if name.startswith("edge_view_")}
    for view in ("transposed", "expanded_transposed", "strided", "broadcast"):
        for index in ("get_int", "get_slice", "get_array", "set_mask", "set_array"):
            assert f"edge_view_{view}_{index}" in views


@pytest.mark.slow_every_mlx
def test_a_probe_that_kills_the_process_is_a_result_and_the_sweep_goes_on() -> None:
    # On mlx < 0.32.4 without mlx-portable, cumsum of an empty array dies of SIGFPE in the child.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, json\n"
            "from tools.apidiff.behaviour import run_isolated\n"
            "res = run_isolated(['edge_shape_cumsum/float32', 'edge_dtype_abs/float32'])\n"
            "print(json.dumps({k: isinstance(v, str) and v[:40] for k, v in res.items()}))",
        ],
        env=env_with_settings(MLX_PORTABLE="0"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    res = json.loads(done.stdout.strip().splitlines()[-1])
    assert res["edge_dtype_abs/float32"] is False  # computed after the crash
    if Version(version("mlx")) < Version("0.32.4"):
        assert res["edge_shape_cumsum/float32"].startswith("process aborted (exit -8)")
    else:
        assert res["edge_shape_cumsum/float32"] is False


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


@pytest.mark.slow  # the sweep: 365 probes in child interpreters, 3-70 s (crash restarts cost most)
def test_sweep_matches_the_record_for_this_mlx() -> None:
    mlx = version("mlx")
    record = load_findings()
    if mlx not in record:
        pytest.skip(f"mlx {mlx} not in behaviour_findings.json: run the sweep with --record")
    assert _sweep() == record[mlx]["activated"]
    if record[mlx]["plain"]:
        # The findings mlx-portable removes are real here: without it they come back.
        assert _sweep(MLX_PORTABLE="0") == record[mlx]["plain"]
