"""``doctor`` names the BLAS mlx's CPU backend calls and how to fix a slow one; ``check`` measures GEMM."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import mlx.core as mx
import pytest
from helpers.subproc import REPO, child_env, run_python

from mlx_portable.cli.render import Style
from mlx_portable.cpu_blas.status import INSTALL_FIX, blas_status, blas_text

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the CPU BLAS binding is Linux's"
)


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = child_env(clear=("MLX_", "NO_COLOR"), inherit_path=False)
    environment.update(env)
    return run_python(None, *args, module="mlx_portable", env=environment, cwd=REPO, timeout=300)


def _doctor(**env: str) -> dict[str, Any]:
    done = _cli("doctor", "--json", **env)
    assert done.stdout, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow_every_mlx
def test_doctor_names_the_bound_library_version_and_threads() -> None:
    blas = _doctor()["blas"]
    assert blas["state"] == "bound" and blas["library"] == "OpenBLAS (scipy-openblas32)"
    assert blas["version"] and blas["threads"] >= 1 and "cblas_sgemm" in blas["symbols"]
    assert blas["fix"] is None
    text = _cli("doctor").stdout
    line = next(line for line in text.splitlines() if line.startswith("blas"))
    assert f"OpenBLAS (scipy-openblas32) {blas['version']}, {blas['threads']} threads" in line


@pytest.mark.slow_every_mlx
def test_doctor_shows_the_reference_blas_and_the_fix_when_disabled() -> None:
    data = _doctor(MLX_PORTABLE_DISABLE="cpu_blas")
    blas = data["blas"]
    assert blas["state"] == "reference" and blas["library"].startswith("libblas")
    assert "MLX_PORTABLE_DISABLE" in blas["fix"]
    assert any("reference BLAS" in step and "MLX_PORTABLE_DISABLE" in step for step in data["next_steps"])
    text = _cli("doctor", MLX_PORTABLE_DISABLE="cpu_blas").stdout
    assert "reference (netlib) BLAS libblas" in text


def test_reference_blas_without_a_library_says_what_to_install() -> None:
    """In-process, after the slots are put back: the status of a machine with no optimized BLAS installed."""
    from mlx_portable.cpu_blas import bind, current, unbind

    was_bound = current() is not None
    unbind()
    reason = (
        "no optimized BLAS found (scipy-openblas32 is not installed): ... Fix: pip install scipy-openblas32"
    )
    try:
        status = blas_status(mx, {"state": "reference", "reason": reason}, disabled=False)
    finally:
        if was_bound:
            bind(mx)
    assert status["state"] == "reference" and status["fix"] == INSTALL_FIX
    assert "pip install scipy-openblas32" in blas_text(status, Style(False))


def test_macos_blas_line_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    status = blas_status(mx, None, disabled=False)
    assert status["state"] == "accelerate" and status["fix"] is None
    assert "Accelerate" in blas_text(status, Style(False))


@pytest.mark.slow_every_mlx
def test_check_reports_gemm_next_to_numpy() -> None:
    done = _cli("check", "--json", "-q")
    assert done.returncode == 0, done.stderr
    gemm = json.loads(done.stdout)["gemm"]
    assert gemm["shape"] == [256, 1024, 2816] and gemm["device"] == "cpu"
    assert gemm["mlx_gflops"] > 0 and gemm["numpy_gflops"] > 0
    assert gemm["ratio"] == pytest.approx(gemm["mlx_gflops"] / gemm["numpy_gflops"], rel=0.01)
    assert gemm["max_rel_error"] < 1e-5 and gemm["blas"] == "OpenBLAS (scipy-openblas32)"
    text = _cli("check", "-q").stdout
    assert "float32 GEMM 256x1024x2816 (cpu, OpenBLAS (scipy-openblas32))" in text
    assert "GFLOP/s on the same arrays" in text
