"""``clear_streams_at_exit``: programs that used mlx in threads exit 0.

The abort is a race at exit, so the scenario without the patch is repeated
until it shows (rates measured below, by THREADS; a run takes a tenth of a
second).
"""

from __future__ import annotations

import signal

import pytest
from helpers.shim_helpers import mlx_version, run_script
from packaging.version import Version

from mlx_portable.patches import clear_streams_at_exit as exit_patch
from mlx_portable.registry.registry import Registry

mx = pytest.importorskip("mlx.core")

NEEDS_CLEAR = hasattr(mx, "clear_streams")
_TRACKS = exit_patch._TRACK
needs_clear = pytest.mark.skipif(not NEEDS_CLEAR, reason=f"mlx {mx.__version__} has no mx.clear_streams")

# 32 threads, each with a stream of its own and a random key: their
# thread-local state is torn down by the C runtime while the main thread
# exits (the key's destructor takes the GIL of a finalizing interpreter).
# A race: on an idle 2-core machine about 1 run in 20 aborts (1 in 30 with
# 8 threads), under load most do; a run takes under 0.1 s, so the test runs
# until the first abort.
#
# Before mlx 0.32.0 the CPU encoders of all threads sit in one unguarded table
# (ml-explore/mlx#3537): a stream's first evaluation from several threads at
# once can crash (~1 run in 300 on mlx 0.31.2).  There the streams get their
# first evaluation here, one at a time; from 0.32.0 each thread makes its own.
THREADS = """
import sys, threading
import mlx_portable
import mlx.core as mx
from packaging.version import Version
streams = []
if Version(mx.__version__) < Version("0.32.0"):
    for _ in range(32):
        streams.append(mx.new_stream(mx.cpu))
        mx.eval(mx.zeros((1,), stream=streams[-1]))
def work(i):
    s = streams[i] if streams else mx.new_stream(mx.cpu)
    with mx.stream(s):
        a = mx.random.normal((32, 32))
        mx.eval(mx.matmul(a, a))
threads = [threading.Thread(target=work, args=(i,)) for i in range(32)]
for t in threads: t.start()
for t in threads: t.join()
print("applied:", mlx_portable.is_patched("clear_streams_at_exit"), flush=True)
"""

ABORTED = (134, -signal.SIGABRT)


def _run_until_abort(script: str, env: dict[str, str], runs: int = 300) -> list[int]:
    """Exit codes of up to ``runs`` runs of ``script``, stopping at the first abort."""
    codes = []
    for _ in range(runs):
        done = run_script(script, env, timeout=60)
        codes.append(done.returncode)
        if done.returncode in ABORTED:
            # libstdc++'s words: "recursively" when a second thread's destructor terminates
            # while the first is already aborting (seen once on mlx 0.32.0).
            assert any(
                f"terminate called {how}" in done.stdout
                for how in ("without an active exception", "recursively")
            ), done.stdout
            break
    return codes


@pytest.mark.slow
@needs_clear
def test_threads_that_used_mlx_exit_cleanly_with_the_shim_and_abort_without(
    python_env: dict[str, str],
) -> None:
    # Before mlx 0.32.1 the random keys' destructors still take the GIL after
    # clear_streams: clean only because the exit handler waits for them.
    for _ in range(60):  # without the shim, at least one of 60 aborts 19 times in 20
        done = run_script(THREADS, python_env, timeout=60)
        assert done.returncode == 0, done.stdout
        assert "applied: True" in done.stdout
    without = {**python_env, "MLX_PORTABLE_DISABLE": "clear_streams_at_exit"}
    codes = _run_until_abort(THREADS, without)
    assert codes[-1] in ABORTED, f"no abort in {len(codes)} runs without the shim: {codes}"


