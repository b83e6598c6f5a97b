"""pytest plugin: run a test suite, and every Python process it starts, with mlx-portable active.

Off unless asked: ``pytest --mlx-portable``, or ``mlx_portable = true`` in the
pytest ini options (``--no-mlx-portable`` overrides the ini).  When on, it

- sets the environment switch ``MLX_PORTABLE_AUTOACTIVATE=1`` before any
  test runs, so each Python child the tests start (``subprocess``,
  ``multiprocessing`` spawn and forkserver workers, ``mlx.launch`` ranks)
  comes up activated through the ``.pth`` hook of mlx-portable's wheel; fork
  children inherit the active parent;
- activates mlx-portable in the pytest process before conftest files and
  test modules import mlx;
- prints the activation summary in pytest's header.

The ``mlx`` marker and the fixtures work with or without activation:
``@pytest.mark.mlx(">=0.30", backend="cpu")`` skips a test outside that mlx
range or off that backend (``xfail=True``: runs it and expects it to fail
there instead); fixtures ``mlx_backend``, ``mlx_version``,
``mlx_portable_report`` and ``mlx_child_env``.

Why a top-level module and not ``mlx_portable.pytest_plugin``: pytest loads
every installed plugin in every run, and importing anything under
``mlx_portable`` applies its import-time shims; this module imports
mlx-portable only when asked to activate it or when a fixture needs it, so
an installed-but-off plugin leaves mlx exactly as it is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["BACKENDS", "ENV_SWITCH", "PTH_FILE"]

ENV_SWITCH = "MLX_PORTABLE_AUTOACTIVATE"
#: The ``.pth`` hook that reads the switch as each interpreter starts (installed by the wheel).
PTH_FILE = "mlx_portable_autoactivate.pth"
#: Backend names the marker accepts (mlx-portable's backends; a test checks they agree).
BACKENDS = ("metal", "cuda", "cpu")
_MARKER_HELP = (
    "mlx(spec=None, *, backend=None, xfail=False, reason=None, strict=None): run only on mlx versions "
    "matching spec (e.g. '>=0.30') and on backend(s) (metal, cuda, cpu); elsewhere skip, or with "
    "xfail=True expect failure. From mlx-portable."
)
_TRUE = ("1", "true", "yes", "on")

_state = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlx-portable")
    group.addoption(
        "--mlx-portable",
        action="store_true",
        dest="mlx_portable",
        default=None,
        help=f"activate mlx-portable in this process and every Python child ({ENV_SWITCH}=1)",
    )
    group.addoption(
        "--no-mlx-portable",
        action="store_false",
        dest="mlx_portable",
        help="do not activate mlx-portable, whatever the ini file says",
    )
    parser.addini(
        "mlx_portable", type="bool", default=False, help="activate mlx-portable (as --mlx-portable)"
    )


def _wanted(config: pytest.Config) -> bool:
    return _requested_by(config) is not None


def _requested_by(config: pytest.Config) -> str | None:
    """What switched the plugin on, as the header says it: the option, the ini setting, or nothing."""
    chosen = getattr(config.known_args_namespace, "mlx_portable", None)
    if chosen is None:
        chosen = getattr(config.option, "mlx_portable", None)
    if chosen is not None:
        return "--mlx-portable" if chosen else None
    if not config.getini("mlx_portable"):
        return None
    where = config.inipath.name if config.inipath is not None else "the ini file"
    return f"mlx_portable = true in {where}"


def _switch_on(env: Any = None) -> bool:
    return (os.environ if env is None else env).get(ENV_SWITCH, "").strip().lower() in _TRUE


def _activate(config: pytest.Config) -> None:
    if _state in config.stash:
        return
    previous = os.environ.get(ENV_SWITCH)
    os.environ[ENV_SWITCH] = "1"
    import mlx_portable

    try:
        report = mlx_portable.activate()
    except Exception as exc:  # a bad MLX_PORTABLE_* value, a forced backend that is missing
        raise pytest.UsageError(f"--mlx-portable: activate() failed: {type(exc).__name__}: {exc}") from None
    by = _requested_by(config) or "--mlx-portable"
    config.stash[_state] = {"by": by, "report": report, "previous": previous, "restore": True}


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Before conftest files load: they may import mlx_lm, which needs the shims first."""
    if _wanted(early_config):
        _activate(early_config)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_HELP)
    if _wanted(config):
        _activate(config)  # no-op when pytest_load_initial_conftests did it
    elif _switch_on() and "mlx_portable" in sys.modules:
        # Activated by the environment (e.g. under ``mlx-portable matrix``): say so in the header.
        config.stash[_state] = {"by": f"{ENV_SWITCH}=1", "report": None, "previous": os.environ[ENV_SWITCH]}


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_state, None)
    if state is None or not state.get("restore"):
        return
    if state["previous"] is None:
        os.environ.pop(ENV_SWITCH, None)
    else:
        os.environ[ENV_SWITCH] = state["previous"]


