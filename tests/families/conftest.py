"""The full family sweep is opt-in: without ``-m families`` its cases are deselected, not skipped.

A skip would say "could not run here"; these can run anywhere, they are just
long (about 3 minutes per mlx), so the default run leaves them out and says
how many (pytest's "deselected" count).  ``-m families`` or
``nox -s "families(mlxX)"`` runs them.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "families" in (config.getoption("markexpr") or ""):
        return
    sweep = [item for item in items if item.get_closest_marker("families") is not None]
    if sweep:
        config.hook.pytest_deselected(items=sweep)
        items[:] = [item for item in items if item.get_closest_marker("families") is None]
