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
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

_DESCRIPTION = (
    "Run MLX code unchanged on Apple Metal, NVIDIA CUDA and the CPU. "
    "Start with 'mlx-portable doctor && mlx-portable check'."
)


def _version_text() -> str:
    from .. import __version__
    from ..versions import installed_version

    mlx = installed_version("mlx") or "not installed"
    return f"mlx-portable {__version__} (mlx {mlx}, Python {sys.version.split()[0]})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlx-portable", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=_version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    doctor = sub.add_parser(
        "doctor",
        help="show what is installed, chosen and patched, and what to do next",
        description="Show the platform, the mlx packages, every backend probe, the chosen backend and "
        "its device, the patch table, NVIDIA libraries (where CUDA applies), the MLX_* variables in "
        "effect and the recommended next steps. Exit status: 0 fine, 1 problems found, 2 mlx cannot "
        "be used.",
    )
    doctor.add_argument("--json", action="store_true", help="print the report as JSON (schema: docs/cli.md)")
    doctor.add_argument(
        "-v", "--verbose", action="store_true", help="also show the facts the patches attached (details)"
    )

    run = sub.add_parser(
        "run",
        help="activate mlx-portable, then run a module or script",
        description="Activate mlx-portable, then run TARGET like 'python -m TARGET' (a module name) or "
        "'python TARGET' (a path: it contains a '/', ends in .py, or is an existing file), with "
        "ARGS as its arguments. The exit status is the target's.",
        usage="mlx-portable run [-h] TARGET [ARGS ...]",
    )
    run.add_argument("target", metavar="TARGET", help="module name (mlx_lm.generate) or script path")
    run.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="arguments passed to TARGET")

    check = sub.add_parser(
        "check",
        help="self-test: run a tiny model on the backend and on the CPU, compare, measure",
        description="Build a tiny llama model in memory (nothing is downloaded), run it on the active "
        "backend and on the CPU, compare logits and greedy tokens, and measure prefill and decode "
        "tokens/s. Exit status: 0 they agree, 1 they disagree, 2 the check cannot run.",
    )
    check.add_argument("--json", action="store_true", help="print the result as JSON (schema: docs/cli.md)")
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

    from .matrix import add_parser as add_matrix

    add_matrix(sub)
    return parser


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


def _doctor(as_json: bool, verbose: bool) -> int:
    from . import doctor
    from .render import Style

    data = doctor.gather()
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        if data["mlx_error"] is not None:
            # Scripts read the JSON; whoever watches the job reads this.
            from .loading import print_mlx_problem

            print_mlx_problem(data["mlx_error"])
    else:
        sys.stdout.write(doctor.render_text(data, Style.for_stream(sys.stdout), verbose=verbose))
    return doctor.exit_status(data)


def _run(target: str, args: list[str]) -> int:
    from .loading import EXIT_CANNOT_RUN, mlx_load_problem, print_mlx_problem

    problem = mlx_load_problem()
    if problem is not None:
        print_mlx_problem(problem)
        return EXIT_CANNOT_RUN
    import mlx_portable

    from ..errors import MlxPortableError
    from .run import run_target

    try:
        mlx_portable.activate()
    except (MlxPortableError, ValueError) as exc:
        sys.stderr.write(f"mlx-portable run: {exc}\n")
        return EXIT_CANNOT_RUN
    return run_target(target, args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlx-portable`` console script; returns the exit status."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        if ns.command == "doctor":
            return _doctor(ns.json, ns.verbose)
        if ns.command == "run":
            args = list(ns.args)
            if args and args[0] == "--":
                args = args[1:]
            return _run(ns.target, args)
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
