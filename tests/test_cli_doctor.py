"""``mlx-portable doctor``: the real report on this machine, its JSON schema, and its findings.

Each case runs the command in a fresh interpreter (activation changes the
process).  The CUDA section and the version-mismatch warning are fed from
stand-ins where this CPU machine cannot produce them; those tests say
"simulated".
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers import subproc
from helpers.subproc import child_env

REPO = Path(__file__).resolve().parents[1]

#: The documented top-level keys of ``doctor --json`` (docs/cli.md), with their types.
DOCTOR_KEYS: dict[str, tuple[type, ...]] = {
    "schema": (int,),
    "status": (str,),
    "platform": (dict,),
    "versions": (dict,),
    "version_mismatch": (dict, type(None)),
    "mlx_error": (str, type(None)),
    "activation_error": (str, type(None)),
    "active": (bool,),
    "enabled": (bool,),
    "backend": (str, type(None)),
    "backend_forced": (bool,),
    "device": (dict, type(None)),
    "probes": (list,),
    "patches": (list,),
    "cuda": (dict, type(None)),
    "blas": (dict, type(None)),
    "environment": (list,),
    "details": (dict,),
    "warnings": (list,),
    "problems": (list,),
    "next_steps": (list,),
}
PATCH_STATUSES = {"applied", "skipped", "failed", "deferred", "obsolete", "pending"}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return child_env(clear=("MLX_", "NO_COLOR"), inherit_path=False, **(extra or {}))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subproc.run_python(None, *args, module="mlx_portable", env=_env(env), cwd=REPO, timeout=120)


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subproc.run_python(textwrap.dedent(code), env=_env(env), cwd=REPO, timeout=120)


def doctor_json(env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    done = run_cli("doctor", "--json", env=env)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def _documented_keys(section: str) -> list[str]:
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    block = text.split(f"<!-- {section}:start -->")[1].split(f"<!-- {section}:end -->")[0]
    return re.findall(r"^\| `([a-z0-9_]+)` \|", block, flags=re.MULTILINE)


# -- the real report -----------------------------------------------------------


@pytest.mark.slow_every_mlx
def test_doctor_json_schema_is_pinned_and_documented() -> None:
    code, data = doctor_json()
    assert list(data) == list(DOCTOR_KEYS)
    assert _documented_keys("doctor-schema") == list(DOCTOR_KEYS)
    for key, types in DOCTOR_KEYS.items():
        assert isinstance(data[key], types), (key, data[key])
    assert data["schema"] == 1
    assert data["status"] in ("ok", "warnings", "problems")
    assert code == (1 if data["status"] == "problems" else 0)
    assert data["backend"] in ("metal", "cuda", "cpu")
    assert data["platform"]["python"] == sys.version.split()[0]
    assert data["versions"]["mlx"] and "mlx-lm" in data["versions"]
    assert [p["name"] for p in data["probes"]] == ["metal", "cuda", "cpu"]
    for probe in data["probes"]:
        assert set(probe) == {"name", "available", "reason", "remedy"}
        assert probe["reason"]
    for patch in data["patches"]:
        assert {"name", "status", "summary", "reason"} <= set(patch)
        assert patch["status"] in PATCH_STATUSES
    assert {"backend", "device_name", "architecture", "memory_size", "raw"} <= set(data["device"])
    assert data["device"]["backend"] == data["backend"]
    for entry in data["environment"]:
        assert set(entry) == {"name", "value", "scope", "meaning", "warning", "set_by"}
    assert data["next_steps"][-1] == "prove the backend computes correctly: mlx-portable check"


@pytest.mark.slow_every_mlx
def test_doctor_text_shows_every_section_probe_and_patch() -> None:
    _, data = doctor_json()
    done = run_cli("doctor", "-v")
    assert done.returncode in (0, 1), done.stderr
    text = done.stdout
    for label in ("platform", "python", "packages", "backend", "probes", "environment", "next steps?"):
        assert re.search(rf"^{label}\b", text, flags=re.MULTILINE), label
    assert re.search(rf"^backend +{data['backend']} \(chosen automatically\)", text, re.MULTILINE)
    flat = " ".join(text.split())
    for probe in data["probes"]:
        mark = "yes" if probe["available"] else "no"
        assert f"{probe['name']} {mark}: {' '.join(probe['reason'].split())}" in flat
    for patch in data["patches"]:
        assert re.search(rf"^  {patch['name']}\s", text, re.MULTILINE), patch["name"]
    assert f"mlx {data['versions']['mlx']}" in text
    assert "\x1b[" not in text  # not a terminal: no colour


@pytest.mark.slow_every_mlx
def test_doctor_on_the_cpu_backend_says_the_cpu_was_chosen() -> None:
    _, data = doctor_json()
    if data["backend"] != "cpu":
        pytest.skip("a GPU backend is active here")
    assert data["device"]["memory_size"] and data["device"]["memory_size"] > 0
    assert data["probes"][2] == {
        "name": "cpu",
        "available": True,
        "reason": "the CPU backend is always available",
        "remedy": "",
    }


@pytest.mark.skipif(sys.platform == "darwin", reason="MLX_METAL_FAST_SYNCH is read on macOS")
@pytest.mark.slow_every_mlx
def test_metal_variable_on_linux_warns_and_suggests_unsetting_it() -> None:
    code, data = doctor_json({"MLX_METAL_FAST_SYNCH": "1", "MLX_DISABLE_COMPILE": "1"})
    entries = {e["name"]: e for e in data["environment"]}
    assert entries["MLX_METAL_FAST_SYNCH"]["scope"] == "metal"
    assert "read only by the Metal backend" in entries["MLX_METAL_FAST_SYNCH"]["warning"]
    assert entries["MLX_DISABLE_COMPILE"]["warning"] is None  # read by every backend
    assert data["status"] == "warnings" and code == 0
    assert any(s.startswith("unset MLX_METAL_FAST_SYNCH") for s in data["next_steps"])
    text = run_cli("doctor", env={"MLX_METAL_FAST_SYNCH": "1"}).stdout
    assert "MLX_METAL_FAST_SYNCH=1" in text
    assert "! MLX_METAL_FAST_SYNCH is read only by the Metal backend" in text
    assert text.startswith("mlx-portable doctor: ok, with warnings\n")


@pytest.mark.slow_every_mlx
def test_misspelt_mlx_portable_variable_is_flagged() -> None:
    _, data = doctor_json({"MLX_PORTABLE_BACKENDS": "cpu", "MLX_PORTABLE_SOMETHING_NEW": "1"})
    entries = {e["name"]: e for e in data["environment"]}
    assert entries["MLX_PORTABLE_BACKENDS"]["warning"] == (
        "MLX_PORTABLE_BACKENDS is not a variable mlx-portable reads: did you mean MLX_PORTABLE_BACKEND?"
    )
    # Unknown but not close to a known name: listed, not flagged.
    assert entries["MLX_PORTABLE_SOMETHING_NEW"]["warning"] is None
    assert entries["MLX_PORTABLE_BACKENDS"]["warning"] in data["next_steps"]


@pytest.mark.slow_every_mlx
def test_forced_backend_that_is_missing_exits_2_with_the_remedy() -> None:
    code, data = doctor_json({"MLX_PORTABLE_BACKEND": "cuda" if sys.platform != "darwin" else "metal,cuda"})
    if data["activation_error"] is None:
        pytest.skip("the forced backend is available here")
    assert code == 2 and data["status"] == "error"
    assert "MLX_PORTABLE_BACKEND" in data["activation_error"]
    assert data["backend"] is None
    assert [p["name"] for p in data["probes"]] == ["metal", "cuda", "cpu"]
    assert data["next_steps"][0].startswith("fix the setting: MLX_PORTABLE_BACKEND")
    text = run_cli("doctor", env={"MLX_PORTABLE_BACKEND": "cuda"})
    assert text.returncode == 2 and re.search(r"^backend +none: MLX_PORTABLE_BACKEND", text.stdout, re.M)
    assert "Traceback" not in text.stderr


@pytest.mark.slow_every_mlx
def test_bad_setting_exits_2_without_a_traceback() -> None:
    done = run_cli("doctor", env={"MLX_PORTABLE_STRICT": "maybe"})
    assert done.returncode == 2
    assert "MLX_PORTABLE_STRICT='maybe'" in done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.slow_every_mlx
def test_failing_patch_is_a_problem_with_exit_1() -> None:
    done = run_python(
        """
        import sys, warnings
        import mlx_portable
        from mlx_portable import Patch
        def broken(ctx):
            raise RuntimeError("boom from a test patch")
        mlx_portable.register(Patch(name="test_broken", summary="always fails", why="test", apply=broken))
        warnings.simplefilter("ignore")
        from mlx_portable.cli import main
        sys.exit(main(["doctor"]))
        """
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(
        r"^failed \(1\)\n  test_broken\s+RuntimeError: boom from a test patch$", done.stdout, re.MULTILINE
    )
    assert "problem: patch test_broken failed: RuntimeError: boom from a test patch" in done.stdout
    assert "MLX_PORTABLE_DISABLE=test_broken" in done.stdout
    assert done.stdout.startswith("mlx-portable doctor: problems\n")


@pytest.mark.slow_every_mlx
def test_variable_set_by_a_patch_is_marked_as_such() -> None:
    done = run_python(
        """
        import json, sys
        import mlx_portable
        from mlx_portable import Patch
        def apply(ctx):
            ctx.set_env("MLX_BFS_MAX_WIDTH", "30")
        mlx_portable.register(Patch(name="test_sets_env", summary="sets a variable", why="test", apply=apply))
        from mlx_portable.cli import doctor
        data = doctor.gather()
        print(json.dumps([e for e in data["environment"] if e["name"] == "MLX_BFS_MAX_WIDTH"]))
        """
    )
    assert done.returncode == 0, done.stderr
    (entry,) = json.loads(done.stdout.strip().splitlines()[-1])
    assert entry["value"] == "30" and entry["set_by"] == "test_sets_env"


@pytest.mark.slow_every_mlx
def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    pty = pytest.importorskip("pty")

    def through_pty(extra: dict[str, str]) -> str:
        leader, follower = pty.openpty()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mlx_portable", "doctor"],
                stdout=follower,
                stderr=subprocess.DEVNULL,
                env=_env(extra),
                cwd=REPO,
            )
            os.close(follower)
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the follower side closed
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            proc.wait(timeout=120)
        finally:
            os.close(leader)
        return b"".join(chunks).decode()

    coloured = through_pty({})
    assert "\x1b[1m" in coloured and "platform" in coloured
    plain = through_pty({"NO_COLOR": "1"})
    assert "\x1b[" not in plain and "platform" in plain


# -- sections fed by other modules (simulated inputs) -------------------------


@pytest.mark.slow_every_mlx
def test_cuda_section_and_version_mismatch_are_rendered_simulated() -> None:
    done = run_python(
        """
        import json, sys
        from mlx_portable.cli import doctor
        status = {
            "libraries": {"found": ["/site/nvidia/cublas/lib"], "missing": [
                {"library": "libcudnn.so.9", "package": "nvidia-cudnn-cu13"}]},
            "headers": "/site/nvidia/cuda_runtime/include",
            "next_steps": ["pip install nvidia-cudnn-cu13"],
        }
        mismatch = ("mlx 0.32.0 and mlx-cpu 0.31.2 are installed at different versions: "
                    'Fix: pip install "mlx==0.32.0" "mlx-cpu==0.32.0"')
        fake = {"cuda_status": status, "backend_package_mismatch": mismatch}
        doctor.optional_function = lambda module, name: (lambda: fake[name], None)
        doctor._cuda_applies = lambda data: True
        data = doctor.gather()
        print(json.dumps(data))
        print(doctor.render_text(data))
        """
    )
    assert done.returncode == 0, done.stderr
    first, _, text = done.stdout.partition("\n")
    data = json.loads(first)
    assert data["cuda"]["headers"] == "/site/nvidia/cuda_runtime/include"
    assert data["version_mismatch"].startswith("mlx 0.32.0 and mlx-cpu 0.31.2")
    assert data["status"] == "problems"
    assert data["problems"] == [data["version_mismatch"]]
    assert data["version_mismatch"] in data["next_steps"]
    assert "pip install nvidia-cudnn-cu13" in data["next_steps"]
    assert re.search(r"^cuda$", text, re.MULTILINE)
    assert re.search(r"^  headers\s+/site/nvidia/cuda_runtime/include$", text, re.MULTILINE)
    assert "library=libcudnn.so.9, package=nvidia-cudnn-cu13" in text
    assert "  ! mlx 0.32.0 and mlx-cpu 0.31.2 are installed at different versions" in text


@pytest.mark.slow_every_mlx
def test_a_failing_optional_section_is_reported_in_place_simulated() -> None:
    done = run_python(
        """
        import json
        from mlx_portable.cli import doctor
        def boom():
            raise OSError("cannot read /proc")
        doctor.optional_function = lambda module, name: (boom, None)
        doctor._cuda_applies = lambda data: True
        print(json.dumps(doctor.gather()))
        """
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout.strip().splitlines()[-1])
    assert data["cuda"] == {"error": "OSError: cannot read /proc"}
    assert "the mlx version check failed: OSError: cannot read /proc" in data["warnings"]


def _fake_cuda_site(root: Path, version: str) -> Path:
    """A site folder as ``pip install mlx-cuda-13`` leaves it, without the heavy files."""
    info = root / f"mlx_cuda_13-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: mlx-cuda-13\nVersion: {version}\n"
        "Requires-Dist: nvidia-cublas\nRequires-Dist: nvidia-cudnn-cu13\n\n",
        encoding="utf-8",
    )
    lib = root / "nvidia" / "cublas" / "lib"
    lib.mkdir(parents=True)
    (lib / "libcublas.so.13").write_bytes(b"")
    (root / "nvidia_cublas-13.1.0.3.dist-info").mkdir()  # the wheel's record: its folders are trusted
    return root


@pytest.mark.skipif(sys.platform != "linux", reason="mlx's CUDA packages exist only on Linux")
@pytest.mark.slow_every_mlx
def test_cuda_package_at_another_version_than_mlx_simulated(tmp_path: Path) -> None:
    """A CUDA backend package beside this mlx, at another version: the real status and version checks."""
    from importlib.metadata import version

    mlx_version = version("mlx")
    other = "0.30.0" if mlx_version != "0.30.0" else "0.31.2"
    site = _fake_cuda_site(tmp_path / "site", other)
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(site)])}
    code, data = doctor_json(env)
    assert data["versions"]["mlx-cuda-13"] == other
    assert data["cuda"]["backend_package"]["name"] == "mlx-cuda-13"
    assert str(site / "nvidia" / "cublas" / "lib") in data["cuda"]["library_folders"]
    mismatch = data["version_mismatch"]
    assert f"mlx {mlx_version} and mlx-cuda-13 {other} are installed at different versions" in mismatch
    assert f'pip install "mlx=={mlx_version}" "mlx-cuda-13=={mlx_version}"' in mismatch
    assert code == 1 and data["status"] == "problems"
    assert mismatch in data["next_steps"] and data["next_steps"].count(mismatch) == 1
    text = run_cli("doctor", env=env).stdout
    assert re.search(r"^cuda$", text, re.MULTILINE)
    assert re.search(
        r"^  library folders\s+" + re.escape(str(site / "nvidia" / "cublas" / "lib")), text, re.MULTILINE
    )
    assert f"  ! mlx {mlx_version} and mlx-cuda-13 {other}" in text
    assert text.startswith("mlx-portable doctor: problems\n")
