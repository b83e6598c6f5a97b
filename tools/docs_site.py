"""mkdocs hook: README.md becomes the site's home page.

README.md sits at the repository root (GitHub and PyPI show it), outside
``docs_dir``; this hook adds it as ``index.md`` with its ``docs/`` links made
relative to the docs folder, so the strict build checks the README's links
too.  Links to other files of the repository point at the repository.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "https://github.com/mlx-portable/mlx-portable/blob/main/"

_LINK = re.compile(r"\]\((?!https?://|#)([^)\s]+)\)")


def readme_as_index(text: str) -> str:
    """README.md with its relative links rewritten for a page in docs/."""

    def fix(match: re.Match[str]) -> str:
        target = match.group(1)
        if target.startswith("docs/"):
            return f"]({target[len('docs/') :]})"
        return f"]({REPOSITORY}{target})"

    return _LINK.sub(fix, text)


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    text = readme_as_index((ROOT / "README.md").read_text(encoding="utf-8"))
    files.append(File.generated(config, "index.md", content=text))
    return files
