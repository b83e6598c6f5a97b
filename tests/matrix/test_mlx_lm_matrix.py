"""mlx-lm end to end on the installed mlx, with mlx-portable and without it.

Runs in every environment of the compatibility matrix (noxfile.py) and in
the dev environment.  With mlx-portable: ``mlx_lm.load``, greedy
``generate``, ``stream_generate``, ``batch_generate``, generation from a
worker thread and ``python -m mlx_lm.generate`` all work and give exactly the
tokens in expected_greedy.json, on every mlx version.  Without it, or with
one shim disabled, the same scenario fails with the error that shim exists
for, wherever this environment needs that shim, so each shim proves it
matters.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from regenerate_expected import EXPECTED, MAX_TOKENS, PROMPT, chat_prompt_ids, greedy_ids

pytest.importorskip("tokenizers")
if importlib.util.find_spec("mlx_lm") is None:
    pytest.skip("mlx-lm is not installed", allow_module_level=True)

SUBPROCESS_TIMEOUT = 300

#: Each shim that a plain mlx-lm run needs somewhere in the matrix, with the
#: error the run dies of without it (reference/mlx-compat.md B1, B1b, B9, B2).
SHIM_FAILURES: dict[str, str] = {
    "thread_local_stream": re.escape(
        "AttributeError: module 'mlx.core' has no attribute 'new_thread_local_stream'"
    ),
    "device_info": re.escape("AttributeError: module 'mlx.core' has no attribute 'device_info'"),
    "sdpa_sinks": r"TypeError: scaled_dot_product_attention\(\): incompatible function arguments"
    r"(.|\n)*sinks",
    "thread_bound_streams": r"RuntimeError: There is no Stream\(cpu, \d+\) in current thread\.",
}
#: The shims the main-thread command line can need (the thread scenario adds thread_bound_streams).
CLI_SHIMS = ("thread_local_stream", "device_info", "sdpa_sinks")

_REPORT_SCRIPT = """
import json
import mlx_portable
mlx_portable.activate()
import mlx_lm.generate
print(json.dumps({p.name: p.status for p in mlx_portable.report().patches}))
"""

_THREAD_SCRIPT = """
import json, os, sys, threading, traceback
if sys.argv[2] == "1":
    import mlx_portable
    mlx_portable.activate()
import mlx_lm
from mlx_lm.generate import generate

# Loaded in the main thread, generated in a worker, as a server does.
model, tokenizer = mlx_lm.load(sys.argv[1])
out = {}

def work():
    try:
        out["text"] = generate(model, tokenizer, sys.argv[3], max_tokens=int(sys.argv[4]))
    except BaseException:
        out["error"] = traceback.format_exc()

worker = threading.Thread(target=work)
worker.start()
worker.join(240)
if "text" not in out:
    sys.stderr.write(out.get("error", "worker thread did not finish"))
    sys.stderr.flush()
    os._exit(1)
print(json.dumps(out), flush=True)
# mlx >= 0.32.0 sometimes aborts at interpreter exit after a worker thread used a
# thread-bound CPU stream ("terminate called without an active exception", about 1
# run in 4, with or without mlx-portable); this test is about generating in the
# thread, so it leaves without running the interpreter's exit.
os._exit(0)
"""


def _expected() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXPECTED.read_text(encoding="utf-8"))
    return data


def _child_env(python_env: dict[str, str], disable: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in python_env.items() if not k.startswith("MLX_PORTABLE")}
    env.update(MLX_PORTABLE_BACKEND="cpu", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if disable:
        env["MLX_PORTABLE_DISABLE"] = disable
    return env


def _run(args: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT
    )


def _portable(module: str, *args: str) -> list[str]:
    """Run ``python -m module args`` with mlx-portable activated first."""
    if importlib.util.find_spec("mlx_portable.__main__") is not None:
        return ["-m", "mlx_portable", "run", module, *args]
    runner = (
        "import sys, runpy, mlx_portable; mlx_portable.activate(); "
        f"sys.argv[0] = {module!r}; runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    )
    return ["-c", runner, *args]


def _cli_args(model_dir: Path) -> list[str]:
    return ["--model", str(model_dir), "--prompt", PROMPT, "--max-tokens", str(MAX_TOKENS), "--temp", "0"]


def _cli_text(stdout: str) -> str:
    """The generated text ``mlx_lm.generate`` prints between its ``==========`` lines."""
    match = re.search(r"^==========\n(.*)\n==========\n", stdout, re.S | re.M)
    assert match, f"no generated text in the output:\n{stdout}"
    return match.group(1)


@pytest.fixture(scope="module")
def applied(python_env: dict[str, str]) -> set[str]:
    """The patches activate() applies here once ``mlx_lm.generate`` is imported."""
    done = _run(["-c", _REPORT_SCRIPT], _child_env(python_env))
    assert done.returncode == 0, done.stderr[-4000:]
    statuses: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    assert "failed" not in statuses.values(), statuses
    return {name for name, status in statuses.items() if status == "applied"}


@pytest.fixture(scope="module")
def expected_texts(tiny_model_dir: Path) -> dict[str, str]:
    """The expected ids decoded by the fixture's own tokenizer (no mlx involved)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    data = _expected()
    return {
        "plain": tokenizer.decode(data["greedy_ids"]),
        "chat": tokenizer.decode(data["chat_greedy_ids"]),
    }


