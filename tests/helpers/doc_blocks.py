"""The code blocks of README.md and docs/*.md, as the doc tests run them.

Parsing is Sybil's (fenced blocks, also inside lists and quotes, and
directives in HTML comments, which no rendered page shows).  A ```python
block runs, in document order, in one fresh interpreter per document, so a
block may use names an earlier block of the same page defined.  Markers,
written on the line before a block:

* ``<!-- skip: next "why" -->`` (Sybil's own): shown, never run; the reason
  is required.
* ``<!-- docs-test: ranks=2 -->``: a whole program for 2 ranks, run as two
  ring processes on 127.0.0.1 (``mlx_portable.distributed.local_cluster``).
* ``<!-- docs-test: gpu -->``: needs a GPU backend (Metal or CUDA); run where
  one is available.

Blocks in other languages (``bash``, ``text``, ``toml``, ``json``) are shown,
not run; sample outputs are compared by tests/test_doc_samples.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from unittest import SkipTest

from sybil import Document, Example, Region
from sybil.parsers.markdown import CodeBlockParser, SkipParser
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer

ROOT = Path(__file__).resolve().parents[2]
MARK = "docs-test"
_MODES = {"ranks=2": "ranks2", "gpu": "gpu"}


def documents() -> list[Path]:
    """README.md and every docs/*.md (a new page is picked up by itself)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence
    source: str
    mode: str  # "run", "ranks2", "gpu" or "skip"
    reason: str = ""

    @property
    def where(self) -> str:
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{shown}:{self.line}"


class _MarkParser:
    """``<!-- docs-test: MODE -->``: how the next block runs."""

    def __init__(self) -> None:
        self.lexer = DirectiveInHTMLCommentLexer(directive=MARK, arguments=r"[\w=]+")

    def __call__(self, document: Document) -> list[Region]:
        regions = []
        for lexed in self.lexer(document):
            mode = lexed.lexemes["arguments"].strip()
            if mode not in _MODES:
                raise ValueError(f"{document.path}: unknown '{MARK}: {mode}' (known: {', '.join(_MODES)})")
            regions.append(Region(lexed.start, lexed.end, _MODES[mode], self._evaluate))
        return regions

    @staticmethod
    def _evaluate(example: Example) -> None:
        example.namespace["__next_mode__"] = example.parsed


def blocks(path: Path) -> list[Block]:
    """Every ```python block of ``path``, with how it runs."""
    found: list[Block] = []

    def collect(example: Example) -> None:
        mode = example.namespace.pop("__next_mode__", "run")
        found.append(Block(path, example.line, str(example.parsed), mode))

    python = CodeBlockParser("python", collect)
    document = Document.parse(str(path), SkipParser(), _MarkParser(), python)
    for example in document:
        before = len(found)
        try:
            example.evaluate()
        except SkipTest as exc:
            example.namespace.pop("__next_mode__", None)
            found.append(Block(path, example.line, str(example.parsed), "skip", str(exc).strip()))
        # Sybil skips a block silently when the directive gives no reason.
        silent = example.region.evaluator is python._evaluator and len(found) == before
        unexplained = len(found) > before and found[-1].mode == "skip" and not found[-1].reason
        if silent or unexplained:
            raise ValueError(
                f"{path.name}:{example.line}: 'skip: next' needs a reason, "
                'e.g. <!-- skip: next "needs a Mac" -->'
            )
    return found


_INDENTED = re.compile(r"(?:^|\n)\n((?:(?: {4}|\t)[^\n]*\n|[ \t]*\n)+)")


def unfenced_python(path: Path) -> list[str]:
    """Indented code blocks that are Python using mlx_portable: they must be fenced to run."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", "", text)  # fenced blocks
    found = []
    for match in _INDENTED.finditer(text):
        code = "\n".join(line[4:] for line in match.group(1).splitlines())
        if "mlx_portable" not in code:
            continue
        try:
            compile(code, str(path), "exec")
        except SyntaxError:
            continue
        found.append(code.strip().splitlines()[0])
    return found
