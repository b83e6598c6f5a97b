"""The ``mlx-portable`` command line: ``doctor``, ``run``, ``check`` and ``matrix``.

Imported only by the console script and ``python -m mlx_portable``, never by
``import mlx_portable``.  Exit statuses: 0 fine; 1 problems found (doctor),
disagreement (check) or the target's own failure (run); 2 mlx (or something
a subcommand needs) cannot be used, with the command that fixes it; 120
standard output closed or unwritable; 130 interrupted.  ``run`` returns whatever its target exits with.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from collections.abc import Sequence

from .links import DOCS_URL, ISSUES_URL, NEW_ISSUE_URL
from .parsers import HelpFormatter, SubcommandParser, TopParser
from .run_options import RUN_USAGE, RunOptions, RunUsageError, parse_run_args

__all__ = ["build_parser", "main"]

_DESCRIPTION = (
    "Run MLX code unchanged on Apple Metal, NVIDIA CUDA and the CPU. "
    "Start with 'mlx-portable doctor && mlx-portable check'."
)
_EPILOG = f"Documentation: {DOCS_URL}\nIssues: {ISSUES_URL}"


def _version_text() -> str:
    from .. import __version__
    from ..distributions import version as installed_version

    mlx = installed_version("mlx") or "not installed"
    return f"mlx-portable {__version__} (mlx {mlx}, Python {sys.version.split()[0]})"


def build_parser() -> argparse.ArgumentParser:
    parser = TopParser(
        prog="mlx-portable", description=_DESCRIPTION, epilog=_EPILOG, formatter_class=HelpFormatter
    )
    parser.add_argument("-V", "--version", action="version", version=_version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=SubcommandParser)
    parser.subcommands = sub.choices

    doctor = sub.add_parser(
        "doctor",
        help="show what is installed, chosen and patched, and what to do next",
        description="Show the platform, the mlx packages, every backend probe, the chosen backend and "
        "its device, the patch table, NVIDIA libraries (where CUDA applies), the MLX_* variables in "
        "effect and the recommended next steps. Exit status: 0 fine, 1 problems found, 2 mlx cannot "
        "be used.",
    )
    output = doctor.add_mutually_exclusive_group()  # one format: --json with --markdown is refused
    output.add_argument(
        "--json", action="store_true", help=f"print the report as JSON (schema: {DOCS_URL}cli/)"
    )
    doctor.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="every patch with its reason, every probe's reason, and the facts the patches attached",
    )
    doctor.add_argument(
        "--imports",
        action="store_true",
        help="import the modules waiting patches wait for (mlx_lm.generate, ...) to show what each does "
        "there; slower",
    )
    output.add_argument(
        "--markdown",
        "--issue",
        dest="markdown",
        action="store_true",
        help=f"print the report as Markdown, to paste into a bug report at {NEW_ISSUE_URL}",
    )

    run = sub.add_parser(
        "run",
        help="activate mlx-portable, then run a module or script",
        description="Activate mlx-portable, then run TARGET as python would: 'python -m MODULE' with -m "
        "or a module name, 'python TARGET' for a path (it contains a '/', ends in .py, or is an existing "
        "file). Everything after TARGET is passed to it untouched, '--' included. The options set the "
        "MLX_PORTABLE_* variables, so child processes see them too. The exit status is the target's.",
        usage=RUN_USAGE,
        epilog="Example: mlx-portable run --report -m mlx_lm generate --model DIR --prompt hi. "
        f"Docs: {DOCS_URL}cli/",
    )
    run.add_argument(
        "--backend",
        metavar="B[,B]",
        help="backend or order to use: metal, cuda, cpu (sets MLX_PORTABLE_BACKEND)",
    )
    run.add_argument(
        "--disable",
        metavar="NAME[,NAME]",
        action="append",
        help="patches to leave alone; repeatable (adds to MLX_PORTABLE_DISABLE)",
    )
    run.add_argument("--strict", action="store_true", help="a failing patch stops the run (exit 2)")
    run.add_argument(
        "-v",
        "--report",
        action="store_true",
        help="print what was patched to stderr before the target starts",
    )
    run.add_argument("-m", metavar="MODULE", dest="module", help="run a module, as python -m")
    run.add_argument("target", metavar="TARGET", nargs="?", help="module name or script path")
    run.add_argument("args", nargs="*", metavar="ARGS", help="arguments passed to the target")

    check = sub.add_parser(
        "check",
        help="self-test: run a tiny model on the backend and on the CPU, compare, measure",
        description="Build a tiny llama model in memory (nothing is downloaded), run it on the active "
        "backend and on the CPU, compare logits and greedy tokens, and measure prefill and decode "
        "tokens/s. Needs mlx-lm (its model classes build the tiny model): pip install mlx-lm. "
        "Exit status: 0 they agree, 1 they disagree, 2 the check cannot run.",
    )
    check.add_argument(
        "--json",
        action="store_true",
        help=f"print the result as JSON, also when the check cannot run (schema: {DOCS_URL}cli/)",
    )
    check.add_argument(
        "--dtype",
        choices=("float32", "float16", "bfloat16"),
        default="float32",
        help="dtype of the model's weights (default float32)",
    )
    check.add_argument(
        "--tokens",
        type=_positive_int,
        default=32,
        metavar="N",
        help=f"greedy tokens to generate, 1 to {MAX_CHECK_TOKENS} (default 32)",
    )
    check.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    check.json_error = _check_usage_json

    from .matrix import add_parser as add_matrix

    add_matrix(sub)
    return parser


def _check_usage_json(message: str) -> str:
    """``check --json``'s document for a usage error: the shape of its "could not run" document."""
    from .check import CHECK_SCHEMA

    doc = {"schema": CHECK_SCHEMA, "ok": False, "summary": "the check could not run", "error": message}
    return json.dumps(doc, indent=2) + "\n"


