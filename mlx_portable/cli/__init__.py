"""The ``mlx-portable`` command line: ``doctor``, ``run``, ``check`` and ``matrix``.

Imported only by the console script and ``python -m mlx_portable``, never by
``import mlx_portable``.  Exit statuses: 0 fine; 1 problems found (doctor),
disagreement (check) or the target's own failure (run); 2 mlx (or something
a subcommand needs) cannot be used, with the command that fixes it; 130
interrupted.  ``run`` returns whatever its target exits with.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .links import DOCS_URL, ISSUES_URL, NEW_ISSUE_URL
from .run_options import RUN_USAGE, RunOptions, RunUsageError, parse_run_args

__all__ = ["build_parser", "main"]

_DESCRIPTION = (
    "Run MLX code unchanged on Apple Metal, NVIDIA CUDA and the CPU. "
    "Start with 'mlx-portable doctor && mlx-portable check'."
)
_EPILOG = f"Documentation: {DOCS_URL}\nIssues: {ISSUES_URL}"


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's layout, but a URL, path or command is never split (at a hyphen or anywhere).

    The stock formatter wraps with ``textwrap``'s defaults, which break
    ``https://mlx-portable.github.io/...`` after ``mlx-``: the link can no
    longer be copied.  Line breaks written into a description or epilog
    (``Documentation: ...`` / ``Issues: ...``) are kept.
    """

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        text = " ".join(text.split())
        return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False) or [""]

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        lines = []
        for paragraph in text.splitlines():
            lines += textwrap.wrap(
                " ".join(paragraph.split()),
                width,
                initial_indent=indent,
                subsequent_indent=indent,
                break_on_hyphens=False,
                break_long_words=False,
            ) or [""]
        return "\n".join(lines)


def _version_text() -> str:
    from .. import __version__
    from ..distributions import version as installed_version

    mlx = installed_version("mlx") or "not installed"
    return f"mlx-portable {__version__} (mlx {mlx}, Python {sys.version.split()[0]})"


class _SubcommandParser(argparse.ArgumentParser):
    """A subcommand's parser: with ``--json`` among its arguments, a usage error is JSON on stdout too.

    ``check --json`` promises one JSON object on stdout whatever happens; a
    script reading it must not get an empty stdout because ``--tokens 5000``
    was refused before the check started.
    """

    json_error: Callable[[str], str] | None = None  #: message -> the JSON document, if supported
    _json_requested = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._json_requested = args is not None and "--json" in list(args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        if self._json_requested and self.json_error is not None:
            sys.stdout.write(self.json_error(message))
            sys.stdout.flush()
        super().error(message)


class _TopParser(argparse.ArgumentParser):
    """The top parser: "unrecognized arguments" of a subcommand with ``--json`` is JSON there too."""

    _args: tuple[str, ...] = ()
    subcommands: dict[str, _SubcommandParser] | None = None  #: name -> parser

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._args = tuple(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        command = self._args[0] if self._args else ""
        sub = (self.subcommands or {}).get(command)
        if isinstance(sub, _SubcommandParser) and sub.json_error is not None and "--json" in self._args:
            sub._json_requested = True
            sub.error(message)  # the JSON document, then the subcommand's usage line
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _TopParser(
        prog="mlx-portable", description=_DESCRIPTION, epilog=_EPILOG, formatter_class=_HelpFormatter
    )
    parser.add_argument("-V", "--version", action="version", version=_version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_SubcommandParser)
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
    from . import doctor
    from .render import Style

    data = doctor.gather(imports=imports)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlx-portable`` console script; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        # ``run`` reads its own arguments as python does (see run_options).
        if argv and argv[0] == "run":
            return _run_command(parser, argv[1:])
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
