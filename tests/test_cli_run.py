"""``mlx-portable run TARGET [ARGS...]``: Python's own semantics, after activation.

Scripts and modules written by the tests, real signals, and mlx-lm's own
command line and HTTP server on the tiny offline model, each in a fresh
interpreter.  The server case talks to ``mlx_lm.server`` with the real
``openai`` client over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from helpers.subproc import child_env, run_python, sigint_default

REPO = Path(__file__).resolve().parents[1]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return child_env(inherit_path=False, **(extra or {}))


def run_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_python(None, "run", *args, module="mlx_portable", env=_env(), cwd=cwd, timeout=timeout)


def write(path: Path, code: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code), encoding="utf-8")
    return path


REPORTER = """
import json, sys
import mlx_portable
print(json.dumps({
    "argv": sys.argv, "name": __name__, "path0": sys.path[0],
    "active": mlx_portable.is_active(), "main_file": getattr(sys.modules["__main__"], "__file__", None),
}))
"""


def _report(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.slow_every_mlx
def test_script_path_sees_python_script_semantics(tmp_path: Path) -> None:
    script = write(tmp_path / "scripts" / "show.py", REPORTER)
    seen = _report(run_cli("scripts/show.py", "--flag", "x", "--help", cwd=tmp_path))
    assert seen["argv"] == ["scripts/show.py", "--flag", "x", "--help"]
    assert seen["name"] == "__main__"
    assert seen["path0"] == str(script.parent)
    assert seen["active"] is True  # activated before the target ran


@pytest.mark.slow_every_mlx
def test_module_target_sees_python_dash_m_semantics(tmp_path: Path) -> None:
    module = write(tmp_path / "toolbox" / "show.py", REPORTER)
    write(tmp_path / "toolbox" / "__init__.py", "")
    seen = _report(run_cli("toolbox.show", "-v", "--", "a b", cwd=tmp_path))
    assert seen["argv"] == [str(module), "-v", "--", "a b"]  # argv[0] is the file, as under -m
    assert seen["name"] == "__main__"
    assert seen["path0"] == str(tmp_path)  # the working directory, as under -m
    assert seen["main_file"] == str(module)


@pytest.mark.slow_every_mlx
def test_package_target_runs_its_dunder_main(tmp_path: Path) -> None:
    write(tmp_path / "app" / "__init__.py", "")
    write(tmp_path / "app" / "__main__.py", "import sys; print('app main', sys.argv[1:])")
    done = run_cli("app", "one", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "app main ['one']"


@pytest.mark.parametrize(
    ("body", "status", "stderr_has"),
    [
        ("sys.exit(3)", 3, ""),
        ("sys.exit(0)", 0, ""),
        ("sys.exit()", 0, ""),
        ("sys.exit('fatal: no model given')", 1, "fatal: no model given"),
        ("raise ValueError('bad input from the target')", 1, "ValueError: bad input from the target"),
        ("raise KeyboardInterrupt", 130, "interrupted"),
    ],
)
@pytest.mark.slow_every_mlx
def test_exit_status_is_propagated(tmp_path: Path, body: str, status: int, stderr_has: str) -> None:
    write(tmp_path / "job.py", f"import sys\nprint('started')\n{body}\n")
    done = run_cli("job.py", cwd=tmp_path)
    assert done.returncode == status, done.stderr
    assert done.stdout.strip() == "started"
    assert stderr_has in done.stderr


def test_traceback_shows_the_targets_frames_not_the_cli(tmp_path: Path) -> None:
    write(tmp_path / "fails.py", "def inner():\n    raise RuntimeError('deep')\n\ninner()\n")
    done = run_cli("fails.py", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert 'fails.py", line 4, in <module>' in done.stderr
    assert "mlx_portable/cli" not in done.stderr and "runpy" not in done.stderr


@pytest.mark.slow_every_mlx
def test_ctrl_c_exits_130(tmp_path: Path) -> None:
    write(tmp_path / "wait.py", "import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlx_portable", "run", "wait.py"],
        preexec_fn=sigint_default,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.slow_every_mlx
def test_missing_module_and_missing_file(tmp_path: Path) -> None:
    done = run_cli("no_such_module_here", cwd=tmp_path)
    assert done.returncode == 1
    assert "No module named 'no_such_module_here'" in done.stderr
    done = run_cli("./missing.py", cwd=tmp_path)
    assert done.returncode == 2
    assert "can't open file" in done.stderr and "missing.py" in done.stderr
    assert "Traceback" not in done.stderr


def test_activation_failure_exits_2_before_the_target_runs(tmp_path: Path) -> None:
    write(tmp_path / "job.py", "print('target ran')\n")
    unavailable = "metal" if sys.platform != "darwin" else "cuda"
    env = _env({"MLX_PORTABLE_BACKEND": unavailable})
    done = run_python(None, "run", "job.py", module="mlx_portable", env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert "target ran" not in done.stdout
    assert done.stderr.startswith(f"mlx-portable run: MLX_PORTABLE_BACKEND={unavailable} asks for a backend")
    assert "Traceback" not in done.stderr


# -- mlx-lm's own entry points on the tiny model --------------------------------


def _version(dist: str) -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(p) for p in version(dist).split(".")[:3])


@pytest.mark.slow
def test_mlx_lm_generate_runs_under_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    done = run_cli(
        "mlx_lm.generate", "--model", str(tiny_model_dir), "--prompt", "hi", "--max-tokens", "8", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Generation: 8 tokens" in done.stdout


def test_mlx_lm_generate_fails_without_mlx_portable_on_old_mlx(tiny_model_dir: Path, tmp_path: Path) -> None:
    """What ``run`` prevents: plain ``python -m mlx_lm.generate`` on mlx < 0.31.2."""
    pytest.importorskip("mlx_lm")
    if _version("mlx") >= (0, 31, 2) or _version("mlx-lm") < (0, 31, 3):
        pytest.skip("this mlx has thread-local streams, or this mlx-lm does not use them")
    args = ("--model", str(tiny_model_dir), "--prompt", "hi")
    done = run_python(None, *args, module="mlx_lm.generate", env=_env(), cwd=tmp_path, timeout=120)
    assert done.returncode == 1
    assert "module 'mlx.core' has no attribute 'new_thread_local_stream'" in done.stderr


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_healthy(url: str, proc: subprocess.Popen[str], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"mlx_lm.server exited with {proc.returncode} before answering:\n{err[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"mlx_lm.server did not answer {url} within the time allowed")


@pytest.mark.slow
def test_mlx_lm_server_answers_the_openai_client(tiny_model_dir: Path, tmp_path: Path) -> None:
    openai = pytest.importorskip("openai")
    port = _free_port()
    log = tmp_path / "server.log"
    with open(log, "w", encoding="utf-8") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlx_portable",
                "run",
                "mlx_lm.server",
                "--model",
                str(tiny_model_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}),
            cwd=tmp_path,
        )
        try:
            _wait_until_healthy(f"http://127.0.0.1:{port}/health", proc, time.monotonic() + 120)
            client = openai.OpenAI(
                base_url=f"http://127.0.0.1:{port}/v1", api_key="not-needed", max_retries=0
            )
            reply = client.chat.completions.create(
                model="default_model",
                messages=[{"role": "user", "content": "Say hi"}],
                max_tokens=6,
                temperature=0.0,
                timeout=120,
            )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
    assert reply.choices[0].message.content is not None, log.read_text(encoding="utf-8")[-3000:]
    assert reply.usage is not None and reply.usage.completion_tokens == 6
    assert reply.choices[0].finish_reason == "length"
