"""``server_sigterm``: ``mlx_lm.server`` stops on SIGTERM as on Ctrl-C, and exits 0."""

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
from helpers.subproc import sigint_default

from mlx_portable.patches.mlx_lm import server_sigterm as server_signals

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
        preexec_fn=sigint_default,
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
                    f"http://127.0.0.1:{port}/v1/completions",
                    data=body,
                    headers={"Content-Type": "application/json"},
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
    monkeypatch.setattr(
        sys, "orig_argv", [sys.executable, "-m", "mlx_lm.server", "--port", "1"], raising=False
    )
    assert server_signals._run_as_main()
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "-m", "mlx_lm.generate"], raising=False)
    assert not server_signals._run_as_main()
