"""The compatibility matrix: the test suite on every supported mlx, each in its own venv.

One session per (mlx, mlx-lm) pair: the newest mlx-lm on every mlx from
0.26.5 to 0.32.4, plus the older mlx-lm 0.31.2 on the newest mlx.  Each runs
the fast lane (``-m "not slow"``) with the tests marked ``slow_every_mlx``, and
the other slow tests of the version-dependent subjects
(:data:`VERSION_DEPENDENT_SLOW`) on the versions of :data:`SLOW_ON` (elsewhere
the slow part of ``tests/matrix``); the README's test command runs
every test once, on the newest mlx, which keeps CI within its time.  Every
environment is built by ``mlx_portable.matrix`` (the machinery behind
``mlx-portable matrix``, so this project and its downstream users build
matrix environments one way): a single ``uv pip install`` under a
constraints file that pins ``mlx``, ``mlx-cpu`` (``mlx-metal`` on macOS) and
``mlx-lm``, so no dependency, and not the project itself, can move mlx.
Environments live in ``.mlx-portable/matrix/`` and are reused while their
pins and ``pyproject.toml`` are unchanged (no installer call at all);
delete the folder to rebuild them.  Wheels come from uv's shared cache.

    nox -s matrix                                  # all ten environments
    nox -s "matrix(mlx0.30.0-lm0.32.2)"             # one of them
    nox -k 0.29.4                                  # by keyword
    nox -s matrix -- tests/matrix -x               # other pytest arguments
    nox -s consumers                               # mlx-lm 0.24-0.31 x mlx 0.26.5, 0.32.4
    nox -s consumers_vlm                           # mlx-vlm on mlx 0.26.5, 0.32.4

See docs/matrix.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from mlx_portable.matrix.build import EnvBuildError, build_env, find_installer  # noqa: E402
from mlx_portable.matrix.selection import supported_versions  # noqa: E402
from mlx_portable.matrix.spec import EnvSpec, default_backend  # noqa: E402

nox.options.sessions = ["matrix", "consumers", "consumers_vlm"]

#: Where the matrix environments live (git-ignored; rebuilt on demand).
ENVS = ROOT / ".mlx-portable" / "matrix"

#: mlx versions the project supports (each is tested with the newest mlx-lm);
#: the one list is mlx_portable.versions.SUPPORTED_MLX_VERSIONS.
MLX_VERSIONS = supported_versions()
MLX_LM_NEWEST = "0.32.2"
#: The reverse direction: an older mlx-lm on the newest mlx.
OLD_MLX_LM_ON_NEWEST_MLX = ("0.32.4", "0.31.2")

MATRIX = [(mlx, MLX_LM_NEWEST) for mlx in MLX_VERSIONS] + [OLD_MLX_LM_ON_NEWEST_MLX]

#: The release axis: older mlx-lm releases users pin, on the oldest and the newest mlx.
#: Only the consumer tests run there (the full suite already runs on every mlx above).
CONSUMER_MLX = ("0.26.5", "0.32.4")
CONSUMER_MLX_LM = ("0.24.1", "0.26.4", "0.28.4", "0.30.7", "0.31.3")
CONSUMER_TESTS = ("tests/consumers", "tests/test_apidiff_consumers.py")
#: mlx-vlm (newest) on the same two mlx; installed without its optional heavy dependencies
#: (datasets, opencv, fastapi, mlx-audio): the tests need only its model and generation code.
MLX_VLM = "0.7.10"

#: The slow tests each matrix environment runs besides the fast lane: the subjects whose behaviour
#: depends on the mlx version (shims, the mlx-lm matrix, the simulated CUDA installs, the behaviour
#: sweep, the kernel fallbacks' models, activation in child processes and the pytest plugin, ``run``
#: with mlx-lm's server, ``check``, the distributed groups).
VERSION_DEPENDENT_SLOW = (
    "tests/matrix",
    "tests/cuda",
    "tests/test_apidiff_behaviour.py",
    "tests/test_fallback_models.py",
    "tests/test_fallback_numerics.py",
    "tests/test_activate_children.py",
    "tests/test_core_autoactivate.py",
    "tests/test_pytest_plugin.py",
    "tests/test_cli_run.py",
    "tests/test_cli_check.py",
    "tests/test_distributed_ring.py",
    "tests/test_distributed_pipeline.py",
    "tests/test_distributed_watchdog.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_shim_*.py")),
)

#: The mlx versions whose environments run all of VERSION_DEPENDENT_SLOW (the oldest, the middle, the
#: first with thread-local CPU streams; 0.32.4 gets them in the README's test command and with the
#: older mlx-lm); the others run the slow part of ``tests/matrix`` only, and the newest pair only
#: ``tests/matrix`` (the README's test command runs the rest there).  CI must stay within its 90
#: minutes: a full environment takes about 7 minutes on the 2-core machine, a fast-lane one 4.5.
SLOW_ON = ("0.26.5", "0.30.0", "0.32.0")

#: Lint and packaging tools in the dev extra that the tests do not need.
_NOT_FOR_TESTS = {"mypy", "ruff", "nox", "uv", "mkdocs"}


def _test_requirements() -> list[str]:
    """The dev extra of pyproject.toml, less the lint and packaging tools, plus what the cpu extra
    installs beside mlx (the optimized BLAS the ``cpu_blas`` patch binds), as ``mlx-portable[cpu]`` does."""
    extras = nox.project.load_toml(ROOT / "pyproject.toml")["project"]["optional-dependencies"]
    dev = [r for r in extras["dev"] if canonicalize_name(Requirement(r).name) not in _NOT_FOR_TESTS]
    return dev + [r for r in extras["cpu"] if canonicalize_name(Requirement(r).name) != "mlx"]


def _environment(
    session: nox.Session, mlx: str, mlx_lm: str, extra: tuple[str, ...] = (), no_deps: tuple[str, ...] = ()
) -> Path:
    """Build (or reuse) the environment for one pair; returns its interpreter."""
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    spec = EnvSpec(
        mlx,
        default_backend(),
        sys.executable,
        python_version,
        mlx_lm=mlx_lm,
        requirements=(*_test_requirements(), *extra),
        editables=(str(ROOT),),
        no_deps=no_deps,
    )
    try:
        built = build_env(spec, ENVS, find_installer(), on_step=session.log)
    except EnvBuildError as exc:
        session.error(f"cannot build the environment: {exc}")
    session.log(f"environment {built.folder.name}: {built.action} ({built.seconds:.1f} s)")
    return built.python


@nox.session(venv_backend="none")
@nox.parametrize(
    ("mlx", "mlx_lm"),
    [nox.param(mlx, mlx_lm, id=f"mlx{mlx}-lm{mlx_lm}") for mlx, mlx_lm in MATRIX],
)
def matrix(session: nox.Session, mlx: str, mlx_lm: str) -> None:
    """The test suite on one (mlx, mlx-lm) pair, CPU backend."""
    python = _environment(session, mlx, mlx_lm)
    env = {
        # Read by tests/matrix: they check the environment holds these versions.
        "MLX_PORTABLE_MATRIX_MLX": mlx,
        "MLX_PORTABLE_MATRIX_MLX_LM": mlx_lm,
        # Offline: the tiny model is built locally; nothing may reach a hub.
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    if session.posargs:
        session.run(str(python), "-m", "pytest", *session.posargs, env=env, external=True)
        return
    if (mlx, mlx_lm) == (MLX_VERSIONS[-1], MLX_LM_NEWEST):  # the README's test command's own pair
        session.run(
            str(python),
            "-m",
            "pytest",
            "tests/matrix",
            "-q",
            "-p",
            "no:cacheprovider",
            env=env,
            external=True,
        )
        return
    # Every test but the slow ones, then the slow tests of the subjects whose behaviour depends on
    # the mlx version; the rest of the slow tests (building venvs and matrix environments, servers,
    # the docs site) are version-independent and run once, in the README's test command.
    # The tests marked ``slow_every_mlx`` are out of the fast lane only to keep it short on a
    # 2-core machine: they run here on every mlx, with the fast lane, and not again below.
    quiet = ["-q", "-p", "no:cacheprovider"]
    every = "not slow or slow_every_mlx"
    session.run(str(python), "-m", "pytest", "tests", "-m", every, *quiet, env=env, external=True)
    subjects = VERSION_DEPENDENT_SLOW if mlx in SLOW_ON or mlx_lm != MLX_LM_NEWEST else ("tests/matrix",)
    rest = "slow and not slow_every_mlx"
    session.run(str(python), "-m", "pytest", *subjects, "-m", rest, *quiet, env=env, external=True)


@nox.session(venv_backend="none")
@nox.parametrize(
    ("mlx", "mlx_lm"),
    [nox.param(mlx, lm, id=f"mlx{mlx}-lm{lm}") for lm in CONSUMER_MLX_LM for mlx in CONSUMER_MLX],
)
def consumers(session: nox.Session, mlx: str, mlx_lm: str) -> None:
    """The consumer tests (generation in the main and a worker thread, the API check) on one release pair."""
    python = _environment(session, mlx, mlx_lm)
    env = {"MLX_PORTABLE_MATRIX_MLX": mlx, "MLX_PORTABLE_MATRIX_MLX_LM": mlx_lm, "HF_HUB_OFFLINE": "1"}
    args = session.posargs or [*CONSUMER_TESTS, "-q", "-p", "no:cacheprovider"]
    session.run(str(python), "-m", "pytest", *args, env=env, external=True)


@nox.session(venv_backend="none")
@nox.parametrize("mlx", [nox.param(mlx, id=f"mlx{mlx}-vlm{MLX_VLM}") for mlx in CONSUMER_MLX])
def consumers_vlm(session: nox.Session, mlx: str) -> None:
    """mlx-vlm generating from text and an image with a tiny random LLaVA, and the API check."""
    python = _environment(session, mlx, MLX_LM_NEWEST, ("pillow", "requests"), (f"mlx-vlm=={MLX_VLM}",))
    env = {"MLX_PORTABLE_MATRIX_MLX": mlx, "HF_HUB_OFFLINE": "1"}
    args = session.posargs or [*CONSUMER_TESTS, "-q", "-p", "no:cacheprovider"]
    session.run(str(python), "-m", "pytest", *args, env=env, external=True)


@nox.session(venv_backend="none")
@nox.parametrize("mlx", [nox.param(mlx, id=f"mlx{mlx}") for mlx in MLX_VERSIONS])
def families(session: nox.Session, mlx: str) -> None:
    """The full model-family sweep (every mlx-lm family x quant mode) on one mlx, CPU backend.

    Not in the default sessions: several minutes per mlx.  ``nox -s "families(mlx0.26.5)"``.
    """
    python = _environment(session, mlx, MLX_LM_NEWEST)
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    args = session.posargs or [
        "tests/families",
        "-m",
        "families or not families",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    session.run(str(python), "-m", "pytest", *args, env=env, external=True)
