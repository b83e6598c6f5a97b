"""``mlx-portable check``: the real self-test on this machine, and its disagreement path.

The real check builds the tiny model and runs it on the active backend and on
the CPU (on this CPU-only machine: CPU against CPU).  To prove that a backend
that computes wrongly is caught, the runner is swapped for one that perturbs
the candidate's output, as a faulty GPU kernel would.
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

from mlx_portable.cli.check import TF32_TOLERANCE, TOLERANCES, ModelRun, compare, tolerance_for

REPO = Path(__file__).resolve().parents[1]

CHECK_KEYS = [
    "schema",
    "ok",
    "summary",
    "backend",
    "device",
    "reference_device",
    "cpu_against_cpu",
    "dtype",
    "tf32",
    "model",
    "logits",
    "tokens",
    "speed",
    "gemm",
    "messages",
]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return child_env(clear=("MLX_", "NO_COLOR"), inherit_path=False, **(extra or {}))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subproc.run_python(
        None, "check", *args, module="mlx_portable", env=_env(env), cwd=REPO, timeout=300
    )


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subproc.run_python(textwrap.dedent(code), env=_env(), cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def check_json() -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    pytest.importorskip("mlx_lm")
    done = run_cli("--json")
    assert done.stdout, done.stderr
    return done, json.loads(done.stdout)


def _documented_keys(section: str) -> list[str]:
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    block = text.split(f"<!-- {section}:start -->")[1].split(f"<!-- {section}:end -->")[0]
    return re.findall(r"^\| `([a-z0-9_]+)` \|", block, flags=re.MULTILINE)


# -- the real check ------------------------------------------------------------


@pytest.mark.slow
def test_check_agrees_on_this_machine(
    check_json: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    done, data = check_json
    assert done.returncode == 0, done.stderr
    assert list(data) == CHECK_KEYS == _documented_keys("check-schema")
    assert data["ok"] is True and data["schema"] == 1
    assert data["dtype"] == "float32" and data["reference_device"] == "cpu"
    assert data["logits"]["ok"] and data["logits"]["max_rel_diff"] <= data["logits"]["tolerance"]
    assert data["tokens"]["ok"] and data["tokens"]["compared"] == 32
    assert len(data["tokens"]["reference"]) == 32
    # the tiny model does not collapse into one token
    assert len(set(data["tokens"]["reference"])) >= 8
    for run in ("candidate", "reference"):
        speed = data["speed"][run]
        assert speed["prefill_tokens_per_s"] > 0 and speed["decode_tokens_per_s"] > 0
        assert speed["prompt_tokens"] == data["model"]["prompt_tokens"] > 100
        # one run of the tiny model takes milliseconds: the speed is the best of several
        assert speed["timed_runs"] >= 3


@pytest.mark.slow
def test_check_on_the_cpu_backend_says_cpu_against_cpu(
    check_json: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    _, data = check_json
    if data["backend"] != "cpu":
        pytest.skip("a GPU backend is active here")
    assert data["cpu_against_cpu"] is True and data["device"] == "cpu"
    assert data["tf32"] is False and data["logits"]["tolerance"] == TOLERANCES["float32"]
    # Same device, same code: the two runs are bit-identical.
    assert data["logits"]["max_abs_diff"] == 0.0
    assert data["tokens"]["candidate"] == data["tokens"]["reference"]
    assert "CPU against CPU" in data["summary"]


@pytest.mark.slow
def test_check_text_report_and_progress() -> None:
    pytest.importorskip("mlx_lm")
    done = run_cli("--tokens", "8")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("mlx-portable check\n")
    assert re.search(r"^greedy tokens\s+8/8 identical\s+ok$", out, re.MULTILINE)
    assert re.search(r"^logits\s+max rel diff .* tolerance 0\.001\s+ok$", out, re.MULTILINE)
    assert re.search(r"^  \w+ \(candidate\)\s+[\d,]+\s+[\d,]+$", out, re.MULTILINE)
    assert "result: ok" in out
    assert re.search(r"^speed, the best of several runs", out, re.MULTILINE)
    too_wide = [line for line in out.splitlines() if len(line) > 80]
    assert not too_wide, too_wide
    # Not a terminal: progress comes as plain lines on stderr.
    assert "mlx-portable check: building the tiny model in memory\n" in done.stderr
    assert "mlx-portable check: comparing\n" in done.stderr
    quiet = run_cli("--tokens", "4", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""


@pytest.mark.parametrize(
    "args",
    [["--tokens", "5000"], ["--tokens", "x"], ["--dtype", "float64"], ["--bogus"]],
    ids=["tokens-range", "tokens-word", "dtype", "unknown"],
)
@pytest.mark.slow_every_mlx
def test_check_json_prints_one_json_object_on_a_usage_error(args: list[str]) -> None:
    """``--json`` promises one JSON object on stdout always, a refused argument included."""
    done = run_cli("--json", *args)
    assert done.returncode == 2
    data = json.loads(done.stdout)
    assert data["ok"] is False and data["schema"] == 1
    assert data["summary"] == "the check could not run"
    assert "mlx-portable check: error:" in done.stderr
    assert data["error"] in done.stderr
    plain = run_cli(*args)
    assert plain.returncode == 2 and plain.stdout == ""


@pytest.mark.slow
def test_check_in_bfloat16() -> None:
    pytest.importorskip("mlx_lm")
    done = run_cli("--json", "--dtype", "bfloat16", "--tokens", "8", "-q")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["dtype"] == "bfloat16" and data["logits"]["tolerance"] == TOLERANCES["bfloat16"]


# -- the disagreement path ---------------------------------------------------

_PERTURBED = """
import sys
from mlx_portable.cli import check

