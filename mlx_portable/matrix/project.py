"""The project a matrix installs: its folder, name and extras (mlx-portable itself: ``source.py``).

``pyproject.toml`` is read with :mod:`tomllib` (Python >= 3.11); on 3.10 the
name and extras are unknown and only what ``--extras`` names is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__all__ = ["Project", "ProjectError", "command_runs_pytest"]

_PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg")
#: Extras installed by default when the project declares one of them (the first found).
TEST_EXTRAS = ("test", "tests")


class ProjectError(ValueError):
    """The folder holds no installable project; the message says what to do."""


class Project:
    """An installable Python project folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        if not any((self.folder / name).is_file() for name in _PROJECT_FILES):
            raise ProjectError(
                f"{self.folder} holds no Python project (no pyproject.toml, setup.py or setup.cfg): "
                "run mlx-portable matrix from the project's folder, or give --project DIR"
            )
        self._toml = _read_toml(self.folder / "pyproject.toml")

    @property
    def name(self) -> str | None:
        name = self._toml.get("project", {}).get("name")
        return name if isinstance(name, str) else None

    @property
    def extras(self) -> list[str]:
        extras = self._toml.get("project", {}).get("optional-dependencies", {})
        return sorted(extras) if isinstance(extras, dict) else []

    def default_extras(self) -> list[str]:
        """The project's ``test`` (or ``tests``) extra, if it declares one."""
        return next(([e] for e in TEST_EXTRAS if e in self.extras), [])

    def check_extras(self, wanted: list[str]) -> None:
        if not self._toml or not wanted:
            return
        unknown = [e for e in wanted if e not in self.extras]
        if unknown:
            have = ", ".join(self.extras) or "none"
            raise ProjectError(
                f"--extras: the project declares no extra {', '.join(unknown)} (it has: {have})"
            )

    def editable(self, extras: list[str]) -> str:
        return str(self.folder) + (f"[{','.join(extras)}]" if extras else "")

    def is_mlx_portable(self) -> bool:
        return (self.name or "").replace("_", "-").lower() == "mlx-portable" or (
            self.folder / "mlx_portable" / "__init__.py"
        ).is_file()


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib

        try:
            with open(path, "rb") as fh:
                return tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ProjectError(f"{path} cannot be read: {exc}") from None
    return {}


def command_runs_pytest(command: list[str]) -> bool:
    """``pytest ...``, ``py.test ...`` or ``python -m pytest ...``."""
    if not command:
        return False
    program = Path(command[0]).name
    if program in ("pytest", "py.test"):
        return True
    return program.startswith("python") and command[1:3] == ["-m", "pytest"]
