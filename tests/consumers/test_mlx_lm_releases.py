"""Whatever mlx-lm release is installed (0.24 to 0.32) generates the expected greedy tokens.

Run by the release axis of the matrix (``nox -s consumers``: mlx-lm 0.24,
0.26, 0.28, 0.30, 0.31 on mlx 0.26.5 and 0.32.4) and by the full suite
(mlx-lm 0.31.2 on mlx 0.32.4; tests/matrix covers the newest mlx-lm).
One child process loads the tiny model, generates in the main thread and
then in a worker thread (as a server does), and prints the token ids; with
mlx-portable both equal ``tests/matrix/expected_greedy.json``.
Old mlx-lm detokenizers index the vocabulary by token id, so the tiny
model's vocabulary is exactly its tokenizer's (259 tokens).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

from mlx_portable.registry.builtin import builtin_patches

if importlib.util.find_spec("mlx_lm") is None or importlib.util.find_spec("tokenizers") is None:
    pytest.skip("mlx-lm and tokenizers are needed", allow_module_level=True)

EXPECTED = json.loads((Path(__file__).parents[1] / "matrix" / "expected_greedy.json").read_text())
mlx_installed = Version(version("mlx"))
mlx_lm_installed = Version(version("mlx-lm"))

if mlx_lm_installed >= Version("0.32"):
    pytest.skip("tests/matrix/test_mlx_lm_matrix.py covers the newest mlx-lm", allow_module_level=True)

#: Two child processes of about 10 s each: the point of the release axis.
pytestmark = pytest.mark.slow

SCRIPT = """
import json, os, sys, threading, traceback
if sys.argv[2] == "1":
    import mlx_portable
    mlx_portable.activate()
import mlx_lm
from mlx_lm import stream_generate

model, tokenizer = mlx_lm.load(sys.argv[1])

def run():
    return [r.token for r in stream_generate(model, tokenizer, "hello", max_tokens=32)]

out = {}
try:
    out["main"] = run()
except BaseException:
    out["main_error"] = traceback.format_exc()[-2000:]

def work():
    try:
        out["thread"] = run()
    except BaseException:
        out["thread_error"] = traceback.format_exc()[-2000:]

worker = threading.Thread(target=work)
worker.start()
worker.join(240)
print(json.dumps(out), flush=True)
os._exit(0)  # see docs/matrix.md: mlx >= 0.32 can abort at exit after a worker thread
"""

#: Errors a release dies of without mlx-portable, and the patch that prevents each.
UNSHIMMED_ERRORS = {
    "metal_namespace": r"\[metal::device_info\] Cannot get device info without metal backend"
    r"|KeyError: 'max_recommended_working_set_size'",
    "thread_local_stream": r"has no attribute 'new_thread_local_stream'",
    "device_info": r"has no attribute 'device_info'",
    "sdpa_sinks": r"scaled_dot_product_attention\(\): incompatible function arguments(.|\n)*sinks",
    "thread_bound_streams": r"There is no Stream\(cpu, \d+\) in current thread",
}


def _generate(model_dir: Path, env: dict[str, str], portable: bool) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(model_dir), "1" if portable else "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if not lines:
        return {"main_error": done.stderr[-3000:], "thread_error": done.stderr[-3000:]}
    result: dict[str, object] = json.loads(lines[-1])
    return result


def _needs_metal_namespace() -> bool:
    # mlx-lm < 0.25 reads mx.metal.device_info() whenever it generates.
    return mlx_lm_installed < Version("0.25")


def test_generates_expected_tokens_in_main_and_worker_thread(
    tiny_model_dir: Path, python_env: dict[str, str]
) -> None:
    out = _generate(tiny_model_dir, python_env, portable=True)
    registered = {p.name for p in builtin_patches()}
    if _needs_metal_namespace() and "metal_namespace" not in registered:
        assert re.search(UNSHIMMED_ERRORS["metal_namespace"], str(out.get("main_error", "")))
        pytest.xfail("mlx-lm < 0.25 needs the metal_namespace patch, not in this build")
    expected = EXPECTED["greedy_ids"]
    for where in ("main", "thread"):
        where_ = f"mlx-lm {mlx_lm_installed} on mlx {mlx_installed}, {where} thread"
        assert where in out, f"{where_}:\n{out.get(where + '_error')}"
        tokens = out[where]
        assert isinstance(tokens, list)
        # Releases before 0.28 yield one token past max_tokens.
        assert tokens[: len(expected)] == expected, f"{where}: {tokens}"


def test_without_mlx_portable_same_tokens_or_a_known_error(
    tiny_model_dir: Path, python_env: dict[str, str]
) -> None:
    out = _generate(tiny_model_dir, {**python_env, "MLX_PORTABLE": "0"}, portable=False)
    known = "|".join(f"(?:{e})" for e in UNSHIMMED_ERRORS.values())
    for where in ("main", "thread"):
        if where in out:
            tokens = out[where]
            assert isinstance(tokens, list) and tokens[:32] == EXPECTED["greedy_ids"]
        else:
            assert re.search(known, str(out[where + "_error"])), out[where + "_error"]
    if _needs_metal_namespace():
        assert "main" not in out, "mlx-lm < 0.25 generated off Metal without mlx-portable"
    if mlx_lm_installed >= Version("0.31.3") and mlx_installed < Version("0.31.2"):
        assert "main" not in out, "new_thread_local_stream exists on this old mlx?"
