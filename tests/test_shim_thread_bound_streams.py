"""``thread_bound_streams``: an older mlx-lm generates from a worker thread on newer mlx.

The real scenario is mlx-lm 0.31.2 on mlx-cpu 0.32.4 (the ``lm0312``
environment of the matrix); elsewhere the patch must report itself obsolete.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers.shim_helpers import mlx_lm_version, mlx_version, native, run_script

import mlx_portable

mx = pytest.importorskip("mlx.core")

LM = mlx_lm_version()
# mlx-lm 0.31.3 switched to a thread-local stream; CPU streams are thread-bound from mlx 0.32.0
# (mx.new_thread_unsafe_stream arrived with them).
APPLIES = LM is not None and LM.release < (0, 31, 3) and hasattr(mx, "new_thread_unsafe_stream")


def _needs_shim() -> None:
    if LM is None or importlib.util.find_spec("mlx_lm") is None:
        pytest.skip("mlx-lm is not installed")
    if not APPLIES:
        pytest.skip(
            f"mlx-lm {LM} on mlx {mx.__version__}: the generation stream is already thread-local or "
            "CPU streams are not bound to threads here; the scenario needs mlx-lm <= 0.31.2 on mlx >= 0.32.0"
        )


THREAD = """
import sys, threading
import mlx_portable
mlx_portable.activate()
from mlx_lm import generate, load
model, tokenizer = load(sys.argv[1])
result = {}
def work():
    try:
        result["text"] = generate(model, tokenizer, prompt="hello", max_tokens=8, verbose=False)
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
worker = threading.Thread(target=work)
worker.start()
worker.join(timeout=120)
same = generate(model, tokenizer, prompt="hello", max_tokens=8, verbose=False)
print("error:", result.get("error"))
print("equal:", result.get("text") == same)
print("status:", mlx_portable.report().patch("thread_bound_streams").status, flush=True)
"""


def test_generation_in_a_thread_works_with_the_shim_and_fails_without(
    tiny_model_dir: Path, python_env: dict[str, str]
) -> None:
    _needs_shim()
    with_shim = run_script(THREAD, python_env, str(tiny_model_dir))
    assert with_shim.returncode == 0, with_shim.stdout
    assert "error: None" in with_shim.stdout
    assert "equal: True" in with_shim.stdout
    assert "status: applied" in with_shim.stdout

    without = run_script(THREAD, {**python_env, "MLX_PORTABLE": "0"}, str(tiny_model_dir))
    # (mlx may also abort at exit after the failed thread: only the message matters)
    assert "error: RuntimeError: There is no Stream(cpu, 0) in current thread." in without.stdout


ALREADY_IMPORTED = """
import sys
import mlx_lm.generate, mlx_lm.server
import mlx.core as mx
module = sys.modules["mlx_lm.generate"]
old = module.generation_stream
import mlx_portable  # patches at once: mlx_lm.generate is already imported
new = module.generation_stream
print("replaced:", new is not old and isinstance(new, mx.ThreadLocalStream))
print("server follows:", sys.modules["mlx_lm.server"].generation_stream is new)
mlx_portable.deactivate()
print("restored:", module.generation_stream is old and sys.modules["mlx_lm.server"].generation_stream is old)
"""


def test_applies_at_once_when_mlx_lm_was_imported_first_and_deactivate_reverts(
    python_env: dict[str, str],
) -> None:
    _needs_shim()
    done = run_script(ALREADY_IMPORTED, python_env)
    assert done.returncode == 0, done.stdout
    assert "replaced: True" in done.stdout
    assert "server follows: True" in done.stdout
    assert "restored: True" in done.stdout


def test_obsolete_wherever_the_scenario_cannot_occur() -> None:
    if LM is None or importlib.util.find_spec("mlx_lm") is None:
        pytest.skip("mlx-lm is not installed")
    if APPLIES:
        pytest.skip(f"mlx-lm {LM} on mlx {mx.__version__} needs the patch: see the tests above")
    mlx_portable.activate()
    try:
        import mlx_lm.generate  # noqa: F401  (fires the deferred patch)

        entry = mlx_portable.report().patch("thread_bound_streams")
        assert entry.status == "obsolete", entry
        if not native(mx, "new_thread_local_stream"):
            # Outside the patch's mlx range: activate() says so without waiting for the import.
            assert entry.reason == f"not needed on mlx {mlx_version()} (needed for mlx >=0.31.2)"
        else:
            assert "already is a thread-local stream" in entry.reason
    finally:
        mlx_portable.deactivate()
