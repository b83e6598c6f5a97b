"""docs/shims.md is the generator's output: each shim's story comes from its module docstring."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlx_portable.registry.builtin import REGISTRATION, builtin_patches
from tools.shims_doc import main, markdown_from_docstring, render

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "shims.md"


def test_checked_in_page_is_the_generator_output() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/shims.md is out of date: run python -m tools.shims_doc --write docs/shims.md"
    )


def test_one_section_per_shim_module_and_a_line_per_patch_in_registration_order() -> None:
    text = render()
    sections = re.findall(r"^## `([a-z0-9_]+)`$", text, re.MULTILINE)
    assert sections == [module.rsplit(".", 1)[-1] for module, _ in REGISTRATION]
    listed = re.findall(r"^- `([a-z0-9_]+)`: applied at ", text, re.MULTILINE)
    assert listed == [patch.name for patch in builtin_patches()]
    for patch in builtin_patches():
        assert f"off with `MLX_PORTABLE_DISABLE={patch.name}`" in text


def test_the_docstring_is_the_section_body() -> None:
    import mlx_portable.patches.thread_local_stream as module

    text = render()
    section = text.split("## `thread_local_stream`", 1)[1].split("\n## ", 1)[0]
    assert module.__doc__ is not None
    assert "    AttributeError: module 'mlx.core' has no attribute 'new_thread_local_stream'" in section
    assert markdown_from_docstring(module.__doc__.split("\n\n", 2)[1]) in section


def test_rst_literals_roles_and_labels_become_markdown() -> None:
    doc = (
        "Why: ``mx.depends`` is missing; see :class:`~mlx_portable.DeviceInfo` and :mod:`mlx.nn`.  It fails::"
    )
    assert markdown_from_docstring(doc) == (
        "**Why:** `mx.depends` is missing; see `DeviceInfo` and `mlx.nn`.  It fails:"
    )
    assert markdown_from_docstring("Which (every backend): ``a\n  b``") == "**Which (every backend):** `a b`"


def test_check_reports_a_stale_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "shims.md"
    stale.write_text("# Shims\n", encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    assert "python -m tools.shims_doc --write" in capsys.readouterr().err
    assert main(["--write", str(stale)]) == 0
    assert main(["--check", str(stale)]) == 0