#: Most greedy tokens ``check`` generates: the tiny model has 2048 positions.
MAX_CHECK_TOKENS = 1024


def _positive_int(text: str) -> int:
    from ..validation import shown

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a whole number") from None
    if not 1 <= value <= MAX_CHECK_TOKENS:
        raise argparse.ArgumentTypeError(f"{shown(text, 30)} is not between 1 and {MAX_CHECK_TOKENS}")
    return value


def _doctor(as_json: bool, verbose: bool, markdown: bool = False, imports: bool = False) -> int:
    from ..redaction import redact_data
    from . import doctor
    from .render import Style

    # Secrets by value too, wherever they appear (reasons, paths, warnings): see mlx_portable.redaction.
    data = redact_data(doctor.gather(imports=imports))
    assert isinstance(data, dict)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        if data["mlx_error"] is not None:
            # Scripts read the JSON; whoever watches the job reads this.
            from .loading import print_mlx_problem

            print_mlx_problem(data["mlx_error"])
    elif markdown:
        sys.stdout.write(doctor.render_markdown(data))
        sys.stderr.write(f"mlx-portable doctor: paste the text above into a new issue: {NEW_ISSUE_URL}\n")
    else:
        sys.stdout.write(doctor.render_text(data, Style.for_stream(sys.stdout), verbose=verbose))
    return doctor.exit_status(data)


def _apply_run_switches(opts: RunOptions) -> bool:
    """Set the ``MLX_PORTABLE_*`` variables ``run``'s switches stand for; whether any changed."""
    import os

    wanted: dict[str, str] = {}
    if opts.backend is not None:
        wanted["MLX_PORTABLE_BACKEND"] = opts.backend
    if opts.disable:
        present = [n.strip() for n in os.environ.get("MLX_PORTABLE_DISABLE", "").split(",") if n.strip()]
        wanted["MLX_PORTABLE_DISABLE"] = ",".join(dict.fromkeys([*present, *opts.disable]))
    if opts.strict:
        wanted["MLX_PORTABLE_STRICT"] = "1"
    changed = any(os.environ.get(k) != v for k, v in wanted.items())
    os.environ.update(wanted)
    return changed