def test_environment_holds_the_pinned_versions() -> None:
    mlx = os.environ.get("MLX_PORTABLE_MATRIX_MLX")
    mlx_lm = os.environ.get("MLX_PORTABLE_MATRIX_MLX_LM")
    if not mlx or not mlx_lm:
        pytest.skip("not a matrix environment (MLX_PORTABLE_MATRIX_MLX unset)")
    import mlx.core as mx

    assert mx.__version__ == mlx  # type: ignore[attr-defined]
    assert importlib.metadata.version("mlx") == mlx
    backend_package = "mlx-metal" if sys.platform == "darwin" else "mlx-cpu"
    assert importlib.metadata.version(backend_package) == mlx
    assert importlib.metadata.version("mlx-lm") == mlx_lm


def test_expected_ids_are_varied_and_complete() -> None:
    data = _expected()
    for key in ("greedy_ids", "chat_greedy_ids"):
        assert len(data[key]) == MAX_TOKENS
        assert len(set(data[key])) >= 8


@pytest.mark.slow
def test_load_and_greedy_generate_give_the_expected_ids(
    mlx_lm_activated: ModuleType, tiny_model_dir: Path, expected_texts: dict[str, str]
) -> None:
    from mlx_lm.generate import generate

    model, tokenizer = mlx_lm_activated.load(str(tiny_model_dir))
    data = _expected()
    assert greedy_ids(model, tokenizer.encode(PROMPT)) == data["greedy_ids"]
    assert greedy_ids(model, chat_prompt_ids(tokenizer)) == data["chat_greedy_ids"]
    assert generate(model, tokenizer, PROMPT, max_tokens=MAX_TOKENS) == expected_texts["plain"]


@pytest.mark.slow
def test_stream_generate_gives_the_expected_ids(
    mlx_lm_activated: ModuleType, tiny_model_dir: Path, expected_texts: dict[str, str]
) -> None:
    from mlx_lm.generate import stream_generate

    model, tokenizer = mlx_lm_activated.load(str(tiny_model_dir))
    responses = list(stream_generate(model, tokenizer, PROMPT, max_tokens=MAX_TOKENS))
    assert [r.token for r in responses] == _expected()["greedy_ids"]
    assert "".join(r.text for r in responses) == expected_texts["plain"]
    assert responses[-1].finish_reason == "length"


@pytest.mark.slow
def test_batch_generate_gives_the_expected_text(
    mlx_lm_activated: ModuleType, tiny_model_dir: Path, expected_texts: dict[str, str]
) -> None:
    generate_module = importlib.import_module("mlx_lm.generate")
    if not hasattr(generate_module, "batch_generate"):
        pytest.skip(f"mlx-lm {importlib.metadata.version('mlx-lm')} has no batch_generate")
    model, tokenizer = mlx_lm_activated.load(str(tiny_model_dir))
    # Prompts of different lengths: the batch is padded, yet each row is what
    # generating it alone gives.
    prompts = [tokenizer.encode(PROMPT), chat_prompt_ids(tokenizer)]
    response = generate_module.batch_generate(model, tokenizer, prompts, max_tokens=MAX_TOKENS)
    assert response.texts == [expected_texts["plain"], expected_texts["chat"]]


