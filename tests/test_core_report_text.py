"""What ``print()`` shows for mlx-portable's answers: readable, 80 columns, each thing said once."""

from __future__ import annotations

import re
import sys

from helpers.subproc import child_env, run_python


def _out(code: str) -> str:
    done = run_python(code, env=child_env())
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_probe_installed_prints_its_facts_and_answers() -> None:
    out = _out("import mlx_portable; f = mlx_portable.probe_installed(); print(repr(f)); print(f)")
    assert "object at 0x" not in out
    first, *rest = out.splitlines()
    assert re.fullmatch(
        r"MachineFacts\(os='\w+', machine='\w+', mlx=.*, metal=(yes|no), cuda=(yes|no), cpu=(yes|no)\)", first
    )
    text = "\n".join(rest)
    for name in ("metal", "cuda", "cpu"):
        assert re.search(rf"^{name} +(yes|no): ", text, re.MULTILINE), text
    assert text.startswith("machine ")


def test_unconfirmed_is_said_once_in_a_reason() -> None:
    out = _out("import mlx_portable\nfor p in mlx_portable.probe_all(import_mlx=False): print(p.reason)")
    for reason in out.splitlines():
        assert reason.count("mlx loads") + reason.count("mlx.core loads") <= 1, reason
        assert "unconfirmed until" not in reason


def test_metal_remedy_off_macos_gives_no_order() -> None:
    """Nothing was forced: the remedy must not tell the user to set a variable."""
    if sys.platform == "darwin":
        return
    out = _out(
        "import mlx_portable\nprint([p.remedy for p in mlx_portable.probe_all() if p.name == 'metal'][0])"
    )
    assert "MLX_PORTABLE_BACKEND" not in out and "macOS" in out


def test_printed_report_fits_80_columns_and_reasons_say_something() -> None:
    out = _out("import mlx_portable\nprint(mlx_portable.activate())")
    lines = out.splitlines()
    # A single word longer than the room (a path) may stand alone; nothing else passes 80 columns.
    too_wide = [line for line in lines if len(line) > 80 and " " in line.strip()[40:]]
    assert not too_wide, too_wide
    for line in lines:
        versions = re.findall(r"mlx (\d+\.\d+\.\d+)", line)
        assert len(versions) == len(set(versions)), f"says the same version twice: {line!r}"