def pth_installed() -> str | None:
    """The site folder holding the ``.pth`` hook for this interpreter, or ``None``."""
    import site

    folders = [*site.getsitepackages(), site.getusersitepackages()]
    return next((f for f in folders if os.path.isfile(os.path.join(f, PTH_FILE))), None)


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash.get(_state, None)
    if state is None:
        return []
    import mlx_portable

    report = mlx_portable.report()
    applied = ", ".join(p.name for p in report.applied) or "none"
    mlx = report.versions.get("mlx") or "not installed"
    lines = [
        f"mlx-portable {mlx_portable.__version__}: active ({state['by']}), backend {report.backend or '-'}, "
        f"mlx {mlx}; patches applied: {applied}"
    ]
    if pth_installed() is not None:
        lines.append(f"mlx-portable: Python child processes start activated ({ENV_SWITCH}=1)")
    else:
        lines.append(
            f"mlx-portable: WARNING: child processes will NOT be activated: {PTH_FILE} is not in this "
            "interpreter's site-packages (mlx-portable imported from a source folder?); install "
            "mlx-portable with pip or uv (an editable install is enough)"
        )
    return lines


# -- the marker -------------------------------------------------------------


def _mlx_version() -> Any:
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    try:
        return Version(version("mlx"))
    except PackageNotFoundError:
        return None


def _backend(config: pytest.Config | None = None) -> str:
    """The backend tests run on: mlx-portable's choice when active, else mlx's own default."""
    portable = sys.modules.get("mlx_portable")
    if portable is not None and portable.is_active():
        return str(portable.report().backend)
    import mlx.core as mx

    if mx.metal.is_available():
        return "metal"
    cuda = getattr(mx, "cuda", None)
    return "cuda" if cuda is not None and cuda.is_available() else "cpu"


def _mismatch(mark: pytest.Mark, nodeid: str, facts: dict[str, Any]) -> str | None:
    """Why the test should not (or is not expected to) pass here, or ``None``."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    unknown = set(mark.kwargs) - {"backend", "xfail", "reason", "strict"}
    if len(mark.args) > 1 or unknown:
        raise pytest.UsageError(
            f"{nodeid}: @pytest.mark.mlx takes one version specifier and "
            f"backend=, xfail=, reason=, strict= (got {mark.args}, {sorted(unknown)})"
        )
    why = []
    if mark.args:
        text = str(mark.args[0]).strip()
        try:
            spec = SpecifierSet(text if text[:1] in "<>=!~" else f"=={text}")
        except InvalidSpecifier:
            raise pytest.UsageError(
                f"{nodeid}: @pytest.mark.mlx({text!r}): not a version specifier (e.g. '>=0.30', '<0.31.2')"
            ) from None
        if "version" not in facts:
            facts["version"] = _mlx_version()
        installed = facts["version"]
        if installed is None:
            return "mlx is not installed"
        if installed not in spec:
            why.append(f"needs mlx {spec}, this is mlx {installed}")
    wanted = mark.kwargs.get("backend")
    if wanted is not None:
        names = (wanted,) if isinstance(wanted, str) else tuple(wanted)
        bad = [n for n in names if n not in BACKENDS]
        if bad:
            raise pytest.UsageError(
                f"{nodeid}: @pytest.mark.mlx(backend={wanted!r}): unknown backend "
                f"{', '.join(map(str, bad))}; use {', '.join(BACKENDS)}"
            )
        if "backend" not in facts:
            facts["backend"] = _backend()
        if facts["backend"] not in names:
            why.append(f"needs the {' or '.join(names)} backend, this is {facts['backend']}")
    return "; ".join(why) or None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    facts: dict[str, Any] = {}  # mlx version and backend, looked up once, only if a test is marked
    for item in items:
        for mark in item.iter_markers("mlx"):
            why = _mismatch(mark, item.nodeid, facts)
            if why is None:
                continue
            reason = f"{mark.kwargs['reason']}: {why}" if mark.kwargs.get("reason") else why
            if mark.kwargs.get("xfail"):
                extra = {"strict": mark.kwargs["strict"]} if "strict" in mark.kwargs else {}
                item.add_marker(pytest.mark.xfail(reason=reason, **extra))
            else:
                item.add_marker(pytest.mark.skip(reason=reason))
            break


# -- fixtures -----------------------------------------------------------------


@pytest.fixture(scope="session")
def mlx_backend() -> str:
    """``"metal"``, ``"cuda"`` or ``"cpu"``: the backend these tests run on."""
    return _backend()


@pytest.fixture(scope="session")
def mlx_version() -> Any:
    """The installed mlx as a ``packaging.version.Version`` (skips the test without mlx)."""
    found = _mlx_version()
    if found is None:
        pytest.skip("mlx is not installed")
    return found


@pytest.fixture
def mlx_portable_report() -> Any:
    """mlx-portable's :class:`ActivationReport` (skips the test when mlx-portable is not active)."""
    portable = sys.modules.get("mlx_portable")
    if portable is None or not portable.is_active():
        pytest.skip("mlx-portable is not active (run pytest --mlx-portable)")
    return portable.report()


@pytest.fixture
def mlx_child_env() -> Iterator[dict[str, str]]:
    """An ``env=`` for ``subprocess`` children that keeps them activated when this run is.

    For tests that build a child's environment from scratch and so would
    drop the switch (and, on CUDA, the NVIDIA library path).
    """
    portable = sys.modules.get("mlx_portable")
    if portable is not None and portable.is_active():
        yield portable.subprocess_env(autoactivate=_switch_on())
    else:
        yield dict(os.environ)
