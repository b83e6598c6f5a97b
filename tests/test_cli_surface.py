"""doctor's summary, groups, width and Markdown form; findings that must surface; check --json."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.plugin_site import BROKEN_MODULE, FAILING_PATCH, plugin_site
from helpers.subproc import REPO, child_env, run_python

from mlx_portable.cli.links import DOCS_URL, ISSUES_URL


def _env(extra: dict[str, str] | None = None, *, path: list[Path] | None = None) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLX_") and k != "NO_COLOR"}
    clean.pop("PYTHONPATH", None)
    return child_env(*(path or []), base=clean, **{"COLUMNS": "80", **(extra or {})})


def cli(
    *args: str, env: dict[str, str] | None = None, flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return run_python(
        None, *args, module="mlx_portable", env=env or _env(), interpreter_args=flags, timeout=300, cwd=REPO
    )


# -- doctor's text ---------------------------------------------------------------


@pytest.mark.slow_every_mlx
def test_doctor_leads_with_the_status_and_counts_and_fits_80_columns() -> None:
    data = json.loads(cli("doctor", "--json").stdout)
    done = cli("doctor")
    lines = done.stdout.splitlines()
    assert lines[0] == "mlx-portable doctor: " + {"ok": "ok", "warnings": "ok, with warnings"}.get(
        data["status"], data["status"]
    )
    counts = re.search(r"(\d+) applied, (\d+) waiting, (\d+) not needed", lines[1])
    assert counts is not None, lines[1]
    statuses = [p["status"] for p in data["patches"]]
    assert int(counts[1]) == statuses.count("applied")
    assert int(counts[2]) == statuses.count("deferred") + statuses.count("pending")
    assert int(counts[3]) == statuses.count("obsolete") + statuses.count("skipped")
    # Long words are not broken: the interpreter's path may stand alone on a longer line.
    fitting = [line for line in lines if data["platform"]["executable"] not in line]
    assert max(len(line) for line in fitting) <= 80, [line for line in fitting if len(line) > 80]
    # Waiting and not-needed patches are collapsed to their counts; -v lists each with its reason.
    not_needed = [p for p in data["patches"] if p["status"] in ("obsolete", "skipped")]
    assert f"{len(not_needed)} not needed (doctor -v: each, and why)" in done.stdout
    verbose = cli("doctor", "-v").stdout
    for entry in not_needed:
        assert re.search(rf"^  {entry['name']}\s+{entry['status']}: ", verbose, re.MULTILINE), entry["name"]


@pytest.mark.slow_every_mlx
def test_doctor_wraps_to_a_wider_terminal() -> None:
    wide = cli("doctor", "-v", env=_env({"COLUMNS": "100"})).stdout.splitlines()
    narrow = cli("doctor", "-v").stdout.splitlines()
    assert max(len(line) for line in wide if sys.executable not in line) <= 100
    assert len(wide) <= len(narrow)


@pytest.mark.slow_every_mlx
def test_waiting_patches_say_what_will_happen() -> None:
    data = json.loads(cli("doctor", "--json").stdout)
    waiting = [p for p in data["patches"] if p["status"] == "deferred"]
    if not waiting:
        pytest.skip("no patch waits for an import here")
    text = cli("doctor", "-v").stdout
    for entry in waiting:
        # what it will do, then when
        when = f"when {entry['module']} is imported: applied then, if still needed"
        said = f"{entry['summary'].rstrip('.')}; {when}"
        assert said in " ".join(text.split())


@pytest.mark.slow_every_mlx
def test_markdown_form_for_a_bug_report() -> None:
    data = json.loads(cli("doctor", "--json").stdout)
    done = cli("doctor", "--markdown")
    assert done.returncode in (0, 1), done.stderr
    md = done.stdout
    assert md.startswith("### mlx-portable doctor\n")
    assert "<details><summary>patches: " in md and "</details>" in md
    for entry in data["patches"]:
        assert f"| `{entry['name']}` | {entry['status']} |" in md
    assert f"| `mlx` | {data['versions']['mlx']} |" in md
    assert ISSUES_URL + "/new" in done.stderr and ISSUES_URL not in md
    assert cli("doctor", "--issue").stdout.splitlines()[:3] == md.splitlines()[:3]


# -- what must surface -------------------------------------------------------------


@pytest.mark.slow_every_mlx
def test_a_plugin_that_fails_to_load_is_a_problem_everywhere(tmp_path: Path) -> None:
    site = plugin_site(tmp_path, BROKEN_MODULE, "anything")
    env = _env(path=[site])
    data = json.loads(cli("doctor", "--json", env=env).stdout)
    assert data["status"] == "problems"
    assert any(
        "patch plugin 'mp_site_plugin'" in p and "this plugin module is broken" in p for p in data["problems"]
    )
    assert any("uninstall the package" in s for s in data["next_steps"])
    text = cli("doctor", env=env)
    assert text.returncode == 1
    assert text.stdout.startswith("mlx-portable doctor: problems")
    assert "problem: the patch plugin 'mp_site_plugin'" in text.stdout
    assert "patch plugin" in cli("doctor", "--markdown", env=env).stdout


@pytest.mark.slow_every_mlx
def test_a_failing_plugin_patch_is_one_problem_with_one_fix(tmp_path: Path) -> None:
    env = _env(path=[plugin_site(tmp_path, FAILING_PATCH, "always_fails")])
    data = json.loads(cli("doctor", "--json", env=env).stdout)
    assert data["status"] == "problems"
    assert [p for p in data["problems"] if "always_fails" in p] == [
        "patch always_fails failed: RuntimeError: this patch always fails"
    ]
    (step,) = [s for s in data["next_steps"] if "always_fails" in s]
    assert "MLX_PORTABLE_DISABLE=always_fails" in step and ISSUES_URL in step
    text = cli("doctor", env=env).stdout
    assert re.search(r"^failed \(1\)\n  always_fails\s+RuntimeError: this patch always fails$", text, re.M)


def _mismatched_site(root: Path) -> Path:
    """mlx 0.32.4 beside mlx-cpu 0.32.0: its bindings fail as the real ones do."""
    site = root / "mm"
    (site / "mlx").mkdir(parents=True)
    (site / "mlx" / "__init__.py").write_text("", encoding="utf-8")
    (site / "mlx" / "core.py").write_text(
        'raise ImportError("/x/mlx/core.so: undefined symbol: _ZN3mlx4core5array")\n',
        encoding="utf-8",
    )
    for dist, name, version in (("mlx", "mlx", "0.32.4"), ("mlx_cpu", "mlx-cpu", "0.32.0")):
        info = site / f"{dist}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
    return site


@pytest.mark.skipif(sys.platform != "linux", reason="the mlx-cpu backend package exists on Linux")
@pytest.mark.slow_every_mlx
def test_mismatched_mlx_and_backend_package_one_fix_command(tmp_path: Path) -> None:
    env = _env(path=[_mismatched_site(tmp_path)])
    done = cli("doctor", "--json", env=env, flags=("-S",))
    assert done.returncode == 2  # mlx cannot be used at all
    data = json.loads(done.stdout)
    assert data["status"] == "error"
    assert data["version_mismatch"] and "mlx 0.32.4 and mlx-cpu 0.32.0" in data["version_mismatch"]
    fix = 'pip install "mlx==0.32.4" "mlx-cpu==0.32.4"'
    assert len(data["next_steps"]) == 1 and fix in data["next_steps"][0]
    shown = "\n".join([*data["next_steps"], data["mlx_error"]])
    assert shown.count("pip install") == shown.count(fix)  # one command, wherever it is shown
    check = cli("check", "--json", env=env, flags=("-S",))
    assert check.returncode == 2 and fix in json.loads(check.stdout)["error"]


# -- check --json ----------------------------------------------------------------------


def test_check_json_is_json_when_mlx_is_missing() -> None:
    done = cli("check", "--json", flags=("-S",))
    assert done.returncode == 2
    doc = json.loads(done.stdout)
    assert doc["ok"] is False and doc["schema"] == 1 and "pip install" in doc["error"]
    assert "mlx is not installed" in done.stderr


@pytest.mark.slow_every_mlx
def test_check_json_is_json_when_a_setting_is_wrong() -> None:
    done = cli("check", "--json", env=_env({"MLX_PORTABLE_STRICT": "maybe"}))
    assert done.returncode == 2
    doc = json.loads(done.stdout)
    assert doc["ok"] is False and "MLX_PORTABLE_STRICT" in doc["error"]
    assert "Traceback" not in done.stderr


def test_check_json_is_json_without_mlx_lm(tmp_path: Path) -> None:
    import mlx
    import packaging

    site = tmp_path / "site"
    site.mkdir()
    for module in (mlx, packaging):
        (site / module.__name__).symlink_to(Path(next(iter(module.__path__))))
    done = cli("check", "--json", env=_env(path=[site]), flags=("-S",))
    assert done.returncode == 2, done.stderr
    doc = json.loads(done.stdout)
    assert doc["error"].endswith("pip install mlx-lm")


# -- addresses ---------------------------------------------------------------------


@pytest.mark.slow_every_mlx
def test_project_urls_are_the_ones_the_command_line_names() -> None:
    tomllib = pytest.importorskip("tomllib")
    urls = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
    assert urls["Documentation"] == DOCS_URL and urls["Issues"] == ISSUES_URL
    assert {"Homepage", "Documentation", "Issues", "Changelog"} <= set(urls)
    help_text = cli("--help").stdout + cli("doctor", "--help").stdout + cli("check", "--help").stdout
    assert DOCS_URL in help_text and "docs/cli.md" not in help_text
    mkdocs = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    assert f"site_url: {DOCS_URL}" in mkdocs and f"repo_url: {urls['Homepage']}" in mkdocs


def test_cuda_status_recommends_a_cuda_build_only_where_a_driver_can_run_it() -> None:
    from mlx_portable.cuda import status as cuda
    from mlx_portable.install_hint import nvidia_driver_version

    if cuda.cuda_backend_package() is not None:
        pytest.skip("a CUDA backend package is installed here")
    steps = cuda.cuda_status()["next_steps"]
    if nvidia_driver_version() is None:
        assert not any("cuda" in str(step) for step in steps), steps
    else:
        assert any("mlx[cuda1" in str(step) for step in steps), steps


@pytest.mark.slow  # imports mlx_lm.generate (transformers): several seconds
def test_doctor_imports_resolves_every_waiting_patch_whose_module_is_installed() -> None:
    import importlib.util

    def installed(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            return False

    before = json.loads(cli("doctor", "--json").stdout)
    waiting = {p["name"]: p["module"] for p in before["patches"] if p["status"] == "deferred"}
    if not any(installed(m) for m in waiting.values()):
        pytest.skip("no module a patch waits for is installed here")
    after = json.loads(cli("doctor", "--json", "--imports").stdout)
    status = {p["name"]: p["status"] for p in after["patches"]}
    for name, module in waiting.items():
        assert (status[name] == "deferred") == (not installed(module)), (name, module, status[name])
    assert not [w for w in after["warnings"] if w.startswith("importing ")]
