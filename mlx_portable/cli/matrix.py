"""``mlx-portable matrix [options] -- COMMAND...``: a command on every mlx version.

Builds (or reuses) one isolated environment per mlx version, installs the
project at hand into each (with mlx-portable), runs COMMAND there with
mlx-portable activated in every Python process, and prints a table of mlx
version, exit status and time (``--json``: the same as JSON on stdout, the
command's own output on stderr).  Exit status: 0 every run passed, 1 a run
failed, 2 an environment could not be built (or bad arguments), 130
interrupted.  See docs/downstream.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = ["add_parser", "execute"]

ENVS_VARIABLE = "MLX_PORTABLE_MATRIX_ENVS"
DEFAULT_ENVS = Path(".mlx-portable") / "matrix"
EXIT_FAILED, EXIT_CANNOT_BUILD, EXIT_INTERRUPTED = 1, 2, 130


def add_parser(sub: Any) -> None:
    """Register the ``matrix`` subcommand on the command line's subparsers."""
    matrix = sub.add_parser(
        "matrix",
        help="run a command (e.g. your tests) on every supported mlx version, each in its own venv",
        description="Build (and reuse) one virtual environment per mlx version with uv (pip when uv is "
        "absent), install the project in the current folder into each, run COMMAND there with "
        "mlx-portable activated in every Python process, and print mlx version x exit status x time. "
        "Exit status: 0 all passed, 1 a run failed, 2 an environment could not be built, 130 interrupted.",
        usage="mlx-portable matrix [options] -- COMMAND [ARGS ...]",
    )
    add = matrix.add_argument
    add(
        "--mlx",
        metavar="SPECS",
        help="versions (0.26.5,0.30), one specifier set ('>=0.30'), or 'all' "
        "(default: the newest patch of each supported minor)",
    )
    add(
        "--backend",
        choices=("cpu", "cuda12", "cuda13", "metal"),
        help="mlx build to install (default: metal on macOS, cpu elsewhere)",
    )
    add("--with-mlx-lm", metavar="SPEC", help="pin mlx-lm in every environment (0.32.2 or '>=0.30')")
    add(
        "--with",
        dest="requirements",
        action="append",
        default=[],
        metavar="REQ",
        help="also install REQ (repeatable)",
    )
    add(
        "--extras",
        metavar="NAMES",
        help="the project's extras to install, comma-separated "
        "(default: its 'test' or 'tests' extra if it has one; '' for none)",
    )
    add("--project", metavar="DIR", default=".", help="the project to install (default: the current folder)")
    add(
        "--mlx-portable",
        dest="mlx_portable",
        metavar="SOURCE",
        help="the mlx-portable to install in each environment: a folder (editable), a wheel, a URL "
        "or a requirement (default: the one running this command, however it was installed)",
    )
    add(
        "--envs",
        metavar="DIR",
        help=f"where environments live (default: ${ENVS_VARIABLE}, else "
        f"PROJECT/{DEFAULT_ENVS}); delete it any time, it is rebuilt",
    )
    add(
        "--python",
        metavar="PYTHON",
        default=sys.executable,
        help="interpreter the environments are made from (default: this one)",
    )
    add("--installer", choices=("uv", "pip"), help="default: uv when installed, else pip")
    add("--rebuild", action="store_true", help="build every environment from scratch")
    add(
        "--list",
        action="store_true",
        help="say what would run (each mlx, its environment, whether it is built) and stop: nothing "
        "is built or run",
    )
    add("-x", "--exitfirst", action="store_true", help="stop at the first version that does not pass")
    add(
        "-j",
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="build N environments at a time before running (0: one per CPU core; default 1)",
    )
    add(
        "--no-activate",
        action="store_true",
        help="run COMMAND with mlx-portable switched off (MLX_PORTABLE=0), to see what fails without it",
    )
    add(
        "--json",
        action="store_true",
        help="print the results as JSON on stdout (COMMAND's output goes to stderr)",
    )
    add("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    add("argv", nargs=argparse.REMAINDER, metavar="COMMAND", help="the command to run, after --")


def _fail(message: str) -> int:
    sys.stderr.write(f"mlx-portable matrix: {message}\n")
    return EXIT_CANNOT_BUILD


def _python_version(python: str) -> str:
    import subprocess

    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    done = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise ValueError(f"--python {python}: cannot run it ({done.stderr.strip() or done.returncode})")
    return done.stdout.strip()


def execute(ns: argparse.Namespace) -> int:
    from ..matrix.build import EnvBuildError, find_installer
    from ..matrix.project import Project, ProjectError, command_runs_pytest
    from ..matrix.selection import MlxSelectionError, outside_supported, parse_mlx_specs
    from ..matrix.source import SourceError, given_source, running_source
    from ..matrix.spec import EnvSpec, UnbuildableError, default_backend
    from .render import Progress

    command = list(ns.argv)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        return _fail("no COMMAND given: e.g. mlx-portable matrix -- python -m pytest -q")
    try:
        versions = parse_mlx_specs(ns.mlx)
        project = Project(Path(ns.project))
        extras = project.default_extras() if ns.extras is None else [e for e in ns.extras.split(",") if e]
        project.check_extras(extras)
        installer = find_installer(ns.installer)
        python_version = _python_version(ns.python)
        source = None
        if not project.is_mlx_portable():
            source = running_source() if ns.mlx_portable is None else given_source(ns.mlx_portable)
    except (MlxSelectionError, ProjectError, EnvBuildError, SourceError, ValueError, OSError) as exc:
        return _fail(str(exc))
    editables, requirements = [project.editable(extras)], list(ns.requirements)
    if source is not None:
        if source.editable is not None:
            editables.append(source.editable)
        elif source.requirement is not None:
            requirements.append(source.requirement)
    if command_runs_pytest(command) and not any(r.lower().startswith("pytest") for r in requirements):
        requirements.append("pytest")
    backend = ns.backend or default_backend()
    try:
        specs = [
            EnvSpec(
                v,
                backend,
                ns.python,
                python_version,
                ns.with_mlx_lm,
                tuple(requirements),
                tuple(editables),
                fingerprint="" if source is None else source.fingerprint,
            )
            for v in versions
        ]
    except UnbuildableError as exc:
        return _fail(str(exc))
    envs = Path(ns.envs or os.environ.get(ENVS_VARIABLE) or project.folder / DEFAULT_ENVS).resolve()
    if ns.jobs < 0:
        return _fail(f"-j {ns.jobs}: give a number of environments to build at a time (0: one per core)")
    jobs = ns.jobs or os.cpu_count() or 1
    if ns.list:
        return _print_plan(
            specs, command, envs, installer.name, "the project itself" if source is None else source.shown
        )
    progress = Progress("mlx-portable matrix", quiet=ns.quiet)

    def note(text: str) -> None:
        if not ns.quiet:
            progress.done()
            sys.stderr.write(f"mlx-portable matrix: {text}\n")
            sys.stderr.flush()

    outside = [v for v in versions if outside_supported(v)]
    if outside:
        note(f"{', '.join(outside)} outside the supported range; results there may fail for that reason")
    note(f"mlx {', '.join(versions)} ({backend}), environments in {envs} ({installer.name})")
    installed = "the project itself" if source is None else source.shown
    note(f"mlx-portable in each environment: {installed}")
    from ..matrix.runner import run_matrix

    sys.stdout.flush()
    results, interrupted = run_matrix(
        specs,
        command,
        envs=envs,
        installer=installer,
        cwd=Path.cwd(),
        activate=not ns.no_activate,
        rebuild=ns.rebuild,
        stdout=sys.stderr if ns.json else None,
        progress=None if ns.quiet else progress,
        note=note,
        exit_first=ns.exitfirst,
        jobs=jobs,
    )
    status = _exit_status([r.status for r in results], interrupted)
    if ns.json:
        data = {
            "command": command,
            "backend": backend,
            "activated": not ns.no_activate,
            "installer": installer.name,
            "mlx_portable": {"kind": "project", "install": [], "shown": installed}
            if source is None
            else source.to_dict(),
            "envs": str(envs),
            "interrupted": interrupted,
            "exit_status": status,
            "results": [r.to_dict() for r in results],
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        _print_table(results, sys.stdout, activated=not ns.no_activate, mlx_portable=installed)
    if interrupted:
        sys.stderr.write("mlx-portable matrix: interrupted\n")
    return status


def _print_plan(specs: list[Any], command: list[str], envs: Path, installer: str, mlx_portable: str) -> int:
    """``--list``: each environment, what a run would do to it, and the command; nothing built."""
    import shlex

    from ..matrix.build import env_state
    from .render import format_table

    rows = [["mlx", "backend", "environment", "state"]]
    for spec in specs:
        rows.append([spec.mlx, spec.backend, spec.name, env_state(spec, envs)])
    out = sys.stdout
    out.write("\n".join(format_table(rows)) + "\n")
    out.write(f"environments in {envs} ({installer})\n")
    out.write(f"mlx-portable in each: {mlx_portable}\n")
    out.write(f"command in each: {shlex.join(command)}\n")
    return 0


def _exit_status(statuses: list[str], interrupted: bool) -> int:
    if interrupted:
        return EXIT_INTERRUPTED
    if any(s not in ("passed", "failed", "not run") for s in statuses):
        return EXIT_CANNOT_BUILD
    return EXIT_FAILED if "failed" in statuses else 0


def _print_table(results: list[Any], stream: TextIO, *, activated: bool, mlx_portable: str = "") -> None:
    from .render import Style, format_table

    style = Style.for_stream(stream)
    rows = [["mlx", "backend", "environment", "exit", "time", "result"]]
    for r in results:
        mlx = r.mlx_installed or r.spec.mlx
        env = (
            "-"
            if r.env is None
            else r.env.action + ("" if r.env.action == "reused" else f" {r.env.seconds:.0f} s")
        )
        colour = (
            "green"
            if r.status == "passed"
            else ("yellow" if r.status in ("not run", "interrupted") else "red")
        )
        rows.append(
            [
                mlx,
                r.spec.backend,
                env,
                "-" if r.exit is None else str(r.exit),
                "-" if r.seconds is None else f"{r.seconds:.1f} s",
                style(r.status, colour),
            ]
        )
    title = "mlx-portable matrix" + ("" if activated else " (mlx-portable off)")
    stream.write(f"\n{style(title, 'bold')}\n" + "\n".join(format_table(rows)) + "\n")
    if mlx_portable:
        stream.write(f"mlx-portable: {mlx_portable}\n")
    for r in results:
        if r.error:
            stream.write(f"  mlx {r.spec.mlx}: {r.error}\n")
    stream.flush()
