"""``mlx-portable run``'s switches, ``-m`` and ``--`` as python has them, and ``--report``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers.plugin_site import FAILING_PATCH, plugin_site
from helpers.subproc import child_env, run_python

from mlx_portable.cli.run_options import RunUsageError, parse_run_args

REPO = Path(__file__).resolve().parents[1]

STATUS = """
import json, os, sys
import mlx_portable
r = mlx_portable.report().to_dict()
print(json.dumps({"argv": sys.argv, "backend": r["backend"], "forced": r["backend_forced"],
                  "status": {p["name"]: [p["status"], p.get("reason")] for p in r["patches"]},
                  "env": {k: v for k, v in os.environ.items() if k.startswith("MLX_PORTABLE")}}))
"""


def _run(tmp_path: Path, *args: str, site: Path | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLX_PORTABLE") and k != "PYTHONPATH"}
    env = child_env(*([site] if site else []), base=clean, COLUMNS="80")
    return run_python(None, "run", *args, module="mlx_portable", env=env, cwd=tmp_path, timeout=120)


def _script(tmp_path: Path, code: str = STATUS) -> str:
    (tmp_path / "job.py").write_text(textwrap.dedent(code), encoding="utf-8")
    return "job.py"


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("argv", "target", "args", "module"),
    [
        (["job.py", "--", "a", "--help"], "job.py", ["--", "a", "--help"], False),
        (["--", "job.py", "--", "b"], "job.py", ["--", "b"], False),
        (["--", "-odd.py"], "-odd.py", [], False),
        (["-m", "mlx_lm", "generate", "--", "x"], "mlx_lm", ["generate", "--", "x"], True),
        (["-mjson.tool", "-h"], "json.tool", ["-h"], True),
        (["--strict", "--report", "--backend=cpu", "job.py", "--strict"], "job.py", ["--strict"], False),
        (["--disable", "a,b", "--disable=c", "-v", "m", "-v"], "m", ["-v"], False),
    ],
)
def test_arguments_split_as_python_splits_them(
    argv: list[str], target: str, args: list[str], module: bool
) -> None:
    opts = parse_run_args(argv)
    assert (opts.target, opts.args, opts.module) == (target, args, module)


def test_switches_are_read_before_the_target_only() -> None:
    opts = parse_run_args(["--strict", "--report", "--backend=cpu", "--disable", "a,b", "--disable=c", "t"])
    assert opts.strict and opts.report and opts.backend == "cpu" and opts.disable == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "nothing to run: give a module"),
        (["--strict"], "nothing to run"),
        (["-m"], "-m needs a module name"),
        (["--backend"], "--backend needs a value"),
        (["--frobnicate", "job.py"], "unknown option '--frobnicate' before the target"),
    ],
)
def test_bad_command_lines_say_what_to_write(argv: list[str], message: str) -> None:
    with pytest.raises(RunUsageError, match=message):
        parse_run_args(argv)


@pytest.mark.slow_every_mlx
def test_double_dash_reaches_the_target_untouched(tmp_path: Path) -> None:
    script = _script(tmp_path)
    assert _json(_run(tmp_path, script, "--", "x"))["argv"] == ["job.py", "--", "x"]
    assert _json(_run(tmp_path, "--", script, "--", "y"))["argv"] == ["job.py", "--", "y"]


@pytest.mark.slow_every_mlx
def test_dash_m_runs_a_module_like_python(tmp_path: Path) -> None:
    (tmp_path / "mod_here.py").write_text(STATUS, encoding="utf-8")
    data = _json(_run(tmp_path, "-m", "mod_here", "--", "z"))
    assert data["argv"][1:] == ["--", "z"] and data["argv"][0].endswith("mod_here.py")


def test_missing_target_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    done = _run(tmp_path)
    assert done.returncode == 2
    assert "nothing to run" in done.stderr and "ARGS" in done.stderr.splitlines()[1]
    assert "Traceback" not in done.stderr


@pytest.mark.slow_every_mlx
def test_backend_and_disable_switches_set_the_variables_and_apply(tmp_path: Path) -> None:
    data = _json(_run(tmp_path, "--backend", "cpu", "--disable", "sdpa_sinks,device_info", _script(tmp_path)))
    assert data["backend"] == "cpu" and data["forced"] is True
    assert data["status"]["sdpa_sinks"][0] == "skipped" and "disabled" in data["status"]["sdpa_sinks"][1]
    assert data["status"]["device_info"][0] == "skipped"
    assert data["env"]["MLX_PORTABLE_DISABLE"] == "sdpa_sinks,device_info"  # child processes see it


@pytest.mark.slow_every_mlx
def test_disabling_an_import_time_shim_takes_it_back(tmp_path: Path) -> None:
    """``import mlx_portable`` ran before the switches were read: the shim must still be undone."""
    code = "import mlx.core as mx; print(mx.__version__, hasattr(mx, 'device_info'))\n"
    plain = _run(tmp_path, _script(tmp_path, code))
    disabled = _run(tmp_path, "--disable", "device_info", "job.py")
    assert plain.returncode == 0 and disabled.returncode == 0, plain.stderr + disabled.stderr
    version, has = plain.stdout.split()
    assert has == "True"  # natively (mlx >= 0.30.4) or through the shim
    from packaging.version import Version

    native = Version(version) >= Version("0.30.4")
    assert disabled.stdout.split()[1] == ("True" if native else "False")


def test_unknown_patch_name_exits_2_naming_the_switch(tmp_path: Path) -> None:
    done = _run(tmp_path, "--disable", "no_such_patch", _script(tmp_path, "print('ran')"))
    assert done.returncode == 2 and "ran" not in done.stdout
    assert "no_such_patch" in done.stderr and "--disable" in done.stderr
    assert "Traceback" not in done.stderr


def test_report_goes_to_stderr_before_the_target_runs(tmp_path: Path) -> None:
    script = _script(tmp_path, "import sys; sys.stderr.write('TARGET STARTED\\n'); print('out')\n")
    done = _run(tmp_path, "--report", script)
    assert done.returncode == 0 and done.stdout == "out\n"
    first, *rest = done.stderr.splitlines()
    assert first.startswith("mlx-portable ") and " on cpu" in first and "not needed" in first
    assert rest[-1] == "TARGET STARTED"
    assert all(len(line) <= 80 for line in done.stderr.splitlines())


@pytest.mark.slow_every_mlx
def test_strict_stops_on_a_failing_patch_and_plain_run_goes_on(tmp_path: Path) -> None:
    site = plugin_site(tmp_path, FAILING_PATCH, "always_fails")
    script = _script(tmp_path, "print('target ran')\n")
    plain = _run(tmp_path, "--report", script, site=site)
    assert plain.returncode == 0 and "target ran" in plain.stdout
    assert "failed: always_fails" in plain.stderr
    strict = _run(tmp_path, "--strict", script, site=site)
    assert strict.returncode == 2 and "target ran" not in strict.stdout
    assert "always_fails" in strict.stderr and "Traceback" not in strict.stderr


def test_run_help_names_the_switches_and_the_docs_url(tmp_path: Path) -> None:
    done = _run(tmp_path, "--help")
    assert done.returncode == 0
    for word in ("--backend", "--disable", "--strict", "--report", "-m MODULE", "https://"):
        assert word in done.stdout
    assert "docs/cli.md" not in done.stdout


@pytest.mark.slow
def test_mlx_lm_subcommand_form_runs_without_deprecation_warnings(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The documented form: ``run -m mlx_lm generate`` (not the deprecated ``mlx_lm.generate``)."""
    done = _run(
        tmp_path,
        "--report",
        "-m",
        "mlx_lm",
        "generate",
        "--model",
        str(tiny_model_dir),
        "--prompt",
        "hi",
        "--max-tokens",
        "8",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Generation: 8 tokens" in done.stdout
    assert "deprecated" not in done.stderr.lower()
    assert done.stderr.startswith("mlx-portable ")


@pytest.mark.parametrize(
    "argv",
    [
        ["job.py", "--", "x"],
        ["--", "job.py", "--", "y"],
        ["-m", "job", "--", "z", "--help"],
        ["-mjob", "-", "--"],
    ],
)
@pytest.mark.slow_every_mlx
def test_target_sees_the_argv_python_gives_it(tmp_path: Path, argv: list[str]) -> None:
    code = "import json, sys; print(json.dumps(sys.argv[1:]))\n"
    _script(tmp_path, code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLX_PORTABLE")}
    plain = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    ours = _run(tmp_path, *argv)
    assert plain.returncode == ours.returncode == 0, plain.stderr + ours.stderr
    assert json.loads(ours.stdout) == json.loads(plain.stdout)