def _run(opts: RunOptions) -> int:
    from .loading import EXIT_CANNOT_RUN, mlx_load_problem, print_mlx_problem

    problem = mlx_load_problem()
    if problem is not None:
        print_mlx_problem(problem)
        return EXIT_CANNOT_RUN
    import mlx_portable

    from ..errors import MlxPortableError
    from .run import run_target
    from .summary import run_report

    try:
        if _apply_run_switches(opts):
            # ``import mlx_portable`` applied the import-time shims under the old
            # settings (this command line is part of the package): start over.
            mlx_portable.deactivate()
        report = mlx_portable.activate(strict=True if opts.strict else None)
    except (MlxPortableError, ValueError) as exc:
        sys.stderr.write(f"mlx-portable run: {exc}\n")
        if opts.backend is not None or opts.disable:
            sys.stderr.write(
                "  (--backend and --disable set MLX_PORTABLE_BACKEND and MLX_PORTABLE_DISABLE)\n"
            )
        return EXIT_CANNOT_RUN
    if opts.report:
        sys.stderr.write(run_report(report.to_dict()))
        sys.stderr.flush()
    return run_target(opts.target, opts.args, as_module=opts.module)


def _run_command(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    try:
        opts = parse_run_args(argv)
    except RunUsageError as exc:
        sys.stderr.write(f"usage: {RUN_USAGE}\nmlx-portable run: error: {exc}\n")
        return 2
    if opts.help:
        parser.parse_args(["run", "--help"])  # prints run's help and exits 0
    return _run(opts)


#: Exit status when the output cannot be written (what Python itself exits with then).
EXIT_OUTPUT_FAILED = 120

#: errno values that mean "standard output cannot take this": a closed pipe, a full disk, a bad descriptor.
_OUTPUT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("EPIPE", "ENOSPC", "EBADF", "EIO", "EDQUOT", "EFBIG")
    if hasattr(errno, name)
)


def _output_failed(reason: str) -> int:
    """One line on stderr, the rest of the output dropped, :data:`EXIT_OUTPUT_FAILED`.

    Standard output is pointed at the null device, so that the
    interpreter's own flush at exit does not fail a second time with an
    ``Exception ignored`` traceback.
    """
    if sys.stdout is not None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            sys.stdout = None
    if sys.stderr is not None:
        try:
            sys.stderr.write(f"mlx-portable: {reason}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    return EXIT_OUTPUT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlx-portable`` console script; returns the exit status.

    ``run`` leaves standard output to the target, as ``python`` does.  The
    other commands need it: closed (``>&-``) or unwritable (``> /dev/full``,
    a closed pipe) gives one line on stderr and status 120, as Python's own
    failed flush at exit does, never a traceback.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # ``run`` reads its own arguments as python does (see run_options).
    if argv and argv[0] == "run":
        try:
            return _run_command(parser, argv[1:])
        except KeyboardInterrupt:
            sys.stderr.write("\nmlx-portable: interrupted\n")
            return 130
    if sys.stdout is None:
        return _output_failed("standard output is closed; nothing to write the report to")
    try:
        try:
            status = _command(parser, argv)
        except SystemExit:  # --help, --version, a usage error: argparse exits after writing
            sys.stdout.flush()
            raise
        sys.stdout.flush()
    except OSError as exc:
        if exc.errno not in _OUTPUT_ERRNOS:
            raise
        return _output_failed(f"cannot write to standard output: {exc.strerror or exc}")
    return status


def _command(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    try:
        ns = parser.parse_args(argv)
        if ns.command == "doctor":
            return _doctor(ns.json, ns.verbose, ns.markdown, ns.imports)
        if ns.command == "check":
            from . import check

            return check.execute(as_json=ns.json, dtype=ns.dtype, decode_tokens=ns.tokens, quiet=ns.quiet)
        if ns.command == "matrix":
            from . import matrix

            return matrix.execute(ns)
    except KeyboardInterrupt:
        sys.stderr.write("\nmlx-portable: interrupted\n")
        return 130
    parser.print_help(sys.stderr)
    return 2
