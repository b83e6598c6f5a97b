"""``clear_streams_at_exit``: programs that used mlx in threads exit 0.

The abort is a race at exit, so the scenario without the patch is repeated
until it shows (about one run in two aborts on mlx 0.32.4 with the CPU
backend; a run takes a tenth of a second).
"""

from __future__ import annotations

import signal

import pytest
from packaging.version import Version
from shim_helpers import mlx_version, run_child

from mlx_portable.patches.clear_streams_at_exit import clear_streams_at_exit
from mlx_portable.patches.registry import Registry

mx = pytest.importorskip("mlx.core")

NEEDS_CLEAR = hasattr(mx, "clear_streams")
needs_clear = pytest.mark.skipif(not NEEDS_CLEAR, reason=f"mlx {mx.__version__} has no mx.clear_streams")

# 32 threads, each with a stream of its own and a random key: their
# thread-local state is torn down by the C runtime while the main thread
# exits (the key's destructor takes the GIL of a finalizing interpreter).
# A race: on an idle 2-core machine about 1 run in 20 aborts (1 in 30 with
# 8 threads), under load most do; a run takes under 0.1 s, so the test runs
# until the first abort.
THREADS = """
import sys, threading
import mlx_portable
import mlx.core as mx
def work():
    s = mx.new_stream(mx.cpu)
    with mx.stream(s):
        a = mx.random.normal((32, 32))
        mx.eval(mx.matmul(a, a))
threads = [threading.Thread(target=work) for _ in range(32)]
for t in threads: t.start()
for t in threads: t.join()
print("applied:", mlx_portable.is_patched("clear_streams_at_exit"), flush=True)
"""

ABORTED = (134, -signal.SIGABRT)


@pytest.mark.skipif(
    mlx_version() < Version("0.32.1"),
    reason="before mlx 0.32.1 clear_streams does not reset the thread's random key, whose destructor aborts",
)
def test_threads_that_used_mlx_exit_cleanly_with_the_shim_and_abort_without(
    python_env: dict[str, str],
) -> None:
    for _ in range(60):  # without the shim, at least one of 60 aborts 19 times in 20
        done = run_child(THREADS, python_env, timeout=60)
        assert done.returncode == 0, done.stdout
        assert "applied: True" in done.stdout
    without = {**python_env, "MLX_PORTABLE_DISABLE": "clear_streams_at_exit"}
    codes = []
    for _ in range(300):
        done = run_child(THREADS, without, timeout=60)
        codes.append(done.returncode)
        if done.returncode in ABORTED:
            assert "terminate called without an active exception" in done.stdout
            break
    assert any(code in ABORTED for code in codes), f"no abort in {len(codes)} runs without the shim: {codes}"


@pytest.mark.skipif(NEEDS_CLEAR, reason="checks the report on mlx without clear_streams")
def test_obsolete_where_mlx_has_no_clear_streams() -> None:
    registry = Registry()
    registry.register(clear_streams_at_exit)
    registry.apply(backend=None, import_time=True)
    record = registry.record("clear_streams_at_exit")
    assert record.status == "obsolete"
    assert "no mx.clear_streams" in record.reason


@needs_clear
def test_worker_threads_run_and_deactivate_restores_the_bootstrap() -> None:
    import threading

    before = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]
    registry = Registry()
    registry.register(clear_streams_at_exit)
    try:
        registry.apply(backend=None, import_time=True)
        assert registry.is_patched("clear_streams_at_exit")
        assert threading.Thread._bootstrap_inner is not before  # type: ignore[attr-defined]
        results: list[list[int]] = []

        def work() -> None:
            s = mx.new_stream(mx.cpu)
            with mx.stream(s):
                results.append((mx.arange(4) * 2).tolist())

        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        assert results == [[0, 2, 4, 6]]
    finally:
        registry.revert_all()
    assert threading.Thread._bootstrap_inner is before  # type: ignore[attr-defined]
