"""Create, reuse and install a matrix environment with uv (pip when uv is absent).

An environment lives in ``<envs>/<spec.name>/`` with a ``matrix-env.json``
stamp written after a successful install.  Next time:

- same stamp and a working interpreter: reused as it is, no installer call;
- a different stamp (new pins, a changed ``pyproject.toml``): the installer
  runs again in place, which installs only what changed;
- no stamp (never finished, interrupted) or ``rebuild=True``: deleted and
  built from scratch.

So the whole folder can be deleted at any time and is rebuilt on demand.
The installer's output goes to ``<env>/install.log``; a failure becomes an
:class:`EnvBuildError` whose ``kind`` says why (``no-wheel``, ``no-version``,
``python``, ``install-failed``) and whose message quotes the installer's reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .spec import EnvSpec, UnbuildableError

__all__ = [
    "BuiltEnv",
    "EnvBuildError",
    "Installer",
    "build_env",
    "classify_failure",
    "env_python",
    "env_state",
    "find_installer",
    "run_child",
    "write_ignore_file",
]

STAMP = "matrix-env.json"
#: Box-drawing characters uv puts in front of its error lines.
_DECORATION = " \u2502\u2570\u2500\u25b6\u00d7"
LOG = "install.log"

#: Grace given to a child after Ctrl-C before it is sent SIGINT, then SIGTERM, then SIGKILL.
_GRACE_S = (3.0, 10.0, 5.0)


class EnvBuildError(Exception):
    """An environment could not be built; ``kind`` is the reason's class."""

    def __init__(self, kind: str, message: str, log: Path | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.log = log


@dataclass(frozen=True)
class Installer:
    """``uv`` (``uv pip install --python ENV``) or ``pip`` (``ENV -m pip install``)."""

    name: str  #: "uv" or "pip"
    uv: str | None = None  #: path of the uv executable

    def create_command(self, python: str, folder: Path) -> list[str]:
        if self.uv is not None:
            # --seed: pip in the environment, as in a venv made by python -m venv; a downstream
            # project's tests (and install hints) may call it.
            return [self.uv, "venv", "--seed", "--python", python, str(folder)]
        return [python, "-m", "venv", str(folder)]

    def install_command(self, python: str, args: Sequence[str]) -> list[str]:
        if self.uv is not None:
            return [self.uv, "pip", "install", "--python", python, *args]
        return [python, "-m", "pip", "install", "--disable-pip-version-check", *args]


def find_installer(prefer: str | None = None) -> Installer:
    """uv when it is on ``PATH`` or next to this interpreter, else pip; ``prefer`` forces one."""
    if prefer == "pip":
        return Installer("pip")
    here = Path(sys.executable).parent / ("uv.exe" if os.name == "nt" else "uv")
    uv = shutil.which("uv") or (str(here) if here.is_file() else None)
    if uv is not None:
        return Installer("uv", uv)
    if prefer == "uv":
        raise EnvBuildError("install-failed", "--installer uv: uv is not installed (pip install uv)")
    return Installer("pip")


def env_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@dataclass(frozen=True)
class BuiltEnv:
    """A ready environment and how it got ready (``built``, ``updated`` or ``reused``)."""

    spec: EnvSpec
    folder: Path
    python: Path
    action: str
    seconds: float


def write_ignore_file(envs: Path) -> None:
    """A ``.gitignore`` holding ``*`` in the environments' folder, so git never sees it."""
    envs.mkdir(parents=True, exist_ok=True)
    ignore = envs / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Matrix environments (mlx-portable matrix); rebuilt on demand.\n*\n")


def build_env(
    spec: EnvSpec,
    envs: Path,
    installer: Installer,
    *,
    rebuild: bool = False,
    on_step: Any = None,
) -> BuiltEnv:
    """Make ``envs/<spec.name>`` hold exactly ``spec``; ``on_step(text)`` hears each step."""
    start = time.monotonic()
    try:
        spec.mlx_requirements()
    except UnbuildableError as exc:
        raise EnvBuildError("no-wheel", str(exc)) from None
    write_ignore_file(envs)
    folder = envs / spec.name
    python = env_python(folder)
    stamp_path = folder / STAMP
    wanted = spec.stamp()
    old = _read_stamp(stamp_path)
    if not rebuild and old == wanted and _works(python):
        return BuiltEnv(spec, folder, python, "reused", time.monotonic() - start)
    # A file installed by path whose content changed keeps its name and version: an installer
    # would call it satisfied, so the environment is built afresh (from the installer's cache).
    refreshed = old is not None and old.get("fingerprint") != wanted.get("fingerprint")
    fresh = rebuild or old is None or refreshed or not _works(python)
    log_path = folder.parent / f"{spec.name}.{LOG}"
    with open(log_path, "w", encoding="utf-8") as log:
        if fresh:
            if folder.exists():
                shutil.rmtree(folder)
            _step(on_step, f"creating the environment ({installer.name})")
            _checked(installer.create_command(spec.python, folder), log, log_path, "install-failed")
        stamp_path.unlink(missing_ok=True)
        constraints = folder / "constraints.txt"
        constraints.write_text("\n".join(spec.constraints()) + "\n", encoding="utf-8")
        _step(on_step, f"installing mlx {spec.mlx} ({spec.backend}) and the project ({installer.name})")
        try:
            install = installer.install_command(str(python), spec.install_args(str(constraints)))
            _checked(install, log, log_path)
            if spec.no_deps:
                args = ["-c", str(constraints), "--no-deps", *spec.no_deps]
                _checked(installer.install_command(str(python), args), log, log_path)
        except EnvBuildError as exc:
            raise _mlx_alone(spec, installer, python, log, log_path) or exc from None
    stamp_path.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
    shutil.move(str(log_path), str(folder / LOG))
    return BuiltEnv(spec, folder, python, "built" if fresh else "updated", time.monotonic() - start)


def env_state(spec: EnvSpec, envs: Path) -> str:
    """What :func:`build_env` would do, without doing it: ``reuse``, ``update`` or ``build``."""
    folder = envs / spec.name
    old = _read_stamp(folder / STAMP)
    if old is None or not _works(env_python(folder)):
        return "build"
    if old == spec.stamp():
        return "reuse"
    return "build" if old.get("fingerprint") != spec.stamp().get("fingerprint") else "update"


def _mlx_alone(
    spec: EnvSpec, installer: Installer, python: Path, log: IO[str], log_path: Path
) -> EnvBuildError | None:
    """After a failed install: is mlx itself uninstallable here?  Then say so plainly.

    The full install's error names whichever conflict the resolver met
    first; a dry run of the mlx requirement alone tells "no mlx wheel for this
    platform and Python" apart from a problem of the project's own.
    """
    import platform

    requirements, _ = spec.mlx_requirements()
    requirement = " ".join(requirements)
    log.write("\n# is mlx alone installable here?\n")
    try:
        _checked(installer.install_command(str(python), ["--dry-run", *requirements]), log, log_path)
    except EnvBuildError as exc:
        if exc.kind == "no-version":
            return EnvBuildError(exc.kind, f"{requirement} is not on the package index: {exc}", log_path)
        where = f"{platform.system()} {platform.machine()}, Python {spec.python_version}"
        message = f"no wheel of {requirement} for this platform and Python ({where}): {exc}"
        return EnvBuildError("no-wheel", message, log_path)
    return None


def _step(on_step: Any, text: str) -> None:
    if on_step is not None:
        on_step(text)


def _read_stamp(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _works(python: Path) -> bool:
    return python.is_file() and os.access(python, os.X_OK)


def _checked(argv: list[str], log: IO[str], log_path: Path, kind: str | None = None) -> None:
    log.write("$ " + " ".join(argv) + "\n")
    log.flush()
    start = log.tell()
    status = run_child(argv, stdout=log, stderr=subprocess.STDOUT)
    if status == 0:
        return
    log.seek(0, os.SEEK_END)
    with open(log_path, encoding="utf-8", errors="replace") as fh:
        fh.seek(start)
        found, reason = classify_failure(fh.read())
    raise EnvBuildError(kind or found, reason + f" (installer log: {log_path})", log_path)


def classify_failure(text: str) -> tuple[str, str]:
    """The installer's output -> ``(kind, reason)``; the reason quotes its key lines."""
    lower = text.lower()
    if "no wheels with a matching" in lower or "no matching distribution found" in lower:
        kind = "no-wheel"
    elif "there is no version of" in lower or "could not find a version that satisfies" in lower:
        kind = "no-version"
    elif "requires-python" in lower or "requires python" in lower or "python>=" in lower:
        kind = "python"
    else:
        kind = "install-failed"
    keys = ("because", "cause:", "hint:", "error:", "error ")
    stripped = [ln.strip(_DECORATION) for ln in text.splitlines()]
    lines = [ln for ln in stripped if ln.lower().startswith(keys)] or [ln for ln in stripped if ln][-5:]
    return kind, "; ".join(dict.fromkeys(lines))[:1500]


def run_child(argv: Sequence[str], *, env: Mapping[str, str] | None = None, **kwargs: Any) -> int:
    """Run ``argv`` to the end; on Ctrl-C stop it cleanly, then re-raise ``KeyboardInterrupt``.

    A terminal's Ctrl-C reaches the whole foreground process group, so the
    child usually stops by itself; it gets a few seconds, then SIGINT (for a
    SIGINT sent to this process alone), then SIGTERM, then SIGKILL.  The
    child is always reaped: no orphan keeps running after the command returns.
    """
    proc = subprocess.Popen(list(argv), env=None if env is None else dict(env), **kwargs)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        _stop(proc)
        raise


def _stop(proc: subprocess.Popen[Any]) -> None:
    steps = (None, signal.SIGINT, signal.SIGTERM)
    for sig, grace in zip(steps, _GRACE_S, strict=True):
        try:
            if sig is not None and proc.poll() is None:
                proc.send_signal(sig)
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting politely
            break
    if proc.poll() is None:
        proc.kill()
        proc.wait()
