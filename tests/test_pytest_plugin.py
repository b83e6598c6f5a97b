"""The pytest plugin: off unless asked; ``--mlx-portable`` activates this process and every child.

Each case runs pytest in a fresh interpreter on a small test file written
here.  The plugin is found through its ``pytest11`` entry point where
mlx-portable is installed, else loaded with ``-p``.  Children come up
activated through the ``.pth`` hook, which only an installed mlx-portable has:
the child cases skip where it is missing (a source tree on ``PYTHONPATH``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from helpers.subproc import child_env

import pytest_mlx_portable

CHILDREN_TEST = r"""
import json, multiprocessing, subprocess, sys

# A child that imports mlx first (as real code does), then reports whether mlx-portable is active.
PROBE = "import mlx.core, sys; m = sys.modules.get('mlx_portable'); print(bool(m and m.is_active()))"


def _probe(queue):
    import mlx.core, sys
    m = sys.modules.get("mlx_portable")
    queue.put(bool(m and m.is_active()))


def test_children(mlx_backend, mlx_version, mlx_child_env):
    parent = sys.modules.get("mlx_portable")
    seen = {"parent": bool(parent and parent.is_active()), "backend": mlx_backend}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    seen["subprocess"] = out.stdout.strip() == "True"
    # A child given an explicit environment: mlx_child_env keeps the switch in it.
    env = dict(mlx_child_env, EXTRA="1")
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    seen["child_env"] = out.stdout.strip() == "True"
    for method in ("spawn", "forkserver"):
        ctx = multiprocessing.get_context(method)
        queue = ctx.Queue()
        proc = ctx.Process(target=_probe, args=(queue,))
        proc.start()
        seen[method] = queue.get(timeout=120)
        proc.join()
    print("SEEN=" + json.dumps(seen))


def test_report(mlx_portable_report):
    print("REPORT=" + str(mlx_portable_report.backend))
"""

MARKER_TEST = """
import pytest

@pytest.mark.mlx(">=0.26")
def test_in_range(mlx_version):
    assert mlx_version.major == 0

@pytest.mark.mlx(">=99")
def test_future():
    raise AssertionError("must be skipped")

@pytest.mark.mlx(backend=("metal", "cuda"), reason="GPU kernels")
def test_gpu_only():
    raise AssertionError("must be skipped on the CPU")

@pytest.mark.mlx("<99", backend="metal", xfail=True, strict=True)
def test_expected_to_fail_off_metal():
    assert False

def test_plugin_did_not_import_mlx_portable():
    import sys
    print("IMPORTED=" + str("mlx_portable" in sys.modules))
