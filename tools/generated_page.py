"""The command line every generated docs page shares: print it, ``--write PATH`` or ``--check PATH``.

docs/compatibility.md (``tools.compat_table``) and docs/shims.md
(``tools.shims_doc``) are rendered from the code, never edited by hand; their
tests run ``--check``, which fails with the command that regenerates the page.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["page_main"]


def page_main(prog: str, description: str, render: Callable[[], str], argv: Sequence[str] | None) -> int:
    """Print the page ``render()`` makes, write it (``--write PATH``) or check it (``--check PATH``)."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=description)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="PATH", type=Path, help="write the page to PATH")
    group.add_argument(
        "--check", metavar="PATH", type=Path, help="exit 1 if PATH differs from the generated page"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.write is not None:
        args.write.write_text(text, encoding="utf-8")
        return 0
    if args.check is not None:
        current = args.check.read_text(encoding="utf-8") if args.check.exists() else ""
        if current != text:
            print(f"{args.check} is out of date: run python -m {prog} --write {args.check}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0
