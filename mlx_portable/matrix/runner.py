"""Run one command in each matrix environment, activated, and collect the results.

Activation is the environment switch (``MLX_PORTABLE_AUTOACTIVATE=1``, read
by the ``.pth`` hook that mlx-portable's wheel installs): every Python process
the command starts, and each of their children, comes up with mlx-portable
active, without any change to the project.  ``activate=False`` runs the same
command with mlx-portable switched off (``MLX_PORTABLE=0``), to show what
fails without it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .build import BuiltEnv, EnvBuildError, Installer, build_env, run_child
from .spec import EnvSpec

__all__ = ["Result", "command_env", "installed_mlx", "run_matrix"]

PASSED, FAILED, INTERRUPTED, NOT_RUN = "passed", "failed", "interrupted", "not run"


@dataclass
class Result:
    """One row of the matrix."""

    spec: EnvSpec
    status: str = NOT_RUN  #: passed, failed, interrupted, not run, or an EnvBuildError kind
    exit: int | None = None
    seconds: float | None = None
    env: BuiltEnv | None = None
    mlx_installed: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mlx": self.spec.mlx,
            "mlx_installed": self.mlx_installed,
            "backend": self.spec.backend,
            "mlx_lm": self.spec.mlx_lm,
            "status": self.status,
            "exit": self.exit,
            "seconds": None if self.seconds is None else round(self.seconds, 2),
            "env": None if self.env is None else str(self.env.folder),
            "env_action": None if self.env is None else self.env.action,
            "env_seconds": None if self.env is None else round(self.env.seconds, 2),
            "error": self.error,
        }


def command_env(
    folder: Path, runtime_backend: str, activate: bool, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The command's environment: the venv first on ``PATH``, mlx-portable on or off."""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONHOME", None)
    env["VIRTUAL_ENV"] = str(folder)
    env["PATH"] = os.pathsep.join([str(folder / "bin"), env.get("PATH", "")])
    if activate:
        env["MLX_PORTABLE_AUTOACTIVATE"] = "1"
        env.setdefault("MLX_PORTABLE_BACKEND", runtime_backend)
        if env.get("MLX_PORTABLE", "1").strip().lower() in ("0", "false", "no", "off"):
            env.pop("MLX_PORTABLE")
    else:
        env.pop("MLX_PORTABLE_AUTOACTIVATE", None)
        env["MLX_PORTABLE"] = "0"
    return env


def installed_mlx(folder: Path) -> str | None:
    """The mlx version installed in the environment (from its ``dist-info`` folder)."""
    from ..versions import installed_mlx_packages

    sites = [str(p) for p in folder.glob("lib/python*/site-packages")]
    found = installed_mlx_packages(sites).get("mlx")
    return None if found is None else found[0]


class _Ticker:
    """Rewrites the progress line every second on a terminal while a step runs."""

    def __init__(self, write: Callable[[str], None], live: bool) -> None:
        self.write, self.live = write, live
        self.text, self.start = "", time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self, text: str) -> None:
        self.text = text
        self.write(text)
        if self.live and self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.write(f"{self.text} {time.monotonic() - self.start:.0f} s")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _progress_writer(progress: Any, tag: str) -> Callable[[str], None]:
    def write(text: str) -> None:
        if progress is not None:
            progress.step(f"{tag}: {text}")

    return write


def run_matrix(
    specs: list[EnvSpec],
    command: list[str],
    *,
    envs: Path,
    installer: Installer,
    cwd: Path,
    activate: bool = True,
    rebuild: bool = False,
    stdout: TextIO | None = None,
    progress: Any = None,
    note: Callable[[str], None] | None = None,
    exit_first: bool = False,
    jobs: int = 1,
) -> tuple[list[Result], bool]:
    """Build each environment and run ``command`` in it; ``(results, interrupted)``.

    ``exit_first``: stop at the first row that does not pass (the rest stay
    ``not run``).  ``jobs`` > 1: build the environments that many at a time
    first (the installer's downloads and unpacking overlap), then run the
    command in each, one after another, so its output stays readable.
    """
    results = [Result(spec) for spec in specs]
    say = note or (lambda _text: None)
    prebuilt: dict[int, BuiltEnv | EnvBuildError] = {}
    if jobs > 1 and len(specs) > 1:
        try:
            prebuilt = _build_all(specs, envs, installer, rebuild=rebuild, jobs=jobs, say=say)
        except KeyboardInterrupt:
            for result in results:
                result.status = INTERRUPTED
            return results, True
    for index, result in enumerate(results, 1):
        spec = result.spec
        tag = f"[{index}/{len(specs)}] mlx {spec.mlx} ({spec.backend})"
        ticker = _Ticker(_progress_writer(progress, tag), bool(progress is not None and progress.live))
        try:
            try:
                ready = prebuilt.get(index)
                if isinstance(ready, EnvBuildError):
                    raise ready
                result.env = ready or build_env(spec, envs, installer, rebuild=rebuild, on_step=ticker.step)
            finally:
                ticker.stop()
                if progress is not None:
                    progress.done()
        except EnvBuildError as exc:
            result.status, result.error = exc.kind, str(exc)
            say(f"{tag}: cannot build the environment: {exc}")
            if exit_first:
                say(f"{tag}: stopping here (-x)")
                return results, False
            continue
        except KeyboardInterrupt:
            result.status = INTERRUPTED
            return results, True
        result.mlx_installed = installed_mlx(result.env.folder)
        built = result.env.action
        say(f"{tag}: environment {built}" + ("" if built == "reused" else f" in {result.env.seconds:.1f} s"))
        env = command_env(result.env.folder, spec.runtime_backend, activate)
        program = shutil.which(command[0], path=env["PATH"]) or command[0]
        say(f"{tag}: {shlex.join(command)}" + ("" if activate else "  (mlx-portable off)"))
        start = time.monotonic()
        try:
            result.exit = run_child([program, *command[1:]], env=env, cwd=cwd, stdout=stdout)
        except FileNotFoundError:
            result.status, result.error = FAILED, f"{command[0]}: command not found in {result.env.folder}"
            say(f"{tag}: {result.error}")
            continue
        except KeyboardInterrupt:
            result.seconds = time.monotonic() - start
            result.status = INTERRUPTED
            return results, True
        result.seconds = time.monotonic() - start
        result.status = PASSED if result.exit == 0 else FAILED
        say(f"{tag}: {result.status} (exit {result.exit}) in {result.seconds:.1f} s")
        if exit_first and result.status != PASSED:
            say(f"{tag}: stopping here (-x)")
            break
    return results, False


def _build_all(
    specs: list[EnvSpec],
    envs: Path,
    installer: Installer,
    *,
    rebuild: bool,
    jobs: int,
    say: Callable[[str], None],
) -> dict[int, BuiltEnv | EnvBuildError]:
    """Build every environment, ``jobs`` at a time: row index (1-based) -> the env or why not."""
    from concurrent.futures import ThreadPoolExecutor

    say(f"building {len(specs)} environments, {jobs} at a time")
    start = time.monotonic()

    def one(spec: EnvSpec) -> BuiltEnv | EnvBuildError:
        try:
            return build_env(spec, envs, installer, rebuild=rebuild)
        except EnvBuildError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        built = list(pool.map(one, specs))
    say(f"environments ready in {time.monotonic() - start:.1f} s")
    return dict(enumerate(built, 1))
