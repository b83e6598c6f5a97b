"""``thread_free_streams`` (opt-in) and ``any_thread_stream()``: one stream, used from a worker thread."""

from __future__ import annotations

import re
import threading

import pytest
from helpers.shim_helpers import mlx_version, run_script
from packaging.version import Version

import mlx_portable

mx = pytest.importorskip("mlx.core")

BOUND_CPU = mlx_version() >= Version("0.32.0")  # CPU streams are bound to their thread from 0.32.0

# Code written for mlx < 0.31.2: a module-level stream used from a worker thread.
MODULE_LEVEL = """
import threading
import mlx_portable
import mlx.core as mx
stream = mx.new_stream(mx.cpu)
result = {}
def work():
    try:
        with mx.stream(stream):
            result["value"] = (mx.arange(3) * 2).tolist()
    except Exception as exc:
        result["error"] = str(exc)
worker = threading.Thread(target=work)
worker.start()
worker.join()
print("result:", result)
print("status:", mlx_portable.activate().patch("thread_free_streams").status)
"""


@pytest.mark.skipif(not BOUND_CPU, reason="CPU streams are thread-free before mlx 0.32.0")
@pytest.mark.slow_every_mlx
def test_opt_in_makes_a_module_level_stream_work_in_a_thread_and_fails_without(
    python_env: dict[str, str],
) -> None:
    on = run_script(MODULE_LEVEL, {**python_env, "MLX_PORTABLE_THREAD_FREE_STREAMS": "1"})
    assert on.returncode == 0, on.stdout
    assert "result: {'value': [0, 2, 4]}" in on.stdout
    assert "status: applied" in on.stdout
    off = run_script(MODULE_LEVEL, python_env)
    assert re.search(r"There is no Stream\(cpu, \d+\) in current thread\.", off.stdout), off.stdout
    assert "status: skipped" in off.stdout


def test_any_thread_stream_works_from_another_thread() -> None:
    stream = mlx_portable.any_thread_stream(mx.cpu)
    out: dict[str, object] = {}

    def work() -> None:
        try:
            with mx.stream(stream):
                out["value"] = (mx.arange(4) + 1).tolist()
        except Exception as exc:  # the failure the helper prevents
            out["error"] = str(exc)
        finally:
            if hasattr(mx, "clear_streams"):
                mx.clear_streams()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert out == {"value": [1, 2, 3, 4]}


def test_default_device_and_report_reason() -> None:
    stream = mlx_portable.any_thread_stream()
    assert stream is not None
    was_active = mlx_portable.is_active()
    entry = mlx_portable.activate().patch("thread_free_streams")
    if not was_active:
        mlx_portable.deactivate()
    assert entry.status in ("skipped", "obsolete", "applied")
    if entry.status == "skipped" and hasattr(mx, "new_thread_unsafe_stream"):
        assert "MLX_PORTABLE_THREAD_FREE_STREAMS=1" in entry.reason
