"""The API diff: snapshots match the wheels, the docs table matches the generator, statuses are sound."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from helpers.subproc import env_with_settings

from mlx_portable.registry.builtin import builtin_patches
from tools.apidiff.consumers import load_consumers
from tools.apidiff.history import Addition, additions, load_snapshots, snapshot_path
from tools.apidiff.statuses import RULES, SHIMMED, UNCLASSIFIED, status_of
from tools.apidiff.surface import parse_nb_params
from tools.apidiff.table import display_name, render_table

REPO = Path(__file__).resolve().parents[1]


def test_docs_table_is_current() -> None:
    current = (REPO / "docs" / "api-diff.md").read_text(encoding="utf-8")
    assert current == render_table(), (
        "docs/api-diff.md is stale: python -m tools.apidiff table --write docs/api-diff.md"
    )


def test_snapshot_of_running_mlx_matches_checked_in() -> None:
    mlx = version("mlx")
    path = snapshot_path(mlx)
    if not path.exists():
        pytest.skip(f"no snapshot for mlx {mlx}: python -m tools.apidiff snapshot --write adds one")
    done = subprocess.run(
        [sys.executable, "-m", "tools.apidiff", "snapshot"],
        env=env_with_settings(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == path.read_text(encoding="utf-8"), f"mlx {mlx}'s surface differs from {path.name}"


def test_snapshot_records_mlx_as_shipped_not_as_patched() -> None:
    # import mlx_portable adds mx.depends on mlx < 0.29: the snapshot must not see it.
    snapshots = load_snapshots()
    assert "mlx.core.depends" not in snapshots["0.26.5"]
    assert "mlx.core.depends" in snapshots["0.32.4"]


def test_parse_nb_params() -> None:
    sig = (
        "def quantize(w: array, /, group_size: int | None = None, bits: int | None = None, "
        "mode: str = 'affine', *, global_scale: array | None = None, stream: StreamOrDevice = None) "
        "-> tuple[array, array, array]"
    )
    assert parse_nb_params(sig) == ["w", "/", "group_size", "bits", "mode", "*", "global_scale", "stream"]
    assert parse_nb_params("def f(self, a: dict[str, tuple[int, int]] = {'x, y': (1, 2)}, *args)") == [
        "a",
        "*args",
    ]
    with pytest.raises(ValueError, match="no parameter list"):
        parse_nb_params("float32")


def test_additions_from_toy_snapshots() -> None:
    snaps: dict[str, dict[str, list[str] | None]] = {
        "0.1": {"m.f": ["a", "/", "*", "stream"], "m.g": None, "m.old": []},
        "0.2": {"m.f": ["a", "/", "mode", "*", "stream"], "m.g": ["x", "y"], "m.new": ["p"], "m.old": []},
        "0.3": {"m.f": ["a", "/", "mode", "*", "stream"], "m.g": ["x", "y", "z"], "m.new": ["p", "q"]},
    }
    assert additions(snaps) == [
        Addition("m.f(mode)", "0.2", None),
        Addition("m.g(z)", "0.3", None),  # x, y were only unreadable in 0.1
        Addition("m.new", "0.2", None),
        Addition("m.new(q)", "0.3", None),
    ]


def test_display_name() -> None:
    assert display_name("mlx.core.quantize(mode)") == "mx.quantize(mode=)"
    assert display_name("mlx.nn.QQLinear") == "nn.QQLinear"


def test_the_diff_knows_what_the_shims_exist_for() -> None:
    keys = {a.key: a.first for a in additions(load_snapshots())}
    assert keys["mlx.core.quantize(mode)"] == "0.29.4"
    assert keys["mlx.core.fast.scaled_dot_product_attention(sinks)"] == "0.29.4"
    assert keys["mlx.core.new_thread_local_stream"] == "0.31.2"
    assert keys["mlx.core.from_fp8"] == "0.30.6"


def test_every_rule_is_used() -> None:
    keys = {a.key for a in additions(load_snapshots())} | set(load_consumers())
    from fnmatch import fnmatchcase

    dead = [pattern for pattern, _s, _d in RULES if not any(fnmatchcase(k, pattern) for k in keys)]
    assert not dead, f"statuses.py rules that match nothing: {dead}"


def test_shimmed_statuses_name_real_patches() -> None:
    registered = {p.name for p in builtin_patches()}
    named = {detail for _p, status, detail in RULES if status == SHIMMED}
    assert named <= registered, f"unknown patch names in statuses.py: {named - registered}"


def test_every_addition_a_consumer_uses_is_classified() -> None:
    consumers = load_consumers()
    keys = [a.key for a in additions(load_snapshots())]
    open_ = [k for k in keys if status_of(k, consumers.get(k)).status == UNCLASSIFIED]
    assert not open_, f"used by a consumer but not classified in statuses.py: {open_}"
