"""The project's addresses, as pyproject.toml's Project-URLs name them (a test keeps them equal)."""

from __future__ import annotations

__all__ = ["DOCS_URL", "ISSUES_URL", "NEW_ISSUE_URL"]

#: The documentation site (built from docs/ by mkdocs).
DOCS_URL = "https://mlx-portable.github.io/mlx-portable/"
#: The issue tracker.
ISSUES_URL = "https://github.com/mlx-portable/mlx-portable/issues"
NEW_ISSUE_URL = ISSUES_URL + "/new"
