"""The compatibility table in docs is the generator's output, and the matrix agrees with it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from helpers.subproc import run_python

from mlx_portable.matrix.selection import supported_versions
from mlx_portable.registry.builtin import builtin_patches
from mlx_portable.registry.registry import Patch
from mlx_portable.versions import SUPPORTED_MLX_VERSIONS
from tools.compat_table import main, predicted_status, render

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "compatibility.md"


def _noop(ctx: object) -> None:
    return None


def test_checked_in_table_is_the_generator_output() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/compatibility.md is out of date: run python -m tools.compat_table --write docs/compatibility.md"
    )


def test_table_has_one_row_per_builtin_patch_and_the_matrix_versions() -> None:
    text = render()
    for patch in builtin_patches():
        assert f"| `{patch.name}` |" in text
    header = next(line for line in text.splitlines() if line.startswith("| patch |"))
    assert header.split(" | ")[4:] == [*SUPPORTED_MLX_VERSIONS[:-1], SUPPORTED_MLX_VERSIONS[-1] + " |"]


def test_table_versions_are_the_noxfile_matrix() -> None:
    # The noxfile takes its versions from the table (through the matrix package), never a copy.
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    found = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "MLX_VERSIONS" for t in node.targets)
    ]
    assert len(found) == 1
    call = found[0]
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
    assert call.func.id == "supported_versions" and not call.args
    assert supported_versions() == tuple(SUPPORTED_MLX_VERSIONS)


def test_prediction_follows_versions_backends_and_platforms() -> None:
    patch = Patch("old_only", "s", "w", _noop, mlx_versions="<0.30.4", backends={"cuda", "cpu"})
    assert predicted_status(patch, "0.30.0", "cpu") == "applied"
    assert predicted_status(patch, "0.30.6", "cpu") == "obsolete"
    assert predicted_status(patch, "0.30.0", "metal") == "skipped"
    mac = Patch("mac_only", "s", "w", _noop, backends={"metal"}, platforms={"darwin"})
    assert predicted_status(mac, "0.32.4", "metal", platform="darwin") == "applied"
    assert predicted_status(mac, "0.32.4", "metal", platform="linux") == "skipped"
    with pytest.raises(ValueError, match="backend must be one of"):
        predicted_status(patch, "0.30.0", "gpu")


def test_rendered_cells_mark_exactly_the_versions_in_the_specifier() -> None:
    patch = Patch("mid", "does a thing", "because", _noop, mlx_versions=">=0.28.0,<0.30.4")
    row = next(line for line in render([patch]).splitlines() if line.startswith("| `mid` |"))
    cells = [c.strip() for c in row.strip("|").split("|")][4:]
    assert cells == ["·", "·", "✓", "✓", "✓", "·", "·", "·", "·"]


def test_check_option_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "compatibility.md"
    stale.write_text("old\n", encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["--write", str(stale)]) == 0
    assert main(["--check", str(stale)]) == 0


_REPORT_SCRIPT = """
import importlib, importlib.util, json
import mlx.core as mx
import mlx_portable
from mlx_portable.registry.builtin import builtin_patches
mlx_portable.activate()
imported = []
for patch in builtin_patches():
    module = patch.module
    if not module or importlib.util.find_spec(module.split(".")[0]) is None:
        continue
    if importlib.util.find_spec(module) is None:
        continue  # e.g. mlx_lm.kernels: only in newer mlx-lm
    importlib.import_module(module)
    imported.append(module)
report = mlx_portable.report()
print(json.dumps({
    "mlx": mx.__version__,
    "backend": report.backend,
    "imported": imported,
    "patches": {p.name: [p.status, p.reason] for p in report.patches},
}))
"""


@pytest.mark.slow
def test_activation_report_agrees_with_the_table_on_this_mlx(python_env: dict[str, str]) -> None:
    env = {k: v for k, v in python_env.items() if not k.startswith("MLX_PORTABLE")}
    env["MLX_PORTABLE_BACKEND"] = "cpu"
    env["MLX_PORTABLE_THREAD_FREE_STREAMS"] = "1"  # opt-in patches: the table shows them opted in
    done = run_python(_REPORT_SCRIPT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["backend"] == "cpu"
    problems = []
    for patch in builtin_patches():
        status, reason = seen["patches"][patch.name]
        predicted = predicted_status(patch, seen["mlx"], "cpu")
        if status == "failed":
            problems.append(f"{patch.name}: failed: {reason}")
        elif predicted != "applied":
            # Not needed on this mlx or backend: it must not be applied.
            if status != predicted:
                problems.append(f"{patch.name}: table says {predicted}, report says {status} ({reason})")
        elif not patch.mlx_versions:
            pass  # "any" mlx: the check alone decides (any status but failed)
        elif patch.module:
            if patch.module in seen["imported"] and status not in ("applied", "obsolete"):
                problems.append(f"{patch.name}: needed on mlx {seen['mlx']}, report says {status} ({reason})")
        elif status != "applied":
            problems.append(f"{patch.name}: table says applied, report says {status} ({reason})")
    assert not problems, f"mlx {seen['mlx']}:\n" + "\n".join(problems)
