"""Every ```python block of README.md and docs/*.md runs (see tests/helpers/doc_blocks.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sybil", reason="the doc tests need the dev extra: pip install -e '.[dev]'")

from helpers.doc_blocks import ROOT, Block, blocks, documents, unfenced_python

_RUNNER = r"""
import json, sys, traceback
namespace = {"__name__": "__main__"}
for block in json.load(open(sys.argv[1], encoding="utf-8")):
    code = "\n" * block["line"] + block["source"]
    try:
        exec(compile(code, block["path"], "exec"), namespace)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    except BaseException:
        traceback.print_exc()
        sys.stderr.write(f"\nthe block at {block['where']} failed\n")
        sys.exit(1)
"""

DOCS = documents()
ALL = [b for doc in DOCS for b in blocks(doc)]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLX_PORTABLE")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _payload(items: list[Block], tmp_path: Path) -> Path:
    path = tmp_path / "blocks.json"
    data = [{"path": str(b.path), "line": b.line, "source": b.source, "where": b.where} for b in items]
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _gpu_available() -> bool:
    import mlx_portable

    return any(p.available for p in mlx_portable.probe_all() if p.name in ("metal", "cuda"))


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
@pytest.mark.slow_every_mlx
def test_doc_python_blocks_run(doc: Path, tmp_path: Path) -> None:
    """The page's blocks in order, in one fresh interpreter (GPU blocks where a GPU is)."""
    modes = ("run", "gpu") if _gpu_available() else ("run",)
    items = [b for b in blocks(doc) if b.mode in modes]
    if not items:
        return  # nothing to run on this page (its blocks are marked, or it has none)
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(_payload(items, tmp_path))],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr[-4000:]


TWO_RANKS = [b for b in ALL if b.mode == "ranks2"]


@pytest.mark.slow  # two ring processes connecting: 3 to 6 s each on the 2-core CI machine
@pytest.mark.parametrize("block", TWO_RANKS, ids=[b.where for b in TWO_RANKS])
def test_doc_block_runs_on_two_ranks(block: Block, tmp_path: Path) -> None:
    from mlx_portable.distributed.local_cluster import run_local

    script = tmp_path / "program.py"
    script.write_text("\n" * block.line + block.source, encoding="utf-8")
    results = run_local([str(script)], 2, timeout=120, env={"PYTHONPATH": _env()["PYTHONPATH"]}, cwd=tmp_path)
    for rank in results:
        assert rank.returncode == 0, f"{block.where}, rank {rank.rank}:\n{rank.stderr[-3000:]}"


def test_every_python_block_runs_or_says_why_not() -> None:
    assert ALL, "no ```python block found: is the parser broken?"
    for block in ALL:
        assert block.mode in ("run", "ranks2", "gpu") or block.reason, block.where


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_python_examples_are_fenced_so_they_run(doc: Path) -> None:
    assert unfenced_python(doc) == [], (
        f"{doc.relative_to(ROOT)}: indented Python using mlx_portable is never run: fence it as ```python"
    )


def test_markers_are_read(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nx = 1\n```\n\n"
        '<!-- skip: next "needs a Mac" -->\n```python\nimport Metal\n```\n\n'
        "<!-- docs-test: ranks=2 -->\n```python\nsend()\n```\n\n"
        "- in a list:\n\n  <!-- docs-test: gpu -->\n  ```python\n  y = 2\n  ```\n\n"
        "```bash\nrm -rf /\n```\n",
        encoding="utf-8",
    )
    found = [(b.line, b.mode, b.reason, b.source) for b in blocks(page)]
    assert found == [
        (1, "run", "", "x = 1\n"),
        (6, "skip", "needs a Mac", "import Metal\n"),
        (11, "ranks2", "", "send()\n"),
        (18, "gpu", "", "y = 2\n"),
    ]


def test_a_skip_without_a_reason_and_an_unknown_marker_are_errors(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- skip: next -->\n```python\nx = 1\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="needs a reason"):
        blocks(page)
    page.write_text("<!-- docs-test: ranks=3 -->\n```python\nx = 1\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown 'docs-test: ranks=3'"):
        blocks(page)


def test_indented_python_using_the_library_is_flagged(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Text:\n\n    import mlx_portable\n    mlx_portable.activate()\n\nMore.\n\n    mlx-portable doctor\n",
        encoding="utf-8",
    )
    assert unfenced_python(page) == ["import mlx_portable"]
