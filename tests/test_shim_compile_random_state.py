"""``compile_random_state``: compiled random functions advance in a worker thread (real mlx-cpu wheels).

The scenario of mlx-lm 0.32.2's ``test_sampler_prng_across_threads``, run on
every mlx: a function compiled with ``inputs=/outputs=mx.random.state`` in
the main thread and called in a worker must draw different numbers each call
and follow ``mx.random.seed`` there.  On mlx 0.31.2 and 0.32.0 it does so
only with mlx-portable; the same scenario without it is shown to fail.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.shim_helpers import mlx_version, run_script
from helpers.subproc import sigint_default
from packaging.version import Version

import mlx_portable

mx = pytest.importorskip("mlx.core")


@pytest.fixture
def active() -> Iterator[None]:
    was_active = mlx_portable.is_active()
    mlx_portable.activate()
    try:
        yield
    finally:
        if not was_active:
            mlx_portable.deactivate()


#: The versions with a per-thread ``mx.random.state`` list (0.32.1 made it one object).
AFFECTED = Version("0.31.2") <= mlx_version() < Version("0.32.1")


def _draws_in_worker(fun: Any, state: Any = None) -> dict[str, Any]:
    """Call ``fun`` 16 times, then twice after one seed, in a fresh thread (evaluating ``state`` there)."""
    results: dict[str, Any] = {}

    def worker() -> None:
        call = fun
        results["draws"] = [call().item() for _ in range(16)]
        mx.random.seed(1234)
        first = call().item()
        mx.random.seed(1234)
        results["seeded"] = (first, call().item())
        if state is not None:
            mx.eval(state)  # a lazy graph cannot leave its thread's stream on mlx >= 0.32
        if hasattr(mx, "clear_streams"):
            mx.clear_streams()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(timeout=120)
    return results


def _check_varies_and_seeds(results: dict[str, Any]) -> None:
    assert len(set(results["draws"])) > 1, results["draws"]
    first, again = results["seeded"]
    assert first == again


@pytest.mark.usefixtures("active")
def test_compiled_uniform_advances_in_a_worker_thread() -> None:

    def draw() -> Any:
        return mx.random.uniform(shape=(1,))[0]

    direct = mx.compile(draw, inputs=mx.random.state, outputs=mx.random.state)
    counter = {"calls": mx.array(0)}
    nested_state = [counter, mx.random.state]

    def counted() -> Any:
        counter["calls"] = counter["calls"] + 1
        return draw()

    nested = mx.compile(counted, inputs=nested_state, outputs=nested_state)
    for fun in (direct, nested):
        _check_varies_and_seeds(_draws_in_worker(fun, state=counter))
    # The captured model state is still updated in place, from any thread.
    assert counter["calls"].item() == 18
    # And the building thread keeps its own stream of numbers.
    main = [direct().item() for _ in range(8)]
    assert len(set(main)) > 1


@pytest.mark.slow_every_mlx
def test_mlx_lm_sampler_varies_in_a_worker_thread() -> None:
    if importlib.util.find_spec("mlx_lm") is None:  # not imported here: on mlx < 0.31.2 it needs activation
        pytest.skip("mlx-lm is not installed")
    script = """
import threading, mlx_portable
import mlx.core as mx
from mlx_lm.sample_utils import make_sampler
sampler = make_sampler(temp=1.0)
logits = mx.random.normal((1, 128))
mx.eval(logits)
out = {}
def worker():
    out["tokens"] = len({sampler(logits).item() for _ in range(16)})
    mx.random.seed(1234); a = sampler(logits).item()
    mx.random.seed(1234); out["seeded"] = a == sampler(logits).item()
    if hasattr(mx, "clear_streams"):
        mx.clear_streams()
t = threading.Thread(target=worker); t.start(); t.join()
print("distinct", out["tokens"], "seeded", out["seeded"])
"""
    from helpers.subproc import env_with_settings

    with_shim = run_script(script, env_with_settings())
    assert with_shim.returncode == 0, with_shim.stdout
    distinct = int(with_shim.stdout.split("distinct ")[1].split()[0])
    assert distinct > 1, with_shim.stdout
    assert "seeded True" in with_shim.stdout
    if AFFECTED:
        without = run_script(script, env_with_settings(MLX_PORTABLE="0"))
        # One token, whatever the seed (and the exit may abort: mlx-portable's exit shim is off too).
        assert "distinct 1 " in without.stdout, without.stdout


def test_without_the_shim_the_worker_draws_repeat() -> None:
    if not AFFECTED:
        pytest.skip(f"mlx {mx.__version__} resolves mx.random.state per calling thread itself")
    script = """
import threading
import mlx.core as mx
f = mx.compile(lambda: mx.random.uniform(shape=(1,))[0], inputs=mx.random.state, outputs=mx.random.state)
out = []
t = threading.Thread(target=lambda: out.extend(f().item() for _ in range(16))); t.start(); t.join()
print("distinct", len(set(out)))
"""
    from helpers.subproc import env_with_settings

    done = run_script(script, env_with_settings(MLX_PORTABLE="0"))
    assert "distinct 1" in done.stdout, done.stdout


@pytest.mark.usefixtures("active")
def test_report_says_applied_or_obsolete() -> None:
    entry = mlx_portable.report().patch("compile_random_state")
    if AFFECTED:
        assert entry.status == "applied"
        assert mx.compile is not mlx_portable.get_original(mx, "compile")
    else:
        assert entry.status in ("obsolete", "skipped")


@pytest.mark.usefixtures("active")
def test_functions_without_random_state_are_not_wrapped() -> None:
    fun = mx.compile(lambda x: x * 2)
    assert fun(mx.array(3)).item() == 6
    if AFFECTED:
        # Only functions capturing the random state pay for the per-thread lookup.
        assert not hasattr(fun, "__wrapped__")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_completions(model: Path, env: dict[str, str], count: int) -> list[str]:
    """``count`` sampled completions of one prompt from ``mlx_lm.server`` (generated in a worker thread)."""
    port = _free_port()
    launch = "import sys, mlx_portable; from mlx_lm.server import main; sys.argv[0] = 'mlx_lm.server'; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", launch, "--model", str(model), "--port", str(port)],
        preexec_fn=sigint_default,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    body = json.dumps({"prompt": "hi", "max_tokens": 8, "temperature": 1.0}).encode()
    texts: list[str] = []
    deadline = time.monotonic() + 240
    try:
        while len(texts) < count:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/completions",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            try:
                reply = json.loads(urllib.request.urlopen(request, timeout=60).read())
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
                continue
            texts.append(reply["choices"][0]["text"])
    finally:
        proc.kill()
        proc.communicate()
    return texts


@pytest.mark.slow
def test_mlx_lm_server_sampled_output_varies(tiny_model_dir: Path, python_env: dict[str, str]) -> None:
    texts = _server_completions(tiny_model_dir, python_env, 4)
    assert len(set(texts)) > 1, texts
    if AFFECTED:
        without = _server_completions(tiny_model_dir, {**python_env, "MLX_PORTABLE": "0"}, 4)
        assert len(set(without)) == 1, without
