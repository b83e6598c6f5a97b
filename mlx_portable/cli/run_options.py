"""The arguments of ``mlx-portable run``, read as ``python`` reads its own.

``run``'s switches come before the target; the first argument that is not
one of them is the target, and everything after it goes to the target
untouched (a ``--`` or ``--help`` there included), as with ``python script.py
ARGS`` and ``python -m module ARGS``.  ``-m MODULE`` names a module outright;
a ``--`` before the target ends the switches (``run -- -odd-name.py``).

Read by hand rather than by argparse: ``argparse.REMAINDER`` drops or keeps
a ``--`` depending on where it stands and on the Python version (3.12 and
3.13 changed it), and that is exactly what must behave as in ``python``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RUN_USAGE", "RunOptions", "RunUsageError", "parse_run_args"]

RUN_USAGE = (
    "mlx-portable run [-h] [--backend B[,B]] [--disable NAME[,NAME]]\n"
    "                        [--strict] [-v] (-m MODULE | TARGET) [ARGS ...]"
)


class RunUsageError(ValueError):
    """A bad ``run`` command line; the message says what to write instead."""


@dataclass
class RunOptions:
    target: str = ""
    args: list[str] = field(default_factory=list)
    module: bool = False  # -m: TARGET is a module name, whatever it looks like
    backend: str | None = None
    disable: list[str] = field(default_factory=list)
    strict: bool = False
    report: bool = False
    help: bool = False


_WITH_VALUE = ("--backend", "--disable")


def _value(argv: list[str], i: int, name: str) -> tuple[str, int]:
    """The value of option ``argv[i]`` (``--name=V`` or ``--name V``) and the next index."""
    arg = argv[i]
    if arg.startswith(name + "="):
        value = arg[len(name) + 1 :]
        nxt = i + 1
    elif i + 1 < len(argv):
        value, nxt = argv[i + 1], i + 2
    else:
        raise RunUsageError(f"{name} needs a value, e.g. {name} {'cpu' if name == '--backend' else 'NAME'}")
    if not value.strip():
        raise RunUsageError(f"{name} needs a value, e.g. {name} {'cpu' if name == '--backend' else 'NAME'}")
    return value, nxt


def parse_run_args(argv: list[str]) -> RunOptions:
    """``run``'s arguments (those after the word ``run``)."""
    opts = RunOptions()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            opts.help = True
            return opts
        if arg == "--":
            if i + 1 >= len(argv):
                break
            opts.target, opts.args = argv[i + 1], argv[i + 2 :]
            return opts
        if arg == "-m" or (arg.startswith("-m") and not arg.startswith("--")):
            module = arg[2:] if arg != "-m" else (argv[i + 1] if i + 1 < len(argv) else "")
            if not module:
                raise RunUsageError("-m needs a module name, e.g. mlx-portable run -m mlx_lm generate --help")
            rest = i + 1 if arg != "-m" else i + 2
            opts.target, opts.args, opts.module = module, argv[rest:], True
            return opts
        name = next((n for n in _WITH_VALUE if arg == n or arg.startswith(n + "=")), None)
        if name == "--backend":
            opts.backend, i = _value(argv, i, name)
            continue
        if name == "--disable":
            value, i = _value(argv, i, name)
            opts.disable += [n.strip() for n in value.split(",") if n.strip()]
            continue
        if arg == "--strict":
            opts.strict = True
        elif arg in ("-v", "--report"):
            opts.report = True
        elif arg.startswith("-") and arg != "-":
            raise RunUsageError(
                f"unknown option {arg!r} before the target; run's own options are --backend, --disable, "
                "--strict, -v/--report and -m (to pass an option to the target, put it after the target)"
            )
        else:
            opts.target, opts.args = arg, argv[i + 1 :]
            return opts
        i += 1
    raise RunUsageError(
        "nothing to run: give a module (mlx-portable run -m mlx_lm generate ...) or a script path "
        "(mlx-portable run train.py ...)"
    )
