"""The worked example of docs/downstream.md: a downstream project tested on three mlx versions.

``tests/downstream_example`` is a throwaway package that generates with
mlx-lm (a tiny local model, nothing downloaded), in the test process and in
a spawned worker.  ``mlx-portable matrix --mlx 0.26.5,0.30.0,0.32.4 --
python -m pytest -q`` passes on all three; the same run with mlx-portable
switched off fails on 0.26.5 and 0.30.0 with the error the shims exist for,
and passes on 0.32.4, which needs none.

Slow (three environments, built once from uv's cache and then reused from
``tests/downstream_example/.mlx-portable``), so it runs in the main suite
only: inside the compatibility matrix's environments it would build and run
the very same three environments again, once per outer mlx version, and its
result does not depend on the outer mlx.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.subproc import REPO, child_env

EXAMPLE = REPO / "tests" / "downstream_example"
VERSIONS = ("0.26.5", "0.30.0", "0.32.4")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(os.environ.get("MLX_PORTABLE_MATRIX_MLX")),
        reason="builds its own environments: run once, in the main suite, not in each matrix environment",
    ),
    pytest.mark.skipif(
        shutil.which("uv") is None and not (Path(sys.executable).parent / "uv").exists(),
        reason="uv is not installed",
    ),
    pytest.mark.skipif(sys.version_info < (3, 11), reason="mlx-lm needs Python >= 3.11"),
]


def matrix(*args: str) -> subprocess.CompletedProcess[str]:
    env = child_env(base={k: v for k, v in os.environ.items() if not k.startswith("MLX_PORTABLE")})
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "mlx_portable", "matrix", "--mlx", ",".join(VERSIONS), *args],
        cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_example_passes_on_every_version_with_a_correct_table() -> None:
    done = matrix("--", "python", "-m", "pytest", "-q")
    assert done.returncode == 0, done.stdout + done.stderr[-5000:]
    table = done.stdout[done.stdout.index("mlx-portable matrix") :].splitlines()
    assert table[1].split() == ["mlx", "backend", "environment", "exit", "time", "result"]
    rows = [line.split() for line in table[2 : 2 + len(VERSIONS)]]
    assert [r[0] for r in rows] == list(VERSIONS)
    # Under the table: which mlx-portable each environment got (this checkout, editable).
    assert table[2 + len(VERSIONS)] == f"mlx-portable: editable {REPO}", table
    for row in rows:
        assert row[1] == "cpu"
        assert row[2] in ("built", "updated", "reused")
        assert row[-4:-3] == ["0"] and row[-1] == "passed", row
        assert re.fullmatch(r"\d+\.\d", row[-3]) and row[-2] == "s"
    # The command's own output is on stdout, once per version, before the table.
    assert done.stdout.count("3 passed") == len(VERSIONS)


@pytest.mark.slow
def test_without_mlx_portable_the_old_versions_fail() -> None:
    done = matrix("--no-activate", "--json", "--", "python", "-m", "pytest", "-q", "-x")
    data = json.loads(done.stdout)
    assert data["activated"] is False
    status = {r["mlx"]: (r["status"], r["exit"]) for r in data["results"]}
    assert status == {"0.26.5": ("failed", 1), "0.30.0": ("failed", 1), "0.32.4": ("passed", 0)}
    assert done.returncode == 1
    # Both old versions die of the missing API that the thread_local_stream shim adds.
    missing = "AttributeError: module 'mlx.core' has no attribute 'new_thread_local_stream'"
    assert done.stderr.count(missing) >= 2, done.stderr[-5000:]
