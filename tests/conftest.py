"""Every shared fixture (listed in tests/README.md): mlx-portable state, tiny model, simulated CUDA."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from helpers.cuda_fake_site import FakeCudaInstall, shared_fake_cuda
from helpers.subproc import env_with_settings

# A throwaway downstream project with its own test suite (docs/downstream.md), run by
# tests/test_matrix_downstream.py through `mlx-portable matrix`, never collected here.
collect_ignore = ["downstream_example"]

_WRITE_SCRIPT = """
import sys
import mlx_portable
mlx_portable.activate()
from mlx_portable.cli.tiny_model import write_tiny_model
write_tiny_model(sys.argv[1], seed=0)
"""


def _require(module: str) -> None:
    # Skip where the package is not installed; a package that is installed but
    # fails to import is a real failure and must not turn into a skip.
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny llama model directory (seed 0), written once per test session.

    Written in a fresh interpreter so that this process stays as the tests
    left it: writing imports ``mlx_lm`` (its model classes build the
    weights), which on mlx < 0.31.2 needs mlx-portable activated first.
    Skipped where mlx-lm or ``tokenizers`` is not installed.
    """
    _require("mlx_lm")
    _require("tokenizers")
    path = tmp_path_factory.mktemp("tiny-model") / "llama"
    done = subprocess.run(
        [sys.executable, "-c", _WRITE_SCRIPT, str(path)],
        env=env_with_settings(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"writing the tiny model failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return path


@pytest.fixture(scope="session")
def python_env() -> dict[str, str]:
    """Environment for a child ``python`` that imports this checkout's mlx_portable."""
    return env_with_settings()


@pytest.fixture
def activated() -> Iterator[None]:
    """mlx-portable active during the test; deactivated after it unless it was active before.

    A whole file asks for it with ``pytestmark = pytest.mark.usefixtures("activated")``.
    """
    import mlx_portable

    was_active = mlx_portable.is_active()
    mlx_portable.activate()
    try:
        yield None
    finally:
        if not was_active:
            mlx_portable.deactivate()


@pytest.fixture
def deactivated_after() -> Iterator[None]:
    """Deactivates mlx-portable after the test, whatever the test switched on.

    For tests that compare the same call before and after ``activate()``.
    """
    import mlx_portable

    yield None
    mlx_portable.deactivate()


@pytest.fixture(scope="session")
def fake_cuda(tmp_path_factory: pytest.TempPathFactory) -> FakeCudaInstall:
    """A simulated CUDA machine: mlx + mlx-cuda-13 0.32.4 and the nvidia-* CUDA 13 wheels.

    Real shared objects built with gcc (skipped without it), once per session.
    """
    return shared_fake_cuda(tmp_path_factory)


@pytest.fixture
def mlx_lm_activated() -> Iterator[ModuleType]:
    """``mlx_lm``, imported with mlx-portable active (needed on mlx < 0.31.2).

    Deactivates afterwards unless mlx-portable was active before the test.
    """
    _require("mlx_lm")
    import mlx_portable

    was_active = mlx_portable.is_active()
    mlx_portable.activate()
    try:
        yield importlib.import_module("mlx_lm")
    finally:
        if not was_active:
            mlx_portable.deactivate()


#: Fixtures that cost seconds the first time (``tiny_model_dir`` writes a model in a
#: child interpreter that imports mlx-lm): a test using one is ``slow`` without saying
#: so, or the fast lane (``-m "not slow"``) would pay for it in whichever test came first.
SLOW_FIXTURES = frozenset({"tiny_model_dir"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests using a :data:`SLOW_FIXTURES` fixture or marked ``slow_every_mlx`` are marked ``slow``;
    the family sweep is opt-in.

    ``slow_every_mlx`` keeps the fast lane (``-m "not slow"``) under a minute on a 2-core machine
    while the compatibility matrix still runs those tests on every mlx (``-m "not slow or
    slow_every_mlx"`` in noxfile.py): they are slow here, not version-independent.

    The full family sweep (tests/families): without ``-m families`` it is deselected.

    Deselected, not skipped: a skip would say "could not run here"; these run
    anywhere, they are just long (about 3 minutes per mlx), so the default run
    leaves them out and pytest counts them as deselected.  ``-m families`` or
    ``nox -s "families(mlxX)"`` runs them.
    """
    for item in items:
        uses_slow_fixture = SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses_slow_fixture or item.get_closest_marker("slow_every_mlx") is not None:
            item.add_marker(pytest.mark.slow)
    if "families" in (config.getoption("markexpr") or ""):
        return
    sweep = [item for item in items if item.get_closest_marker("families") is not None]
    if sweep:
        config.hook.pytest_deselected(items=sweep)
        items[:] = [item for item in items if item.get_closest_marker("families") is None]