@needs_clear
@pytest.mark.skipif(not _TRACKS, reason="ended threads are waited for on Linux only")
@pytest.mark.skipif(
    mlx_version() >= Version("0.32.1"),
    reason="from mlx 0.32.1 clear_streams empties the random key: clearing alone is enough",
)
def test_before_mlx_0_32_1_clearing_alone_aborts_and_the_exit_wait_is_what_helps(
    python_env: dict[str, str],
) -> None:
    no_wait = THREADS.replace(
        "import mlx_portable\n",
        "import mlx_portable\nimport mlx_portable.patches.clear_streams_at_exit as p; p.EXIT_WAIT = 0\n",
    )
    assert no_wait != THREADS
    codes = _run_until_abort(no_wait, python_env)
    assert codes[-1] in ABORTED, f"no abort in {len(codes)} runs without the wait: {codes}"


@pytest.mark.skipif(NEEDS_CLEAR, reason="checks the report on mlx without clear_streams")
def test_obsolete_where_mlx_has_no_clear_streams() -> None:
    registry = Registry()
    for patch in exit_patch.PATCHES:
        registry.register(patch)
    registry.apply(backend=None, import_time=True)
    record = registry.record("clear_streams_at_exit")
    assert record.status == "obsolete"
    assert "no mx.clear_streams" in record.reason
    part = registry.record("clear_streams_at_thread_end")
    assert part.status == "obsolete" and "no mx.clear_streams" in part.reason, part.reason


@needs_clear
def test_worker_threads_run_and_deactivate_restores_the_bootstrap() -> None:
    import threading

    before = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]
    registry = Registry()
    for patch in exit_patch.PATCHES:
        registry.register(patch)
    try:
        registry.apply(backend=None, import_time=True)
        assert registry.is_patched("clear_streams_at_exit")
        assert registry.is_patched("clear_streams_at_thread_end")
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


@needs_clear
@pytest.mark.skipif(not _TRACKS, reason="ended threads are waited for on Linux only")
def test_exit_handler_waits_for_ended_threads_os_threads() -> None:
    import threading

    registry = Registry()
    for patch in exit_patch.PATCHES:
        registry.register(patch)
    try:
        registry.apply(backend=None, import_time=True)
        exit_patch._ended.clear()
        # Each draws a random key (its destructor takes the GIL before mlx 0.32.1);
        # nothing is evaluated: threads evaluating at once can crash mlx < 0.32.0.
        workers = [threading.Thread(target=lambda: mx.random.normal((4,))) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        # join() returned: the Python threads are gone, their OS threads may not be yet.
        assert {worker.native_id for worker in workers} <= exit_patch._ended
        assert exit_patch.wait_for_ended_threads(timeout=10) == 0
        assert not exit_patch._ended
        ids = [worker.native_id for worker in workers if worker.native_id is not None]
        assert ids and not any(exit_patch._os_thread_alive(tid) for tid in ids)
    finally:
        registry.revert_all()


@pytest.mark.skipif(not _TRACKS, reason="ended threads are waited for on Linux only")
@pytest.mark.slow_every_mlx
def test_the_wait_skips_running_threads_and_gives_up_after_the_timeout() -> None:
    import _thread
    import threading
    import time

    stop = threading.Event()
    runner = threading.Thread(target=stop.wait)
    runner.start()
    # An OS thread that threading does not know, and that does not end while we wait.
    hidden_id: list[int] = []
    hidden_started = threading.Event()

    def hidden() -> None:
        hidden_id.append(threading.get_native_id())
        hidden_started.set()
        stop.wait()

    _thread.start_new_thread(hidden, ())
    try:
        assert hidden_started.wait(10)
        assert runner.native_id is not None
        # A running threading.Thread is never waited for (its id can be a reused one).
        exit_patch._ended.add(runner.native_id)
        started = time.monotonic()
        assert exit_patch.wait_for_ended_threads(timeout=5) == 0
        assert time.monotonic() - started < 4
        # An OS thread still there after the timeout is given up on and counted.
        exit_patch._ended.add(hidden_id[0])
        started = time.monotonic()
        assert exit_patch.wait_for_ended_threads(timeout=0.2) == 1
        assert time.monotonic() - started >= 0.2
        assert not exit_patch._ended
    finally:
        stop.set()
        runner.join()
