"""The command line: bad arguments exit 2 with one line, never a traceback or a run without end;
doctor never prints a secret or a terminal escape.

Before: ``run .``/``run ..``/``run /etc`` printed runpy tracebacks,
``check --tokens 99999999999999999999`` ran until killed, ``check`` without a
usable temporary folder printed a traceback and exited 1 ("disagree"), and
doctor echoed every ``MLX_*`` value verbatim, escapes included.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import fuzz_profile  # noqa: F401  (loads the hypothesis profile)
from helpers.subproc import env_with_settings
from hypothesis import given
from hypothesis import strategies as st

from mlx_portable.cli import MAX_CHECK_TOKENS, build_parser
from mlx_portable.cli.environment import SECRET_WORDS, variables_in_effect


def _cli(*args: str, code: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "mlx_portable", *args]
    return subprocess.run(argv, env=env_with_settings(), capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.mark.slow
@given(tokens=st.one_of(st.integers(-(10**30), 10**30).map(str), st.text(max_size=12)))
def test_check_tokens_is_a_bounded_whole_number(tokens: str) -> None:
    try:
        parsed = build_parser().parse_args(["check", "--tokens", tokens])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        assert 1 <= parsed.tokens <= MAX_CHECK_TOKENS


@pytest.mark.parametrize("target", [".", "..", "/etc", "", "/dev/zero", "/nonexistent/x.py"])
@pytest.mark.slow_every_mlx
def test_run_of_a_target_that_cannot_run_is_one_line_and_exit_2(tmp_path: Path, target: str) -> None:
    done = _cli("run", target, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("mlx-portable run: ")
    assert done.stderr.count("\n") == 1


def test_check_with_a_huge_token_count_exits_2_at_once() -> None:
    done = _cli("check", "--tokens", "99999999999999999999")
    assert done.returncode == 2 and "between 1 and 1024" in done.stderr


_NO_TEMP_DIR = (
    "import sys, tempfile; tempfile.tempdir = '/nonexistent/tmp'\n"
    "from mlx_portable.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.mark.slow
def test_check_without_a_usable_temp_folder_exits_2() -> None:
    pytest.importorskip("mlx_lm")
    done = _cli("check", "-q", code=_NO_TEMP_DIR)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "TMPDIR" in done.stderr


names = st.one_of(
    st.sampled_from(SECRET_WORDS).map(lambda w: f"MLX_HF_{w}"),
    st.sampled_from(("MLX_X", "MLX_PORTABLE_BAKEND", "CUDA_HOME", "MLX_METAL_FAST_SYNCH")),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=8).map(lambda s: "MLX_" + s),
)


@given(env=st.dictionaries(names, st.text(max_size=300), min_size=1, max_size=4))
def test_doctor_shows_values_redacted_escaped_and_short(env: dict[str, str]) -> None:
    for entry in variables_in_effect("cpu", env):
        shown = entry.name + entry.value
        assert all(c.isprintable() for c in shown), repr(shown)
        assert len(entry.value) <= 260
        raw = env[entry.name]
        if any(word in entry.name for word in SECRET_WORDS):
            assert entry.value == f"<redacted, {len(raw)} characters>"


@pytest.mark.slow_every_mlx
def test_doctor_output_carries_no_secret_and_no_escape() -> None:
    secret = "hf_s3cr3t_value"
    env = env_with_settings(MLX_HF_TOKEN=secret, MLX_X="\x1b]0;pwned\x07\x1b[2J")
    for extra in ([], ["--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "mlx_portable", "doctor", *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert secret not in done.stdout and "\x1b" not in done.stdout
        assert "MLX_HF_TOKEN" in done.stdout
