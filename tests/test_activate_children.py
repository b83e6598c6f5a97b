"""``activate(children=True)``: the child processes a program starts come up activated.

The slow test installs the built wheel in a real venv and runs exo's runner
path: a parent that only calls ``mlx_portable.activate(children=True)`` starts
a ``multiprocessing`` spawn child that imports mlx-lm before anything else,
loads a model and generates.  On mlx < 0.31.2 the same child started after a
plain ``activate()`` is shown to fail.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
from helpers.shim_helpers import mlx_version
from helpers.subproc import env_without_checkout, linked_venv, venv_with_wheel
from packaging.version import Version

import mlx_portable
from mlx_portable import children
from mlx_portable.errors import PortabilityWarning
from mlx_portable.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SWITCHES = (
    "MLX_PORTABLE_AUTOACTIVATE",
    "MLX_PORTABLE_BACKEND",
    "MLX_PORTABLE_DISABLE",
    "MLX_PORTABLE_STRICT",
)


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("clean_environ")
def test_export_puts_the_switch_and_the_chosen_settings_in_the_environment() -> None:
    env: dict[str, str] = {}
    settings = Settings(
        backend_order=("cpu",), backend_forced=True, disabled=frozenset({"b", "a"}), strict=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PortabilityWarning)
        detail = children.export_to_children(settings, env)
    assert env == {
        "MLX_PORTABLE_AUTOACTIVATE": "1",
        "MLX_PORTABLE_BACKEND": "cpu",
        "MLX_PORTABLE_DISABLE": "a,b",
        "MLX_PORTABLE_STRICT": "1",
    }
    assert detail["exported"] == env
    # Defaults export only the switch: the child picks its backend as the parent did.
    plain: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PortabilityWarning)
        children.export_to_children(Settings(), plain)
    assert plain == {"MLX_PORTABLE_AUTOACTIVATE": "1"}


def test_children_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match=r"activate\(children=\.\.\.\) must be True or False, not str"):
        mlx_portable.activate(children="yes")  # type: ignore[arg-type]


REPORT = """
import os, warnings, mlx_portable
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    report = mlx_portable.activate(children=True)
print("env:", os.environ.get("MLX_PORTABLE_AUTOACTIVATE"), os.environ.get("MLX_PORTABLE_BACKEND"))
print("hook:", report.details["children"]["startup_hook"])
print("warned:", [str(w.message) for w in caught if "children=True" in str(w.message)])
print(report)
"""


@pytest.mark.slow_every_mlx
def test_report_says_when_the_startup_hook_is_missing(tmp_path: Path) -> None:
    python, site = linked_venv(tmp_path / "venv")
    (site / "01_checkout.pth").write_text(str(ROOT) + "\n")  # a source tree: no start-up hook
    done = subprocess.run(
        [str(python), "-c", REPORT],
        env=env_without_checkout(MLX_PORTABLE_BACKEND="cpu"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert "env: 1 cpu" in done.stdout
    assert "hook: None" in done.stdout
    assert "child processes are NOT activated" in done.stdout.split("warned:")[1].splitlines()[0]
    assert (
        "children: MLX_PORTABLE_AUTOACTIVATE=1 MLX_PORTABLE_BACKEND=cpu exported; the start-up hook"
        in done.stdout
    )

    # With the hook in site-packages (as the wheel installs it): no warning.
    for name in ("mlx_portable_autoactivate.pth", "_mlx_portable_startup.py"):
        shutil.copy(ROOT / "pth" / name, site / name)
    hooked = subprocess.run(
        [str(python), "-c", REPORT], env=env_without_checkout(), capture_output=True, text=True, timeout=240
    )
    assert hooked.returncode == 0, hooked.stderr
    assert f"hook: {site / 'mlx_portable_autoactivate.pth'}" in hooked.stdout
    assert "warned: []" in hooked.stdout
    assert "start-up hook installed" in hooked.stdout


RUNNER = """
import multiprocessing as mp
import sys

def runner(model_path, queue):
    try:
        from mlx_lm import generate, load   # mlx-lm first, as exo's runner: no mlx_portable here
        model, tokenizer = load(model_path)
        text = generate(model, tokenizer, prompt="hello", max_tokens=8, verbose=False)
        active = sys.modules["mlx_portable"].is_active() if "mlx_portable" in sys.modules else False
        queue.put(f"generated {len(text) > 0} active {active}")
    except Exception as exc:
        queue.put(f"failed {type(exc).__name__}: {exc}")

if __name__ == "__main__":
    import mlx_portable
    mlx_portable.activate(children=sys.argv[2] == "children")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=runner, args=(sys.argv[1], queue))
    proc.start()
    print("runner:", queue.get(timeout=300))
    proc.join(300)
    print("runner exit:", proc.exitcode)
"""


@pytest.mark.slow
def test_spawned_runner_importing_mlx_lm_first_is_activated(tmp_path: Path, tiny_model_dir: Path) -> None:
    python, site = venv_with_wheel(tmp_path)
    assert (site / "mlx_portable_autoactivate.pth").is_file()
    script = tmp_path / "exo_like_parent.py"
    script.write_text(RUNNER)

    def parent(mode: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), str(script), str(tiny_model_dir), mode],
            env=env_without_checkout(),  # no switch: only the call in the parent
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )

    done = parent("children")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "runner: generated True active True" in done.stdout, done.stdout + done.stderr[-3000:]
    assert "runner exit: 0" in done.stdout
    if mlx_version() < Version("0.31.2"):
        without = parent("plain")
        assert (
            "runner: failed AttributeError: module 'mlx.core' has no attribute 'new_thread_local_stream'"
            in without.stdout
        ), without.stdout + without.stderr[-3000:]