def perturbed(model, prompt, *, device, role, decode_tokens):
    run = check.run_model(model, prompt, device=device, role=role, decode_tokens=decode_tokens)
    if role == "candidate":
        {perturbation}
    return run

sys.exit(check.execute(runner=perturbed, decode_tokens=16, quiet=True))
"""


@pytest.mark.slow
def test_wrong_logits_exit_1_with_a_clear_message() -> None:
    pytest.importorskip("mlx_lm")
    # A kernel that is off by a few percent of the logit scale everywhere.
    code = _PERTURBED.format(perturbation="run.logits = run.logits * 1.05 + 0.1")
    done = run_python(code)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "mlx-portable check: FAILED: the cpu backend DISAGREES with the CPU: logits disagree" in done.stderr
    )
    assert re.search(r"logits\s+max rel diff [\d.e-]+ .* DISAGREE", done.stdout)
    assert "result: FAILED" in done.stdout


@pytest.mark.slow
def test_wrong_greedy_token_exit_1() -> None:
    pytest.importorskip("mlx_lm")
    # Same logits, but the device picked a token the reference ranks far lower.
    code = _PERTURBED.format(
        perturbation=(
            "import mlx.core as mx\n"
            "        step = run.step_logits[3]\n"
            "        run.tokens[3] = int(mx.argmin(step).item())\n"
            "        run.tokens[4:] = []\n"
            "        run.step_logits[4:] = []"
        )
    )
    done = run_python(code)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "greedy tokens diverge at step 3" in done.stderr
    assert "beyond the tolerance" in done.stderr


@pytest.mark.slow_every_mlx
def test_check_without_mlx_lm_exits_2_with_the_install_command(tmp_path: Path) -> None:
    """mlx present, mlx-lm absent: Python without site-packages, only mlx (and packaging) on the path."""
    import mlx
    import packaging

    site = tmp_path / "site"
    site.mkdir()
    for module in (mlx, packaging):
        (site / module.__name__).symlink_to(Path(next(iter(module.__path__))))
    env = _env({"PYTHONPATH": os.pathsep.join([str(site), str(REPO)])})
    done = subprocess.run(
        [sys.executable, "-S", "-m", "mlx_portable", "check"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "mlx-portable check needs mlx-lm" in done.stderr and "pip install mlx-lm" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_gpu_backend_compares_gpu_against_cpu_with_tf32_tolerance_simulated() -> None:
    pytest.importorskip("mlx_lm")
    done = run_python(
        """
        import json, os
        import mlx_portable
        mlx_portable.activate()
        import mlx.core as mx
        from mlx_portable.cli import check
        devices = []
        def on_cpu(model, prompt, *, device, role, decode_tokens):
            devices.append((role, str(device)))
            # this machine has no GPU: both runs really compute on the CPU
            return check.run_model(model, prompt, device=mx.cpu, role=role, decode_tokens=decode_tokens)
        result = check.run_check(backend="cuda", runner=on_cpu, decode_tokens=8)
        print(json.dumps({"devices": devices, "result": result.to_dict(), "text": check.render_text(result)}))
        """
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    (role_a, device_a), (role_b, device_b) = out["devices"]
    assert (role_a, role_b) == ("candidate", "reference")
    assert "gpu" in device_a and "cpu" in device_b
    result = out["result"]
    assert result["cpu_against_cpu"] is False and result["device"] == "gpu" and result["tf32"] is True
    assert result["logits"]["tolerance"] == TF32_TOLERANCE
    assert "comparison     cuda (gpu) against the CPU" in out["text"]
    assert "TF32" in out["text"]


# -- the comparison itself -------------------------------------------------------


def _run(
    logits: list[list[float]], steps: list[list[float]], tokens: list[int], label: str = "x"
) -> ModelRun:
    import mlx.core as mx

    return ModelRun(label, mx.array(logits), [mx.array(s) for s in steps], tokens, len(logits), 1.0, 1.0)


def test_compare_accepts_a_near_tie_and_rejects_a_clear_preference() -> None:
    steps = [[1.0, 5.0, 4.9995], [3.0, 0.0, 0.0]]
    reference = _run([[1.0, 5.0, 4.9995]], steps, [1, 0])
    tie = compare(reference, _run([[1.0, 5.0, 4.9995]], steps, [2, 0]), tolerance=1e-3)
    assert tie.ok and tie.near_tie and tie.first_divergence == 0
    assert "near tie" in tie.messages[0] and tie.messages[0].endswith("accepted")
    clear = compare(reference, _run([[1.0, 5.0, 4.9995]], steps, [0, 0]), tolerance=1e-3)
    assert not clear.ok and not clear.near_tie and not clear.tokens_ok and clear.logits_ok


def test_compare_measures_relative_logit_error() -> None:
    reference = _run([[10.0, -10.0]], [[10.0, -10.0]], [0])
    close = compare(reference, _run([[10.005, -10.0]], [[10.0, -10.0]], [0]), tolerance=1e-3)
    assert close.ok and close.max_abs_diff == pytest.approx(0.005, rel=1e-3)
    assert close.max_rel_diff == pytest.approx(5e-4, rel=1e-3)
    far = compare(reference, _run([[10.5, -10.0]], [[10.0, -10.0]], [0]), tolerance=1e-3)
    assert not far.ok and far.messages[0].startswith("logits disagree: max relative difference 0.05 >")


def test_compare_rejects_non_finite_logits() -> None:
    reference = _run([[1.0, 2.0]], [[1.0, 2.0]], [1])
    result = compare(reference, _run([[float("nan"), 2.0]], [[1.0, 2.0]], [1], label="gpu"), tolerance=1.0)
    assert not result.ok and "non-finite" in result.messages[0]


def test_tolerance_follows_dtype_and_tf32() -> None:
    assert tolerance_for("float32", "cpu", {}) == (TOLERANCES["float32"], False)
    assert tolerance_for("float32", "cuda", {}) == (TF32_TOLERANCE, True)  # TF32 is mlx's default
    assert tolerance_for("float32", "cuda", {"MLX_ENABLE_TF32": "0"}) == (TOLERANCES["float32"], False)
    assert tolerance_for("bfloat16", "cuda", {}) == (TOLERANCES["bfloat16"], False)
    assert TOLERANCES["float32"] < TF32_TOLERANCE <= TOLERANCES["float16"] < TOLERANCES["bfloat16"]
    with pytest.raises(ValueError, match="float64"):
        tolerance_for("float64", "cpu", {})
