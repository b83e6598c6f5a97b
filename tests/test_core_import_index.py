"""Shims obsolete here or waiting for an unimported module: left out, decided when read, reported alike."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.shim_helpers import mlx_version
from helpers.subproc import child_env, run_python
from packaging.version import Version

from mlx_portable.activation_report import PatchEntry
from mlx_portable.registry.builtin import (
    ACTIVATE_MODULES,
    BUILTIN_MODULES,
    ON_IMPORT_MODULES,
    builtin_patches,
)
from mlx_portable.registry.import_index import SHIM_INDEX, builtin_names, modules_to_leave_out
from tools.import_index import INDEX_PATH, check, main, render


def test_checked_in_index_is_the_generator_output() -> None:
    assert check() is None, "run python -m tools.import_index --write"
    assert list(SHIM_INDEX) == list(BUILTIN_MODULES)
    assert builtin_names() == {p.name for p in builtin_patches()}


def test_a_stale_index_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "import_index.py"
    stale.write_text(render().replace('"<0.31.2"', '"<0.30.0"'), encoding="utf-8")
    problem = check(stale)
    assert problem is not None and "python -m tools.import_index --write" in problem
    assert check(INDEX_PATH) is None
    assert main(["--check"]) == 0


def test_a_module_is_left_out_only_when_every_patch_is_obsolete_or_waits() -> None:
    left_out = modules_to_leave_out("0.32.4", ON_IMPORT_MODULES)
    assert "mlx_portable.patches.device_info" in left_out  # <0.30.4
    # nn_relu2 waits for mlx.nn where it is needed; outside its range it waits for nothing.
    assert left_out["mlx_portable.patches.missing_ops"] == (("graph_depends", ""), ("nn_relu2", ""))
    assert "mlx_portable.patches.clear_streams_at_exit" not in left_out  # >=0.31.2: needed
    assert "mlx_portable.patches.metal_namespace" not in left_out  # any mlx: its check decides
    assert "mlx_portable.patches.device_info" not in modules_to_leave_out("0.30.0", ON_IMPORT_MODULES)
    assert "mlx_portable.patches.clear_streams_at_exit" in modules_to_leave_out("0.30.0", ON_IMPORT_MODULES)
    # A patch waiting for a module: left out while that module is not imported, whatever the mlx.
    waiting = "mlx_portable.patches.mlx_lm.server_sigterm"
    assert (waiting in modules_to_leave_out(None, ON_IMPORT_MODULES)) == ("mlx_lm" not in sys.modules)
    # Only the modules asked about: an activate-time module is not left out at import.
    assert not set(left_out) & set(ACTIVATE_MODULES)


def test_an_activate_time_module_is_left_out_by_the_same_rules() -> None:
    at_activate = modules_to_leave_out("0.32.4", ACTIVATE_MODULES)
    assert at_activate["mlx_portable.patches.addmm_half_cpu"] == (("addmm_half_cpu", ""),)  # <0.29.4
    assert "mlx_portable.patches.addmm_half_cpu" not in modules_to_leave_out("0.29.0", ACTIVATE_MODULES)
    assert "mlx_portable.patches.half_matmul_cpu" not in at_activate  # any mlx, waits for nothing
    gated = "mlx_portable.patches.mlx_lm.gated_delta"
    assert (gated in at_activate) == ("mlx_lm.models.gated_delta" not in sys.modules)
    if gated in at_activate:
        assert {waits for _, waits in at_activate[gated]} == {"mlx_lm.models.gated_delta"}
    assert not set(at_activate) & set(ON_IMPORT_MODULES)


_STATE = """
import json, sys
{first}
import mlx.core
import mlx_portable
from mlx_portable.registry.builtin import ACTIVATE_MODULES, ON_IMPORT_MODULES
from mlx_portable.registry.import_index import modules_to_leave_out
version = mlx.core.__version__
left_out = sorted(modules_to_leave_out(version, ON_IMPORT_MODULES))
left_at_activate = sorted(modules_to_leave_out(version, ACTIVATE_MODULES))
mods = lambda: sorted(m for m in left_out + left_at_activate if m in sys.modules)
waiting = sorted(modules_to_leave_out(None, ON_IMPORT_MODULES))
seen = {{"left_out": left_out, "left_at_activate": left_at_activate, "waiting": waiting}}
seen["after_import"] = mods()
{before_activate}
report = mlx_portable.activate()
seen["after_activate"] = mods()
seen["lines"] = [[p.name, p.status, p.reason, p.summary, p.error, p.module] for p in report.patches]
seen["after_report"] = mods()
seen["patched"] = {{p.name: mlx_portable.is_patched(p.name) for p in report.patches}}
import mlx.nn  # decode_linear_cpu waits for it (left out at activate() where mlx.nn was not imported)
seen["after_nn"] = [[p.name, p.status, p.reason] for p in mlx_portable.report().patches]
mlx_portable.deactivate()
seen["deactivated"] = [[p.name, p.status, p.reason] for p in mlx_portable.report().patches]
seen["again"] = [[p.name, p.status, p.reason] for p in mlx_portable.activate().patches]
print(json.dumps(seen))
"""

#: Without the index at activate(): every activate-time module imported, as before it.
_NO_INDEX = "from mlx_portable.registry import import_index; import_index.SHIM_INDEX.clear()"


def _state(first: str, disable: str, before_activate: str = "") -> dict[str, Any]:
    environment = child_env(MLX_PORTABLE_BACKEND="cpu", MLX_PORTABLE_DISABLE=disable)
    code = _STATE.format(first=first, before_activate=before_activate)
    done = run_python(code, env=environment, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen


@pytest.mark.parametrize("disable", ["", "device_info,nn_relu2,clear_streams_at_exit"])
@pytest.mark.slow_every_mlx
def test_left_out_modules_report_what_importing_them_reports(disable: str) -> None:
    lazy = _state("import mlx.core", disable)  # mlx loaded first: the obsolete modules are left out
    # mlx unknown at import: every import-time module imported; no index at activate(): every other one
    eager = _state("import mlx_portable, mlx.core", disable, before_activate=_NO_INDEX)
    assert lazy["left_out"], "no import-time shim is obsolete on this mlx: nothing to compare"
    assert lazy["left_at_activate"], "no activate-time shim waits or is obsolete here: nothing to compare"
    assert lazy["after_import"] == [] and lazy["after_activate"] == []
    # mlx unknown at import: only the modules waiting for an unimported module are left out
    assert eager["after_import"] == sorted(set(eager["left_out"]) - set(eager["waiting"]))
    assert set(eager["left_at_activate"]) <= set(eager["after_activate"])
    for key in ("lines", "patched", "after_nn", "deactivated", "again"):
        assert lazy[key] == eager[key], key
    # reading the report decided them
    assert lazy["after_report"] == sorted(lazy["left_out"] + lazy["left_at_activate"])
    statuses = {name: status for name, status, *_ in lazy["lines"]}
    if disable:
        assert statuses["device_info"] in ("skipped", "applied")  # skipped where disabled and needed
    assert "pending" not in statuses.values()
    after_nn = {name: status for name, status, _ in lazy["after_nn"]}
    assert after_nn["decode_linear_cpu"] == "applied"  # mlx.nn imported after activate(): applied then


def test_reading_one_entry_decides_only_its_patch() -> None:
    code = (
        "import sys, json, mlx.core, mlx_portable\n"
        "from mlx_portable.registry.builtin import ON_IMPORT_MODULES\n"
        "from mlx_portable.registry.import_index import modules_to_leave_out\n"
        "left = modules_to_leave_out(mlx.core.__version__, ON_IMPORT_MODULES)\n"
        "module, names = next(iter(left.items()))\n"
        "report = mlx_portable.activate()\n"
        "entry = next(p for p in report.patches if p.name == names[0][0])\n"
        "before = module in sys.modules\n"
        "status = entry.status\n"
        "print(json.dumps([before, module in sys.modules, status, sum(m in sys.modules for m in left)]))"
    )
    done = run_python(code, env=child_env(MLX_PORTABLE_BACKEND="cpu"), timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    before, after, status, imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert (before, after, imported) == (False, True, 1)
    assert status in ("obsolete", "skipped")


def test_an_entry_filled_later_equals_one_built_at_once() -> None:
    calls: list[int] = []

    def fields() -> tuple[str, str, str, str, str | None]:
        calls.append(1)
        return "obsolete", "does a thing", "not needed", "", None

    later = PatchEntry.later("thing", fields)
    now = PatchEntry("thing", "obsolete", "does a thing", "not needed", "", None)
    assert calls == []
    assert later == now and hash(later) == hash(now) and repr(later) == repr(now)
    assert later.to_dict() == now.to_dict() and calls == [1]
    assert pickle.loads(pickle.dumps(later)) == now
    with pytest.raises(AttributeError):
        later.nothing  # noqa: B018


_WAITING = """
import sys, json, mlx.core
{first}
shim = "mlx_portable.patches.mlx_lm.thread_bound_streams"
before = shim in sys.modules
{second}
from mlx_portable.registry.registry import registry
record = registry.record("thread_bound_streams")
print(json.dumps([before, shim in sys.modules, record.status, record.reason]))
"""


@pytest.mark.slow_every_mlx
def test_a_shim_waiting_for_mlx_lm_is_imported_with_it_and_decided_the_same() -> None:
    seen = []
    read_first = (
        "from mlx_portable.registry.registry import registry; registry.record('thread_bound_streams').status"
    )
    for first, second in (
        ("import mlx_portable", "import mlx_lm.generate"),  # left out until mlx_lm.generate is imported
        # read first: its module imported and the patch waiting on its own hook, as without the index
        (f"import mlx_portable; {read_first}", "import mlx_lm.generate"),
    ):
        code = _WAITING.format(first=first, second=second)
        done = run_python(code, env=child_env(MLX_PORTABLE_BACKEND="cpu"), timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        seen.append(json.loads(done.stdout.strip().splitlines()[-1]))
    (before, after, *lazy), (_, _, *eager) = seen
    # Imported with mlx_lm.generate where it may be needed; outside its range (mlx < 0.31.2)
    # it waits for nothing and is imported when first read, as the record is below.
    assert (before, after) == (False, mlx_version() >= Version("0.31.2"))
    assert lazy == eager and lazy[0] in ("applied", "obsolete"), lazy
