"""What one matrix environment holds, and how it is installed.

Every environment is installed by a single installer call under a
constraints file that pins ``mlx`` and its backend package (``mlx-cpu``,
``mlx-cuda``/``mlx-cuda-12``/``mlx-cuda-13``, ``mlx-metal``) and, when
asked, ``mlx-lm``: then neither a dependency nor the project itself can move
mlx (on Linux, mlx-lm >= 0.28.3 requires no mlx at all, which is how a new
mlx-lm lands on an old mlx in the first place).

Backend packages by mlx version (reference/mlx-compat.md): the CUDA 12 build
is ``mlx-cuda`` up to 0.30.0 and ``mlx-cuda-12`` from 0.30.1; ``mlx-cuda-13``
starts at 0.30.1.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import Version

__all__ = ["BACKENDS", "EnvSpec", "UnbuildableError", "default_backend", "split_extras"]

#: Backends ``--backend`` accepts: name -> (platform it exists on, backend mlx-portable uses).
BACKENDS: dict[str, tuple[str, str]] = {
    "cpu": ("any", "cpu"),
    "cuda12": ("linux", "cuda"),
    "cuda13": ("linux", "cuda"),
    "metal": ("darwin", "metal"),
}

_FIRST_SPLIT_CUDA = Version("0.30.1")  # mlx-cuda-12 / mlx-cuda-13 exist from here on
_PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg")


class UnbuildableError(ValueError):
    """No wheel can exist for this (mlx, backend, platform): known before any installer runs."""


def default_backend(platform: str | None = None) -> str:
    """``metal`` on macOS, ``cpu`` elsewhere (CUDA is asked for explicitly)."""
    return "metal" if (platform or sys.platform) == "darwin" else "cpu"


def split_extras(path: str) -> tuple[str, str]:
    """``"/p/proj[test,lm]"`` -> ``("/p/proj", "[test,lm]")``."""
    match = re.match(r"^(.*?)(\[[^\]]*\])?$", path)
    assert match is not None
    return match.group(1), match.group(2) or ""


def _minor_floor(mlx: str) -> Version:
    """``0.30.*`` -> 0.30.1 (its newest patch is at least that), else the version itself."""
    if mlx.endswith(".*"):
        base = Version(mlx[:-2])
        return Version(f"{base.major}.{base.minor}.{99}")
    return Version(mlx)


@dataclass(frozen=True)
class EnvSpec:
    """One matrix environment: mlx ``mlx`` on ``backend`` under interpreter ``python``."""

    mlx: str  #: a version, or ``X.Y.*`` (the installer picks the newest patch)
    backend: str  #: a key of :data:`BACKENDS`
    python: str  #: interpreter the environment is created from
    python_version: str  #: its ``major.minor``, part of the environment's name
    mlx_lm: str | None = None  #: a version (``0.32.2``) or specifier (``>=0.30``)
    requirements: tuple[str, ...] = ()  #: further requirements (``pytest``)
    editables: tuple[str, ...] = ()  #: project folders installed editable, with ``[extras]``
    platform: str = field(default_factory=lambda: sys.platform)
    #: installed after the rest without their dependencies (a package whose optional heavy
    #: dependencies the run does not need); part of the environment's name
    no_deps: tuple[str, ...] = ()
    #: what decides installed content beyond the requirements' text (the hash of a wheel file
    #: installed by path): a new value reinstalls
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise UnbuildableError(
                f"unknown backend {self.backend!r}: choose one of {', '.join(sorted(BACKENDS))}"
            )

    @property
    def name(self) -> str:
        """The environment's folder name, e.g. ``mlx0.26.5-cpu-py3.11`` (``-lm0.32.2`` when pinned)."""
        lm = ""
        if self.mlx_lm:
            lm = "-lm" + re.sub(r"[^0-9A-Za-z.]+", "_", self.mlx_lm).strip("_")
        extra = "".join("-" + re.sub(r"[^0-9A-Za-z.]+", "_", r).strip("_") for r in self.no_deps)
        return f"mlx{self.mlx.replace('*', 'x')}-{self.backend}{lm}{extra}-py{self.python_version}"

    @property
    def runtime_backend(self) -> str:
        """The backend mlx-portable is told to use in this environment."""
        return BACKENDS[self.backend][1]

    def mlx_requirements(self) -> tuple[list[str], list[str]]:
        """``(requirements, constraints)`` installing this mlx with its backend package.

        The backend package is named directly (``mlx==V mlx-cpu==V``) rather
        than through mlx's extras, which changed names across releases.
        Raises :class:`UnbuildableError` where no such build was ever published.
        """
        where, _ = BACKENDS[self.backend]
        system = "darwin" if self.platform == "darwin" else "linux"
        if where not in ("any", system):
            shown = "macOS" if where == "darwin" else "Linux"
            raise UnbuildableError(f"mlx's {self.backend} build exists only on {shown}, not on {system}")
        pin = f"=={self.mlx}"
        if self.backend == "metal" or (system == "darwin" and self.backend == "cpu"):
            # macOS: plain mlx brings Metal (mlx-metal from 0.27 on); the CPU is chosen at run time.
            return [f"mlx{pin}"], [f"mlx{pin}", f"mlx-metal{pin}"]
        split = _minor_floor(self.mlx) >= _FIRST_SPLIT_CUDA
        if self.backend == "cuda13" and not split:
            raise UnbuildableError(
                f"there is no CUDA 13 build of mlx {self.mlx}: mlx-cuda-13 starts at mlx 0.30.1 "
                "(use --backend cuda12, or a newer --mlx)"
            )
        package = {
            "cpu": "mlx-cpu",
            "cuda12": "mlx-cuda-12" if split else "mlx-cuda",
            "cuda13": "mlx-cuda-13",
        }
        pins = [f"mlx{pin}", f"{package[self.backend]}{pin}"]
        return pins, list(pins)

    def mlx_lm_requirement(self) -> str | None:
        if not self.mlx_lm:
            return None
        spec = self.mlx_lm.strip()
        return f"mlx-lm{spec}" if spec[0] in "<>=!~" else f"mlx-lm=={spec}"

    def constraints(self) -> list[str]:
        _, pins = self.mlx_requirements()
        lm = self.mlx_lm_requirement()
        return [*pins, *([lm] if lm else [])]

    def install_args(self, constraints_file: str) -> list[str]:
        """The installer's arguments after ``install`` (same for ``uv pip`` and ``pip``)."""
        requirements, _ = self.mlx_requirements()
        lm = self.mlx_lm_requirement()
        args = ["-c", constraints_file, *requirements, *([lm] if lm else []), *self.requirements]
        for path in self.editables:
            args += ["-e", path]
        return args

    def stamp(self) -> dict[str, Any]:
        """Everything that decides the environment's content; a changed stamp means reinstall.

        Includes a hash of each editable project's packaging files, so a new
        dependency in ``pyproject.toml`` reaches the environment.
        """
        return {
            "mlx": self.mlx,
            "backend": self.backend,
            "python": os.path.realpath(self.python),
            "mlx_lm": self.mlx_lm,
            "requirements": list(self.requirements),
            "no_deps": list(self.no_deps),
            "constraints": self.constraints(),
            "editables": {path: _project_hash(split_extras(path)[0]) for path in self.editables},
            **({"fingerprint": self.fingerprint} if self.fingerprint else {}),
        }


def _project_hash(folder: str) -> str:
    digest = hashlib.sha256()
    for name in _PROJECT_FILES:
        path = Path(folder) / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