"""


def _plugin_args() -> list[str]:
    """``-p pytest_mlx_portable`` unless the entry point registers it already."""
    registered = any(ep.value == "pytest_mlx_portable" for ep in entry_points(group="pytest11"))
    return [] if registered else ["-p", "pytest_mlx_portable"]


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = child_env(base={k: v for k, v in os.environ.items() if not k.startswith("MLX_PORTABLE")})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "-rs", *_plugin_args(), *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _seen(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if "SEEN=" in ln)
    return dict(json.loads(line.split("SEEN=", 1)[1]))


needs_pth = pytest.mark.skipif(
    pytest_mlx_portable.pth_installed() is None,
    reason=f"{pytest_mlx_portable.PTH_FILE} is not installed here (mlx-portable only on PYTHONPATH)",
)


@pytest.mark.slow  # four interpreters that import mlx; the proof that children are activated
@needs_pth
def test_children_start_activated_under_mlx_portable(tmp_path: Path) -> None:
    (tmp_path / "test_children.py").write_text(CHILDREN_TEST)
    done = run_pytest(tmp_path, "--mlx-portable")
    seen = _seen(done)
    assert seen == {
        "parent": True,
        "backend": "cpu",
        "subprocess": True,
        "child_env": True,
        "spawn": True,
        "forkserver": True,
    }
    assert "REPORT=cpu" in done.stdout
    assert "mlx-portable 0.1.0: active (--mlx-portable), backend cpu" in done.stdout
    assert "Python child processes start activated (MLX_PORTABLE_AUTOACTIVATE=1)" in done.stdout


@pytest.mark.slow  # the negative control of the children test
def test_off_by_default_nothing_is_activated(tmp_path: Path) -> None:
    (tmp_path / "test_children.py").write_text(CHILDREN_TEST)
    done = run_pytest(tmp_path)
    seen = _seen(done)
    assert not any(seen[k] for k in ("parent", "subprocess", "child_env", "spawn", "forkserver"))
    assert "mlx-portable is not active (run pytest --mlx-portable)" in done.stdout  # the report fixture
    assert "mlx-portable 0.1.0: active" not in done.stdout
    assert "MLX_PORTABLE_AUTOACTIVATE" not in done.stdout


@pytest.mark.slow  # two pytest runs with children; does not depend on the mlx version:
@pytest.mark.skipif(bool(os.environ.get("MLX_PORTABLE_MATRIX_MLX")), reason="run in the main suite only")
@needs_pth
def test_ini_option_turns_it_on_and_the_flag_off(tmp_path: Path) -> None:
    (tmp_path / "test_children.py").write_text(CHILDREN_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmlx_portable = true\n")
    done = run_pytest(tmp_path)
    assert _seen(done)["spawn"] is True
    # The header names what turned it on: the ini setting, not an option nobody gave.
    assert "active (mlx_portable = true in pytest.ini)" in done.stdout
    assert "(--mlx-portable)" not in done.stdout
    assert _seen(run_pytest(tmp_path, "--no-mlx-portable"))["spawn"] is False


@pytest.mark.slow
def test_marker_skips_and_xfails_and_the_plugin_stays_out_of_the_way(tmp_path: Path) -> None:
    (tmp_path / "test_marker.py").write_text(MARKER_TEST)
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 passed, 2 skipped, 1 xfailed" in done.stdout
    assert "needs mlx >=99, this is mlx 0." in done.stdout
    assert "GPU kernels: needs the metal or cuda backend, this is cpu" in done.stdout
    # Loaded but off: mlx-portable was never imported, so mlx is untouched.
    assert "IMPORTED=False" in done.stdout


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("newest",), {}, "@pytest.mark.mlx('newest'): not a version specifier"),
        ((), {"backend": "gpu"}, "unknown backend gpu; use metal, cuda, cpu"),
        ((">=0.30",), {"cpu": True}, "takes one version specifier and backend=, xfail=, reason=, strict="),
        ((">=0.30", "cpu"), {}, "takes one version specifier"),
    ],
)
def test_wrong_markers_are_usage_errors(
    args: tuple[str, ...], kwargs: dict[str, object], message: str
) -> None:
    mark = pytest.mark.mlx(*args, **kwargs).mark
    with pytest.raises(pytest.UsageError, match=re.escape(message)):
        pytest_mlx_portable._mismatch(mark, "test_x.py::test_x", {})


@pytest.mark.slow
def test_a_wrong_marker_stops_the_run_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "test_bad.py").write_text(
        'import pytest\n\n@pytest.mark.mlx(backend="gpu")\ndef test_x():\n    pass\n'
    )
    done = run_pytest(tmp_path)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "test_bad.py::test_x: @pytest.mark.mlx(backend='gpu'): unknown backend gpu" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_failing_activation_stops_the_run_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *_plugin_args(), "--mlx-portable"],
        cwd=tmp_path,
        env=child_env(MLX_PORTABLE_BACKEND="quantum"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 4, done.stdout + done.stderr
    assert "--mlx-portable: activate() failed: ValueError: MLX_PORTABLE_BACKEND" in done.stderr


def test_marker_backends_are_mlx_portables_backends() -> None:
    from mlx_portable.settings import BACKEND_NAMES

    assert set(pytest_mlx_portable.BACKENDS) == set(BACKEND_NAMES)
