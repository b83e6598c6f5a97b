"""How often programs that use mlx in threads exit 0, with and without the clean-exit patches.

Four programs, each run ``--runs`` times (default 30), alternating with the
patches on (a bare ``import mlx_portable``) and off
(``MLX_PORTABLE_DISABLE=clear_streams_at_exit,server_sigterm``):

* ``worker``: mlx-lm loads the tiny model and generates in a ``threading.Thread``;
* ``daemon``: daemon threads are still evaluating (matrix products in a loop)
  when the main thread returns; mlx only, no model;
* ``server SIGINT`` / ``server SIGTERM``: ``mlx_lm.server`` answers one
  completion, then gets the signal.

Exit codes are counted (134 / -6 is the abort "terminate called without an
active exception"; -15 is killed by SIGTERM).  A tiny model is written to a
temporary folder first; nothing is downloaded.

    python benchmarks/clean_exit.py [--runs 30] [--only worker|daemon|sigint|sigterm]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OFF = "clear_streams_at_exit,server_sigterm"

WORKER = """
import sys, threading
import mlx_portable
from mlx_lm import generate, load
model, tokenizer = load(sys.argv[1])
out = {}
def work():
    out["text"] = generate(model, tokenizer, prompt="hello", max_tokens=8, verbose=False)
worker = threading.Thread(target=work)
worker.start()
worker.join()
"""

DAEMON = """
import threading, time
import mlx_portable
import mlx.core as mx
started = threading.Barrier(3)
def work():
    a = mx.random.normal((256, 256))
    started.wait()
    while True:
        a = mx.tanh(a @ a)
        mx.eval(a)
for _ in range(2):
    threading.Thread(target=work, daemon=True).start()
started.wait()
time.sleep(0.05)
"""

SERVER = "import sys, mlx_portable; from mlx_lm.server import main; sys.argv[0] = 'mlx_lm.server'; main()"


def env(patched: bool) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("MLX_PORTABLE")}
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    if not patched:
        out["MLX_PORTABLE_DISABLE"] = OFF
    return out


def run_worker(model: Path, patched: bool) -> int:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(model)], env=env(patched), capture_output=True, timeout=300
    )
    return done.returncode


def run_daemon(patched: bool) -> int:
    done = subprocess.run([sys.executable, "-c", DAEMON], env=env(patched), capture_output=True, timeout=300)
    return done.returncode


def run_server(model: Path, patched: bool, sig: int) -> int | str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, "--model", str(model), "--port", str(port)],
        env=env(patched),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    body = json.dumps({"prompt": "hi", "max_tokens": 4}).encode()
    deadline = time.monotonic() + 240
    try:
        while True:
            try:
                url = f"http://127.0.0.1:{port}/v1/completions"
                request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
                urllib.request.urlopen(request, timeout=60).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    return f"no answer (exit {proc.poll()})"
                time.sleep(0.1)
        proc.send_signal(sig)
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        return "hung"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--only", choices=["worker", "daemon", "sigint", "sigterm"])
    args = parser.parse_args()
    import mlx.core as mx

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "tiny"
        if args.only != "daemon":  # the daemon row needs no model (nor mlx-lm)
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sys, mlx_portable; mlx_portable.activate(); "
                    "from mlx_portable.cli.tiny_model import write_tiny_model; write_tiny_model(sys.argv[1])",
                    str(model),
                ],
                env=env(True),
                check=True,
                timeout=300,
            )
        cases = {
            "worker": lambda patched: run_worker(model, patched),
            "daemon": run_daemon,
            "sigint": lambda patched: run_server(model, patched, signal.SIGINT),
            "sigterm": lambda patched: run_server(model, patched, signal.SIGTERM),
        }
        print(f"mlx {mx.__version__}, {args.runs} runs each, alternating; machine shared (2 cores)")
        for name, case in cases.items():
            if args.only and name != args.only:
                continue
            codes: dict[bool, collections.Counter[object]] = {
                True: collections.Counter(),
                False: collections.Counter(),
            }
            for _ in range(args.runs):
                for patched in (True, False):
                    codes[patched][case(patched)] += 1
            on, off = codes[True], codes[False]
            print(
                f"{name:8s} with the patches: exit 0 in {on[0]:2d}/{args.runs} {dict(on)}   "
                f"without: exit 0 in {off[0]:2d}/{args.runs} {dict(off)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
