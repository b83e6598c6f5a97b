"""The command line's frame: --version, --help everywhere, and a missing or broken mlx.

Every case runs ``python -m mlx_portable`` in a fresh interpreter.  The
"no mlx" cases start Python with ``-S`` (no site-packages at all) and only
the repository (plus, for "cannot load", an mlx that fails to import) on
``PYTHONPATH``, which is what a machine without mlx looks like.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers.subproc import child_env, run_python

from mlx_portable.install_hint import install_command

REPO = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ("doctor", "run", "check")


def run_cli(
    *args: str,
    python_flags: tuple[str, ...] = (),
    pythonpath: list[str] | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = child_env(*(pythonpath or []), clear=("MLX_", "NO_COLOR"), inherit_path=False, **(env or {}))
    return run_python(
        None,
        *args,
        module="mlx_portable",
        interpreter_args=python_flags,
        env=full_env,
        cwd=cwd or REPO,
        timeout=120,
    )


def test_version_names_mlx_portable_mlx_and_python() -> None:
    import mlx_portable

    done = run_cli("--version")
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith(f"mlx-portable {mlx_portable.__version__} (mlx ")
    assert f"Python {sys.version.split()[0]}" in line


@pytest.mark.parametrize("command", [None, *SUBCOMMANDS])
def test_help_on_every_subcommand(command: str | None) -> None:
    done = run_cli(*([command] if command else []), "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: mlx-portable" + (f" {command}" if command else ""))
    if command is None:
        for sub in SUBCOMMANDS:
            assert sub in done.stdout
    if command in ("doctor", "check"):
        assert "--json" in done.stdout


def test_no_subcommand_prints_usage_and_exits_2() -> None:
    done = run_cli()
    assert done.returncode == 2
    assert "usage: mlx-portable" in done.stderr


def test_unknown_subcommand_is_a_usage_error() -> None:
    done = run_cli("doctr")
    assert done.returncode == 2
    assert "invalid choice: 'doctr'" in done.stderr


def test_console_script_entry_point_is_cli_main(capsys: pytest.CaptureFixture[str]) -> None:
    tomllib = pytest.importorskip("tomllib")
    with open(REPO / "pyproject.toml", "rb") as fh:
        scripts = tomllib.load(fh)["project"]["scripts"]
    module, _, attr = scripts["mlx-portable"].partition(":")
    import importlib

    main = getattr(importlib.import_module(module), attr)
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("mlx-portable ")


def test_installed_console_script_runs_where_installed() -> None:
    script = Path(sys.executable).parent / "mlx-portable"
    if not script.exists():
        pytest.skip("the package is not installed in this environment (no mlx-portable script)")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("mlx-portable ")


def test_import_mlx_portable_does_not_import_the_cli() -> None:
    code = (
        "import sys, mlx_portable; print(sorted(m for m in sys.modules if m.startswith('mlx_portable.cli')))"
    )
    done = run_python(code, env=child_env(clear=("MLX_",), inherit_path=False), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- mlx missing or broken ------------------------------------------------------


def _assert_install_message(done: subprocess.CompletedProcess[str], command: str) -> None:
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "Traceback" not in out
    assert command in " ".join(out.split())  # doctor wraps it to the width


@pytest.mark.parametrize(
    "args", [("doctor",), ("check",), ("run", "json.tool", "--help"), ("doctor", "--json")]
)
@pytest.mark.slow_every_mlx
def test_no_mlx_installed_gives_install_command_and_exit_2(args: tuple[str, ...]) -> None:
    done = run_cli(*args, python_flags=("-S",))
    _assert_install_message(done, install_command())
    assert "mlx is not installed" in done.stdout + done.stderr


def test_no_mlx_doctor_json_says_why(tmp_path: Path) -> None:
    import json

    done = run_cli("doctor", "--json", python_flags=("-S",))
    assert done.returncode == 2
    data = json.loads(done.stdout)
    assert data["status"] == "error"
    assert data["backend"] is None and data["probes"] == [] and data["patches"] == []
    assert install_command() in data["mlx_error"]
    assert data["next_steps"] == [f"install mlx: {install_command()}"]


def _fake_mlx(root: Path, message: str) -> Path:
    package = root / "mlx"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "core.py").write_text(f"raise ImportError({message!r})\n", encoding="utf-8")
    return root


@pytest.mark.slow_every_mlx
def test_mlx_without_backend_library_simulated(tmp_path: Path) -> None:
    # The exact text of Linux's loader when `pip install mlx` brought no backend.
    text = "libmlx.so: cannot open shared object file: No such file or directory"
    fake = _fake_mlx(tmp_path, text)
    for args in (("doctor",), ("check",), ("run", "json.tool")):
        done = run_cli(*args, python_flags=("-S",), pythonpath=[str(fake)])
        _assert_install_message(done, install_command())
        assert text in " ".join((done.stdout + done.stderr).split())  # doctor wraps it to the width


def test_mlx_and_backend_at_different_versions_simulated(tmp_path: Path) -> None:
    text = (
        "/venv/lib/python3.11/site-packages/mlx/core.cpython-311-x86_64-linux-gnu.so: "
        "undefined symbol: _ZN3mlx4core5array4initIPKfEEvT_"
    )
    fake = _fake_mlx(tmp_path, text)
    done = run_cli("check", python_flags=("-S",), pythonpath=[str(fake)])
    _assert_install_message(done, "pip install")
    assert "different versions" in done.stderr


def test_real_mlx_package_without_its_libmlx(tmp_path: Path) -> None:
    """The real mlx bindings with the backend library left out: the loader's own error."""
    import mlx

    installed = Path(next(iter(mlx.__path__)))
    if not (installed / "lib").is_dir() or sys.platform != "linux":
        pytest.skip("this mlx keeps its library elsewhere (not the Linux mlx + mlx-cpu layout)")
    copy = tmp_path / "mlx"
    copy.mkdir()
    for entry in installed.iterdir():
        if entry.name not in ("lib", "__pycache__"):
            (copy / entry.name).symlink_to(entry)
    done = run_cli("doctor", python_flags=("-S",), pythonpath=[str(tmp_path)])
    _assert_install_message(done, install_command())
    assert "cannot open shared object file" in done.stdout
    assert done.stdout.startswith("mlx-portable doctor: error\n")
