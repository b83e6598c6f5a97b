"""``clear_streams_at_exit`` and ``server_sigterm``: programs that used mlx in threads exit 0.

The abort is a race at exit, so the scenario without the patch is repeated
until it shows (about one run in two aborts on mlx 0.32.4 with the CPU
backend; a run takes a tenth of a second).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from packaging.version import Version
from shim_helpers import mlx_version, run_child

from mlx_portable.patches.clear_streams_at_exit import clear_streams_at_exit
from mlx_portable.patches.mlx_lm import server_sigterm as server_signals
from mlx_portable.patches.registry import Registry

mx = pytest.importorskip("mlx.core")

NEEDS_CLEAR = hasattr(mx, "clear_streams")
needs_clear = pytest.mark.skipif(not NEEDS_CLEAR, reason=f"mlx {mx.__version__} has no mx.clear_streams")

# Eight threads, each with a stream of its own and a random key: their
# thread-local state is torn down by the C runtime while the main thread
# exits (the key's destructor takes the GIL of a finalizing interpreter).
THREADS = """
import sys, threading
import mlx_portable
import mlx.core as mx
def work():
    s = mx.new_stream(mx.cpu)
    with mx.stream(s):
        a = mx.random.normal((32, 32))
        mx.eval(mx.matmul(a, a))
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print("applied:", mlx_portable.is_patched("clear_streams_at_exit"), flush=True)
"""

ABORTED = (134, -signal.SIGABRT)


@pytest.mark.skipif(
    mlx_version() < Version("0.32.1"),
    reason="before mlx 0.32.1 clear_streams does not reset the thread's random key, whose destructor aborts",
)
def test_threads_that_used_mlx_exit_cleanly_with_the_shim_and_abort_without(python_env: dict[str, str]) -> None:
    for _ in range(12):
        done = run_child(THREADS, python_env, timeout=60)
        assert done.returncode == 0, done.stdout
        assert "applied: True" in done.stdout
    without = {**python_env, "MLX_PORTABLE_DISABLE": "clear_streams_at_exit"}
    codes = []
    for _ in range(40):
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


SERVER_PORT_WAIT = 240.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_and_stop(model: Path, env: dict[str, str], sig: int) -> subprocess.CompletedProcess[str]:
    port = _free_port()
    # As the ``mlx_lm.server`` console script runs it, with a bare ``import mlx_portable`` first.
    launch = "import sys, mlx_portable; from mlx_lm.server import main; sys.argv[0] = 'mlx_lm.server'; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", launch, "--model", str(model), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    body = json.dumps({"prompt": "hi", "max_tokens": 4}).encode()
    deadline = time.monotonic() + SERVER_PORT_WAIT
    try:
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/v1/completions", data=body, headers={"Content-Type": "application/json"}
                )
                urllib.request.urlopen(request, timeout=60).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", err)


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="signals")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_mlx_lm_server_stops_with_exit_0(tiny_model_dir: Path, python_env: dict[str, str], sig: int) -> None:
    """One run each; ``benchmarks/clean_exit.py`` repeats it 30 times with and without the shims."""
    done = _serve_and_stop(tiny_model_dir, python_env, sig)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_server_loop_handles_sigterm_as_interrupt_and_restores_the_handler() -> None:
    seen: list[object] = []

    def loop() -> str:
        seen.append(signal.getsignal(signal.SIGTERM))
        return "served"

    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        assert server_signals._wrap(loop)() == "served"
        assert seen == [signal.default_int_handler]
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        # An application's own handler is left alone.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server_signals._wrap(loop)()
        assert seen[-1] is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before)


def test_python_m_mlx_lm_server_is_recognised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "-m", "mlx_lm.server", "--port", "1"], raising=False)
    assert server_signals._run_as_main()
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "-m", "mlx_lm.generate"], raising=False)
    assert not server_signals._run_as_main()