@pytest.mark.slow
def test_command_line_with_mlx_portable(
    tiny_model_dir: Path, python_env: dict[str, str], expected_texts: dict[str, str]
) -> None:
    done = _run(_portable("mlx_lm.generate", *_cli_args(tiny_model_dir)), _child_env(python_env))
    assert done.returncode == 0, done.stderr[-4000:]
    assert _cli_text(done.stdout) == expected_texts["chat"]
    assert f"Generation: {MAX_TOKENS} tokens" in done.stdout


@pytest.mark.slow
def test_command_line_without_mlx_portable_fails_where_a_shim_is_needed(
    tiny_model_dir: Path, python_env: dict[str, str], expected_texts: dict[str, str], applied: set[str]
) -> None:
    needed = [name for name in CLI_SHIMS if name in applied]
    done = _run(["-m", "mlx_lm.generate", *_cli_args(tiny_model_dir)], _child_env(python_env))
    if not needed:
        assert done.returncode == 0, done.stderr[-4000:]
        assert _cli_text(done.stdout) == expected_texts["chat"]
        return
    assert done.returncode != 0, f"expected a failure (needs {needed}), got:\n{done.stdout}"
    assert any(re.search(SHIM_FAILURES[name], done.stderr) for name in needed), done.stderr[-4000:]


@pytest.mark.slow
@pytest.mark.parametrize("shim", CLI_SHIMS)
def test_command_line_fails_with_that_shim_disabled(
    shim: str, tiny_model_dir: Path, python_env: dict[str, str], applied: set[str]
) -> None:
    if shim not in applied:
        pytest.skip(f"{shim} is not needed on this mlx / mlx-lm")
    env = _child_env(python_env, disable=shim)
    done = _run(_portable("mlx_lm.generate", *_cli_args(tiny_model_dir)), env)
    assert done.returncode != 0, f"{shim} disabled, yet the command line worked:\n{done.stdout}"
    assert re.search(SHIM_FAILURES[shim], done.stderr), done.stderr[-4000:]


def _thread_run(model_dir: Path, env: dict[str, str], portable: bool) -> subprocess.CompletedProcess[str]:
    args = ["-c", _THREAD_SCRIPT, str(model_dir), "1" if portable else "0", PROMPT, str(MAX_TOKENS)]
    return _run(args, env)


@pytest.mark.slow
def test_generation_in_a_worker_thread_with_mlx_portable(
    tiny_model_dir: Path, python_env: dict[str, str], expected_texts: dict[str, str]
) -> None:
    done = _thread_run(tiny_model_dir, _child_env(python_env), portable=True)
    assert done.returncode == 0, done.stderr[-4000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["text"] == expected_texts["plain"]


@pytest.mark.slow
def test_generation_in_a_worker_thread_without_mlx_portable(
    tiny_model_dir: Path, python_env: dict[str, str], expected_texts: dict[str, str], applied: set[str]
) -> None:
    needed = [name for name in SHIM_FAILURES if name in applied]
    done = _thread_run(tiny_model_dir, _child_env(python_env), portable=False)
    if not needed:
        assert done.returncode == 0, done.stderr[-4000:]
        assert json.loads(done.stdout.strip().splitlines()[-1])["text"] == expected_texts["plain"]
        return
    assert done.returncode != 0, f"expected a failure (needs {needed}), got:\n{done.stdout}"
    assert any(re.search(SHIM_FAILURES[name], done.stderr) for name in needed), done.stderr[-4000:]


@pytest.mark.slow
def test_worker_thread_fails_with_thread_bound_streams_disabled(
    tiny_model_dir: Path, python_env: dict[str, str], applied: set[str]
) -> None:
    if "thread_bound_streams" not in applied:
        pytest.skip("thread_bound_streams is not needed on this mlx / mlx-lm")
    env = _child_env(python_env, disable="thread_bound_streams")
    done = _thread_run(tiny_model_dir, env, portable=True)
    assert done.returncode != 0, f"thread_bound_streams disabled, yet generation worked:\n{done.stdout}"
    assert re.search(SHIM_FAILURES["thread_bound_streams"], done.stderr), done.stderr[-4000:]
