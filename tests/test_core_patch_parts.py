"""One way to wait for a module: ``when="<phase>:<module>"``, and ``part_of=`` for a second half.

A patch whose second half must wait for another module is two patches; the
second names the first with ``part_of=``.  These tests hold the rules the
docs state: the part is decided after its parent (even when its own module
was imported first), it is left out unless the parent is applied (so
disabling the parent's name disables both, while the part's own name
disables only the part), ``deactivate()`` reverts both, and at import time
a part waiting for a module mlx does not import (``threading``) still waits
for ``mlx.core`` first.  Real modules on a temporary ``sys.path``, real
subprocesses, the real built-in shims.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.shim_helpers import mlx_version, run_script
from helpers.subproc import env_with_settings
from packaging.version import Version

from mlx_portable import Patch, PatchContext
from mlx_portable.registry.builtin import BUILTIN_MODULES, builtin_patches
from mlx_portable.registry.registry import Registry

pytest.importorskip("mlx.core")

PATCHES_DIR = Path(__file__).resolve().parents[1] / "mlx_portable" / "patches"


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Two importable modules, ``mp_parts_a`` and ``mp_parts_b``, forgotten afterwards."""
    for name in ("mp_parts_a", "mp_parts_b"):
        (tmp_path / f"{name}.py").write_text("VALUE = 'original'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("mp_parts_a", "mp_parts_b"):
        sys.modules.pop(name, None)


TARGET = types.SimpleNamespace(value="original")


def _parent(when: str = "activate") -> Patch:
    def apply(ctx: PatchContext) -> None:
        ctx.set_attr(TARGET, "value", "parent")
        if ctx.module is not None:
            ctx.set_attr(ctx.module, "VALUE", "parent")

    return Patch("test_parent", "the first half", "tests", apply, when=when)


def _part(when: str, order: list[str] | None = None) -> Patch:
    def apply(ctx: PatchContext) -> None:
        assert ctx.module is not None
        if order is not None:
            order.append(TARGET.value)
        ctx.set_attr(ctx.module, "VALUE", "part")

    return Patch("test_part", "the second half", "tests", apply, when=when, part_of="test_parent")


def _registry(*patches: Patch) -> Registry:
    registry = Registry()
    for patch in patches:
        registry.register(patch)
    return registry


def test_patch_context_has_no_after_import() -> None:
    assert not hasattr(PatchContext, "after_import")
    for path in PATCHES_DIR.rglob("*.py"):
        assert "after_import" not in path.read_text(), path


def test_each_builtin_part_names_an_earlier_patch_of_its_own_module() -> None:
    parts = [p for p in builtin_patches() if p.part_of is not None]
    assert {p.name: p.part_of for p in parts} == {
        "quantize_modes_nn": "quantize_modes",
        "server_sigterm_http_loop": "server_sigterm",
        "clear_streams_at_thread_end": "clear_streams_at_exit",
    }
    for module in BUILTIN_MODULES:
        names = [p.name for p in sys.modules[module].PATCHES]
        for i, patch in enumerate(sys.modules[module].PATCHES):
            if patch.part_of is not None:
                assert patch.part_of in names[:i], (module, patch.name)
                assert patch.module is not None, (
                    f"{patch.name}: a part waits for a module (when=...:<module>)"
                )


def test_part_applies_once_its_module_is_imported_and_deactivate_reverts_both(modules: Path) -> None:
    order: list[str] = []
    registry = _registry(_parent(), _part("activate:mp_parts_b", order))
    registry.apply(backend=None)
    assert registry.record("test_parent").status == "applied"
    assert registry.record("test_part").status == "deferred"
    import mp_parts_b  # type: ignore[import-not-found]

    assert registry.record("test_part").status == "applied"
    assert order == ["parent"] and mp_parts_b.VALUE == "part"
    registry.revert_all()
    assert TARGET.value == "original" and mp_parts_b.VALUE == "original"


def test_a_part_whose_module_comes_first_waits_for_its_parent(modules: Path) -> None:
    order: list[str] = []
    registry = _registry(_parent("activate:mp_parts_a"), _part("activate:mp_parts_b", order))
    registry.apply(backend=None)
    import mp_parts_b

    # Its own module is here, its parent's is not: the part waits for that one too.
    record = registry.record("test_part")
    assert (record.status, record.reason) == ("deferred", "waits for 'import mp_parts_a'")
    assert mp_parts_b.VALUE == "original"
    import mp_parts_a  # type: ignore[import-not-found]

    assert registry.record("test_parent").status == registry.record("test_part").status == "applied"
    assert order == ["parent"] and mp_parts_a.VALUE == "parent" and mp_parts_b.VALUE == "part"
    registry.revert_all()
    assert (TARGET.value, mp_parts_a.VALUE, mp_parts_b.VALUE) == ("original",) * 3


def test_disabling_the_parent_disables_the_part(modules: Path) -> None:
    registry = _registry(_parent(), _part("activate:mp_parts_b"))
    registry.apply(backend=None, disabled=frozenset({"test_parent"}))
    import mp_parts_b

    record = registry.record("test_part")
    assert record.status == "skipped"
    assert record.reason.startswith("part of test_parent, which is skipped: disabled"), record.reason
    assert TARGET.value == "original" and mp_parts_b.VALUE == "original"


def test_disabling_the_part_leaves_the_parent(modules: Path) -> None:
    registry = _registry(_parent(), _part("activate:mp_parts_b"))
    registry.apply(backend=None, disabled=frozenset({"test_part"}))
    import mp_parts_b

    assert registry.record("test_parent").status == "applied"
    assert registry.record("test_part").status == "skipped"
    assert TARGET.value == "parent" and mp_parts_b.VALUE == "original"
    registry.revert_all()
    assert TARGET.value == "original"


def test_part_of_must_name_another_patch() -> None:
    with pytest.raises(ValueError, match="part_of names the patch itself"):
        Patch("test_self", "s", "w", lambda ctx: None, when="activate:json", part_of="test_self")
    with pytest.raises(TypeError, match="part_of"):
        Patch("test_bad", "s", "w", lambda ctx: None, when="activate:json", part_of=3)  # type: ignore[arg-type]


# -- the built-in parts, in a fresh interpreter -----------------------------------------------------

STATUS = """
import sys
from mlx_portable.registry.registry import registry
def status(*names):
    for name in names:
        record = registry.record(name)
        print(name, record.status, "|", record.reason)
"""

THREADING_FIRST = (
    "import threading\nimport mlx_portable\n"
    + STATUS
    + """
print("mlx.core loaded:", "mlx.core" in sys.modules)
status("clear_streams_at_thread_end")
import mlx.core as mx
status("clear_streams_at_exit", "clear_streams_at_thread_end")
print("wrapped:", hasattr(threading.Thread._bootstrap_inner, "__wrapped__"))
"""
)


def test_import_time_part_waiting_for_threading_waits_for_mlx_core_first() -> None:
    """``threading`` imported before ``mlx_portable``: the part still waits for ``mlx.core``."""
    out = run_script(THREADING_FIRST, env_with_settings()).stdout
    assert "mlx.core loaded: False" in out, out
    assert "clear_streams_at_thread_end deferred | waits for 'import mlx.core'" in out, out
    if mlx_version() >= Version("0.31.2"):
        assert "clear_streams_at_exit applied" in out and "clear_streams_at_thread_end applied" in out, out
        assert "wrapped: True" in out, out
    else:
        assert "clear_streams_at_thread_end obsolete" in out and "wrapped: False" in out, out


SERVER = (
    "import mlx_portable\n"
    + STATUS
    + """
import mlx_lm.server
status("server_sigterm", "server_sigterm_http_loop")
print("wrapped:", hasattr(mlx_lm.server._run_http_server, "__wrapped__"))
mlx_portable.deactivate()
print("after deactivate:", hasattr(mlx_lm.server._run_http_server, "__wrapped__"))
"""
)


@pytest.mark.skipif(sys.platform not in ("linux", "darwin"), reason="server_sigterm is POSIX only")
@pytest.mark.parametrize(
    ("disable", "parent", "part"),
    [
        ("", "applied", "applied"),
        ("server_sigterm", "skipped", "skipped"),
        ("server_sigterm_http_loop", "applied", "skipped"),
    ],
)
@pytest.mark.slow_every_mlx
def test_each_name_is_a_switch_and_the_parent_name_turns_off_both(
    disable: str, parent: str, part: str
) -> None:
    if importlib.util.find_spec("mlx_lm") is None:  # not imported here: old mlx needs the shims for it
        pytest.skip("mlx-lm is not installed")
    out = run_script(SERVER, env_with_settings(MLX_PORTABLE_DISABLE=disable)).stdout
    assert f"server_sigterm {parent} |" in out, out
    assert f"server_sigterm_http_loop {part} |" in out, out
    assert f"wrapped: {part == 'applied'}" in out, out
    assert "after deactivate: False" in out, out
    if disable == "server_sigterm":
        assert (
            "server_sigterm_http_loop skipped | part of server_sigterm, which is skipped: disabled" in out
        ), out
