"""The compatibility matrix: the test suite on every supported mlx, each in its own venv.

One session per (mlx, mlx-lm) pair: the newest mlx-lm on every mlx from
0.26.5 to 0.32.4, plus the older mlx-lm 0.31.2 on the newest mlx.  Every
environment is built by uv in a single ``uv pip install`` under a
constraints file that pins ``mlx``, ``mlx-cpu`` (``mlx-metal`` on macOS) and
``mlx-lm``, so no dependency, and not the project itself, can move mlx.
Wheels come from uv's shared cache; ``reuse_venv`` keeps an environment
whose pins are already satisfied as it is (uv then installs nothing).

    nox -s matrix                                  # all ten environments
    nox -s "matrix(mlx0.30.0-lm0.32.2)"             # one of them
    nox -k 0.29.4                                  # by keyword
    nox -s matrix -- tests/matrix -x               # other pytest arguments

See docs/matrix.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["matrix"]

ROOT = Path(__file__).resolve().parent

#: mlx versions the project supports (each is tested with the newest mlx-lm).
MLX_VERSIONS = ("0.26.5", "0.27.1", "0.28.0", "0.29.4", "0.30.0", "0.30.6", "0.31.2", "0.32.0", "0.32.4")
MLX_LM_NEWEST = "0.32.2"
#: The reverse direction: an older mlx-lm on the newest mlx.
OLD_MLX_LM_ON_NEWEST_MLX = ("0.32.4", "0.31.2")

MATRIX = [(mlx, MLX_LM_NEWEST) for mlx in MLX_VERSIONS] + [OLD_MLX_LM_ON_NEWEST_MLX]

#: Lint and packaging tools in the dev extra that the tests do not need.
_NOT_FOR_TESTS = {"mypy", "ruff", "nox", "uv"}


def _test_requirements() -> list[str]:
    """The dev extra of pyproject.toml, less the lint and packaging tools."""
    dev = nox.project.load_toml(ROOT / "pyproject.toml")["project"]["optional-dependencies"]["dev"]
    return [r for r in dev if canonicalize_name(Requirement(r).name) not in _NOT_FOR_TESTS]


def _constraints(session: nox.Session, mlx: str, mlx_lm: str) -> Path:
    path = Path(session.create_tmp()) / "constraints.txt"
    pins = [f"mlx=={mlx}", f"mlx-lm=={mlx_lm}"]
    pins.append(f"mlx-metal=={mlx}" if sys.platform == "darwin" else f"mlx-cpu=={mlx}")
    path.write_text("\n".join(pins) + "\n", encoding="utf-8")
    return path


@nox.session
@nox.parametrize(
    ("mlx", "mlx_lm"),
    [nox.param(mlx, mlx_lm, id=f"mlx{mlx}-lm{mlx_lm}") for mlx, mlx_lm in MATRIX],
)
def matrix(session: nox.Session, mlx: str, mlx_lm: str) -> None:
    """The test suite on one (mlx, mlx-lm) pair, CPU backend."""
    constraints = _constraints(session, mlx, mlx_lm)
    session.install(
        "-c",
        str(constraints),
        f"mlx[cpu]=={mlx}",
        f"mlx-lm=={mlx_lm}",
        *_test_requirements(),
        "-e",
        str(ROOT),
    )
    env = {
        # Read by tests/matrix: they check the environment holds these versions.
        "MLX_PORTABLE_MATRIX_MLX": mlx,
        "MLX_PORTABLE_MATRIX_MLX_LM": mlx_lm,
        # Offline: the tiny model is built locally; nothing may reach a hub.
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    args = session.posargs or ["tests", "-q", "-p", "no:cacheprovider"]
    session.run("python", "-m", "pytest", *args, env=env)


@nox.session
@nox.parametrize("mlx", [nox.param(mlx, id=f"mlx{mlx}") for mlx in MLX_VERSIONS])
def families(session: nox.Session, mlx: str) -> None:
    """The full model-family sweep (every mlx-lm family x quant mode) on one mlx, CPU backend.

    Not in the default sessions: several minutes per mlx.  ``nox -s "families(mlx0.26.5)"``.
    """
    constraints = _constraints(session, mlx, MLX_LM_NEWEST)
    session.install(
        "-c",
        str(constraints),
        f"mlx[cpu]=={mlx}",
        f"mlx-lm=={MLX_LM_NEWEST}",
        *_test_requirements(),
        "-e",
        str(ROOT),
    )
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    args = session.posargs or [
        "tests/families",
        "-m",
        "families or not families",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    session.run("python", "-m", "pytest", *args, env=env)
