"""``mlx-portable doctor`` as a new user reads it: one screen, whole words, each thing said once.

- at most 25 lines at 80 columns without problems (this runs on every mlx of
  the compatibility matrix: a dozen patches applied on 0.26.5 become one
  wrapped list of names);
- a cut description ends at a word, never inside one;
- a bad setting does not change how many patches are listed;
- a variable's warning is shown once, under environment;
- when mlx-lm is installed and patches apply, the next step says how to
  run it patched, because a plain ``python -m mlx_lm`` is not.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from helpers.subproc import REPO, child_env, run_python

from mlx_portable.registry.builtin import builtin_patches


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLX_") and k != "NO_COLOR"}
    clean.pop("PYTHONPATH", None)
    return child_env(base=clean, **{"COLUMNS": "80", **(extra or {})})


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_python(None, "doctor", *args, module="mlx_portable", env=env or _env(), timeout=300, cwd=REPO)


@pytest.mark.slow_every_mlx
def test_plain_doctor_fits_one_screen() -> None:
    done = doctor()
    data = json.loads(doctor("--json").stdout)
    if data["status"] not in ("ok", "warnings"):
        pytest.skip(f"doctor finds problems here ({data['problems']}): the report is longer on purpose")
    lines = done.stdout.splitlines()
    assert len(lines) <= 25, done.stdout
    fitting = [line for line in lines if data["platform"]["executable"] not in line]
    assert max(len(line) for line in fitting) <= 80


@pytest.mark.slow_every_mlx
def test_cut_descriptions_end_at_a_word() -> None:
    data = json.loads(doctor("--json").stdout)
    reasons = {
        p["name"]: p.get("reason") or p["summary"] for p in data["patches"] if p["status"] == "applied"
    }
    cut = 0
    for line in doctor().stdout.splitlines():
        match = re.match(r"^  (\w+)\s+(.*)\.\.\.$", line)
        if match is None or match[1] not in reasons:
            continue
        full, shown = reasons[match[1]], match[2]
        assert full.startswith(shown), (shown, full)
        rest = full[len(shown) :]
        assert rest[:1] in (" ", ",", ";", ":", "(", ""), f"cut inside a word: {line!r} ({full!r})"
        cut += 1
    if not cut and not any(len(r) > 50 for r in reasons.values()):
        pytest.skip("no applied patch's description is long enough to be cut here")


@pytest.mark.slow_every_mlx
def test_a_bad_backend_setting_lists_every_patch() -> None:
    good = json.loads(doctor("--json").stdout)
    bad = json.loads(doctor("--json", env=_env({"MLX_PORTABLE_BACKEND": "banana"})).stdout)
    assert bad["status"] == "error" and "banana" in bad["activation_error"]
    builtin = {p.name for p in builtin_patches()}
    assert builtin <= {p["name"] for p in bad["patches"]}
    assert len(bad["patches"]) == len(good["patches"])
    undecided = [p for p in bad["patches"] if p["reason"].startswith("not decided")]
    assert undecided and all(p["status"] == "skipped" for p in undecided)
    text = doctor(env=_env({"MLX_PORTABLE_BACKEND": "banana"})).stdout
    counts = re.search(r"(\d+) applied, (\d+) waiting, (\d+) not needed", text)
    assert counts is not None and sum(int(n) for n in counts.groups()) == len(good["patches"])


@pytest.mark.slow_every_mlx
def test_a_setting_warning_is_said_once() -> None:
    env = _env({"MLX_PORTABLE_BAKEND": "cpu"})
    done = doctor(env=env)
    flat = " ".join(done.stdout.split())
    assert flat.count("did you mean MLX_PORTABLE_BACKEND?") == 1, done.stdout
    assert "fix or unset MLX_PORTABLE_BAKEND (see environment above)" in flat
    # The JSON keeps the whole sentence among the next steps, for scripts.
    data = json.loads(doctor("--json", env=env).stdout)
    assert any("did you mean MLX_PORTABLE_BACKEND?" in step for step in data["next_steps"])


@pytest.mark.slow_every_mlx
def test_a_bad_setting_is_one_line_on_stderr_without_internal_paths() -> None:
    done = doctor(env=_env({"MLX_PORTABLE_BACKEND": "banana"}))
    assert done.stderr.count("\n") == 1 and "banana" in done.stderr, done.stderr
    assert "mlx_portable/" not in done.stderr and "_bootstrap" not in done.stderr
    flat = " ".join(done.stdout.split())
    assert flat.count("names unknown backend(s) 'banana'") == 1, done.stdout
    assert "fix the setting named at 'backend' above, or unset it" in flat


def test_a_library_user_sees_the_warning_at_their_import_line(tmp_path: os.PathLike[str]) -> None:
    script = os.path.join(tmp_path, "user_program.py")
    with open(script, "w", encoding="utf-8") as fh:
        fh.write("import os\nimport mlx_portable\n")
    done = subprocess.run(
        [sys.executable, script], env=_env({"MLX_PORTABLE_BACKEND": "banana"}),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0
    assert done.stderr.startswith(f"{script}:2: PortabilityWarning: mlx-portable: MLX_PORTABLE_BACKEND="), (
        done.stderr
    )
    assert "mlx_portable/__init__.py" not in done.stderr and "_bootstrap" not in done.stderr


def _mlx_lm_fails_unpatched() -> bool | None:
    """Whether ``import mlx_lm.generate`` fails here without mlx-portable (None: no mlx-lm)."""
    probe = run_python(
        "import importlib.util, sys\n"
        "if importlib.util.find_spec('mlx_lm') is None: sys.exit(3)\n"
        "import mlx_lm.generate\n",
        env=_env({"MLX_PORTABLE": "0"}),
    )
    return None if probe.returncode == 3 else probe.returncode != 0


@pytest.mark.slow_every_mlx
def test_the_next_step_says_how_to_run_mlx_lm_patched() -> None:
    fails = _mlx_lm_fails_unpatched()
    if fails is None:
        pytest.skip("mlx-lm is not installed")
    data = json.loads(doctor("--json").stdout)
    step = next((s for s in data["next_steps"] if "mlx-portable run -m mlx_lm" in s), None)
    patched = any(p["status"] == "applied" for p in data["patches"])
    if fails:
        # The case a plain "ok" hid: mlx-lm cannot even be imported here without the patches.
        assert step is not None, data["next_steps"]
    if patched:
        assert step is not None and "MLX_PORTABLE_AUTOACTIVATE=1" in step and "import mlx_portable" in step
    # Already switched on for every process: nothing to tell.
    switched = json.loads(doctor("--json", env=_env({"MLX_PORTABLE_AUTOACTIVATE": "1"})).stdout)
    assert not any("mlx-portable run -m mlx_lm" in s for s in switched["next_steps"])


def _hint(python: str, path: str) -> str:
    code = "from mlx_portable.install_hint import install_command; print(install_command())"
    env = child_env(PATH=path)
    done = subprocess.run(
        [python, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


@pytest.mark.slow_every_mlx
def test_install_hints_name_the_installer_of_this_interpreter(tmp_path: os.PathLike[str]) -> None:
    """A uv venv has no pip; a ``pip`` elsewhere on PATH installs into another interpreter."""
    from helpers.tool_paths import uv_binary

    here = os.path.dirname(sys.executable)
    # This environment's pip first on PATH: the short form.
    assert _hint(sys.executable, here + os.pathsep + "/usr/bin:/bin").startswith("pip install ")
    # Not on PATH (the README runs .venv/bin/python without activating the venv): this python's pip.
    assert _hint(sys.executable, "/nonexistent").startswith(f"{sys.executable} -m pip install ")
    uv = uv_binary()
    if uv is None:
        pytest.skip("uv is not installed")
    venv = os.path.join(tmp_path, "uv-venv")
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, venv], check=True, timeout=120)
    python = os.path.join(venv, "bin", "python")
    assert _hint(python, "/usr/bin:/bin") == f'uv pip install --python {python} "mlx[cpu]"' or (
        sys.platform == "darwin"
    )
    # What a new user sees there: doctor without mlx names that command.
    done = subprocess.run(
        [python, "-m", "mlx_portable", "doctor"], env=child_env(COLUMNS="200"),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"install mlx: uv pip install --python {python} " in " ".join(done.stdout.split()), done.stdout


@pytest.mark.slow_every_mlx
def test_two_dozen_applied_patches_and_a_long_path_still_fit_one_screen() -> None:
    """mlx 0.27.1 in a CI checkout: 25 applied names and a venv path that wraps.

    Listed whole, the names took five lines and the report 26 (one over); the
    plain report now names what fits in three lines and counts the rest.
    """
    from mlx_portable.cli.doctor_text import MAX_LINES, render_text

    data = json.loads(doctor("--json").stdout)
    if data["status"] not in ("ok", "warnings"):
        pytest.skip(f"doctor finds problems here ({data['problems']}): the report is longer on purpose")
    patches = [{**p, "status": "applied"} for p in data["patches"]]
    assert len(patches) >= 30
    deep = "/check/work/main/.mlx-portable/matrix/mlx0.27.1-cpu-lm0.32.2-py3.11/bin/python"
    report = {**data, "patches": patches, "platform": {**data["platform"], "executable": deep}}
    lines = render_text(report, width=80).splitlines()
    assert len(lines) <= MAX_LINES, "\n".join(lines)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"applied ({len(patches)}):"))
    block = " ".join(lines[start : start + 3])
    shown = re.findall(r"\b(\w+)(?:,|$)", block.split(":", 1)[1])
    more = re.search(r"and (\d+) more \(-v\)$", block)
    assert more is not None, block
    assert not lines[start + 3].strip()
    named = [p["name"] for p in patches if p["name"] in shown]
    assert len(named) + int(more[1]) == len(patches), block
