"""The long-lived watchdog: a stalled evaluation ends the process, progress never does."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from mlx_portable.distributed import watchdog


@pytest.fixture
def expired(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    calls: list[tuple[str, float]] = []
    monkeypatch.setattr(watchdog, "_expire", lambda what, waited: calls.append((what, waited)))
    return calls


def test_a_stalled_flight_expires_after_its_limit_not_before(expired: list[tuple[str, float]]) -> None:
    monitor = watchdog._Monitor()
    flight = watchdog._Flight()
    flight.limit, flight.entered = 10.0, 1  # one evaluation in flight
    monitor._check(flight, now=100.0)
    monitor._check(flight, now=109.0)
    assert expired == []
    monitor._check(flight, now=110.5)
    assert expired == [("a distributed evaluation", 10.5)]


def test_progress_or_no_limit_or_nothing_in_flight_never_expires(expired: list[tuple[str, float]]) -> None:
    monitor = watchdog._Monitor()
    flight = watchdog._Flight()
    flight.limit = 1.0
    for step in range(20):  # a new evaluation finished between every two looks
        flight.entered, flight.left = step + 1, step
        monitor._check(flight, now=float(step * 5))
    flight.left = flight.entered  # idle
    monitor._check(flight, now=1000.0)
    flight.entered += 1
    flight.limit = None  # timeout=None: waits forever
    monitor._check(flight, now=1000.0)
    monitor._check(flight, now=5000.0)
    assert expired == []


def test_eval_counts_on_its_own_thread_and_sets_the_limit_once(monkeypatch: pytest.MonkeyPatch) -> None:
    mx = pytest.importorskip("mlx.core")
    x = mx.ones(3)
    watchdog.eval(x, timeout=30)
    watchdog.eval(x, timeout=30)
    mine = watchdog._monitor.flight()
    assert (mine.left, mine.limit) == (mine.entered, 30)
    seen: list[watchdog._Flight] = []
    worker = threading.Thread(
        target=lambda: (watchdog.eval(x, timeout=0), seen.append(watchdog._monitor.flight()))
    )
    worker.start()
    worker.join()
    assert seen[0] is not mine and (seen[0].entered, seen[0].left, seen[0].limit) == (1, 1, None)
    with pytest.raises(ValueError, match="not a usable timeout"):
        watchdog.eval(x, timeout=-1)


STUCK = """
    import time, types
    import mlx_portable.distributed as dist
    from mlx_portable import _mlx

    # An evaluation that never returns, as a ring transfer whose peer died
    # does on mlx < 0.32.1 (it waits in C++ with the GIL released).
    _mlx.set_override(types.SimpleNamespace(eval=lambda *a: time.sleep(60)))
    print("evaluating", flush=True)
    dist.eval(object(), timeout=0.4)
    print("returned", flush=True)
"""


@pytest.mark.slow_every_mlx
def test_a_stuck_eval_ends_the_process_with_the_watchdog_status(python_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(STUCK)],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == watchdog.WATCHDOG_EXIT_CODE, done.stderr
    assert "evaluating" in done.stdout and "returned" not in done.stdout
    assert "a distributed evaluation made no progress for 0." in done.stderr
    assert "MLX_PORTABLE_DISTRIBUTED_TIMEOUT" in done.stderr


def test_watchdog_blocks_keep_exact_deadlines() -> None:
    with watchdog.Watchdog(1000.0, what="a long block") as guard:
        assert guard._token is not None
        assert watchdog._monitor._armed[guard._token][2] == "a long block"
    assert guard._token is None
