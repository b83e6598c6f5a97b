"""Import-time shims obsolete on the loaded mlx: not imported, decided when first read, reported the same."""

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
from mlx_portable.registry.builtin import ON_IMPORT_MODULES
from mlx_portable.registry.import_index import MLX_VERSIONS, modules_to_leave_out
from tools.import_index import INDEX_PATH, check, main, render


def test_checked_in_index_is_the_generator_output() -> None:
    assert check() is None, "run python -m tools.import_index --write"
    assert list(MLX_VERSIONS) == list(ON_IMPORT_MODULES)


def test_a_stale_index_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "import_index.py"
    stale.write_text(render().replace('"<0.31.2"', '"<0.30.0"'), encoding="utf-8")
    problem = check(stale)
    assert problem is not None and "python -m tools.import_index --write" in problem
    assert check(INDEX_PATH) is None
    assert main(["--check"]) == 0


def test_a_module_is_left_out_only_when_every_patch_is_obsolete_or_waits() -> None:
    left_out = modules_to_leave_out("0.32.4")
    assert "mlx_portable.patches.device_info" in left_out  # <0.30.4
    # nn_relu2 waits for mlx.nn where it is needed; outside its range it waits for nothing.
    assert left_out["mlx_portable.patches.missing_ops"] == (("graph_depends", ""), ("nn_relu2", ""))
    assert "mlx_portable.patches.clear_streams_at_exit" not in left_out  # >=0.31.2: needed
    assert "mlx_portable.patches.metal_namespace" not in left_out  # any mlx: its check decides
    assert "mlx_portable.patches.device_info" not in modules_to_leave_out("0.30.0")
    assert "mlx_portable.patches.clear_streams_at_exit" in modules_to_leave_out("0.30.0")
    # A patch waiting for a module: left out while that module is not imported, whatever the mlx.
    waiting = "mlx_portable.patches.mlx_lm.server_sigterm"
    assert (waiting in modules_to_leave_out(None)) == ("mlx_lm" not in sys.modules)


_STATE = """
import json, sys
{first}
from mlx_portable.registry.import_index import modules_to_leave_out
import mlx_portable
left_out = sorted(modules_to_leave_out(mlx.core.__version__))
mods = lambda: sorted(m for m in left_out if m in sys.modules)
waiting = sorted(modules_to_leave_out(None))
seen = {{"left_out": left_out, "waiting": waiting, "after_import": mods()}}
report = mlx_portable.activate()
seen["after_activate"] = mods()
seen["lines"] = [[p.name, p.status, p.reason, p.summary, p.error, p.module] for p in report.patches]
seen["after_report"] = mods()
seen["patched"] = {{p.name: mlx_portable.is_patched(p.name) for p in report.patches}}
mlx_portable.deactivate()
seen["deactivated"] = [[p.name, p.status, p.reason] for p in mlx_portable.report().patches]
seen["again"] = [[p.name, p.status, p.reason] for p in mlx_portable.activate().patches]
print(json.dumps(seen))
"""


def _state(first: str, disable: str) -> dict[str, Any]:
    environment = child_env(MLX_PORTABLE_BACKEND="cpu", MLX_PORTABLE_DISABLE=disable)
    done = run_python(_STATE.format(first=first), env=environment, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen


@pytest.mark.parametrize("disable", ["", "device_info,nn_relu2,clear_streams_at_exit"])
@pytest.mark.slow_every_mlx
def test_left_out_modules_report_what_importing_them_reports(disable: str) -> None:
    lazy = _state("import mlx.core", disable)  # mlx loaded first: the obsolete modules are left out
    eager = _state("import mlx_portable, mlx.core", disable)  # mlx unknown at import: every module imported
    assert lazy["left_out"], "no import-time shim is obsolete on this mlx: nothing to compare"
    if not disable:  # MLX_PORTABLE_DISABLE loads every built-in module at import, to check the names
        assert lazy["after_import"] == [] and lazy["after_activate"] == []
        # mlx unknown at import: only the modules waiting for an unimported module are left out
        assert eager["after_import"] == sorted(set(eager["left_out"]) - set(eager["waiting"]))
    for key in ("lines", "patched", "deactivated", "again"):
        assert lazy[key] == eager[key], key
    assert lazy["after_report"] == lazy["left_out"]  # reading the report decided them
    statuses = {name: status for name, status, *_ in lazy["lines"]}
    if disable:
        assert statuses["device_info"] in ("skipped", "applied")  # skipped where disabled and needed
    assert "pending" not in statuses.values()


def test_reading_one_entry_decides_only_its_patch() -> None:
    code = (
        "import sys, json, mlx.core, mlx_portable\n"
        "from mlx_portable.registry.import_index import modules_to_leave_out\n"
        "left = modules_to_leave_out(mlx.core.__version__)\n"
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
