"""``mlx-portable run TARGET [ARGS...]``: activate, then run TARGET as Python would.

TARGET is run like ``python -m TARGET`` when it is a module name and like
``python TARGET`` when it is a path (it contains a path separator, ends in
``.py``/``.pyz``, or names an existing file).  ``sys.argv``, ``sys.path[0]``
and ``__main__`` are what the target would see under plain Python, and its
exit status comes back unchanged: ``sys.exit(n)`` gives ``n``, an uncaught
exception prints its traceback and gives 1, Ctrl-C gives 130.
"""

from __future__ import annotations

import importlib.util
import os
import runpy
import sys
from types import TracebackType

__all__ = ["EXIT_INTERRUPTED", "is_path_target", "run_target"]

#: What a shell reports for a process ended by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130


def is_path_target(target: str) -> bool:
    """Whether TARGET is a script path (else a module name)."""
    if os.sep in target or (os.altsep and os.altsep in target):
        return True
    if target.endswith((".py", ".pyz", ".pyw")) or target in (os.curdir, os.pardir):
        return True
    return os.path.isfile(target)


def _module_problem(name: str) -> str | None:
    """Why ``python -m name`` would not find it, or ``None``.

    A parent package that fails to import for another reason raises, as it
    would under ``python -m``.
    """
    hint = f" (to run a file, give its path, e.g. ./{name}.py)"
    if name.startswith(".") or not all(part.isidentifier() for part in name.split(".")):
        return f"{name!r} is not a module name" + hint
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            return f"No module named {missing!r}" + hint
        raise
    if spec is None:
        return f"No module named {name!r}" + hint
    return None


#: The range of a C ``long``: CPython exits with ``-1`` (status 255) for an int code outside it.
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter would exit with for ``exc``, printing a non-int code as it would.

    CPython (``_Py_HandleSystemExit``): ``None`` is 0; an int is converted
    to a C ``long`` -- one that does not fit gives -1, status 255
    (``sys.exit(2**100)`` fails, it does not succeed) -- and the low 8 bits
    of what fits are the status; anything else is written to stderr with
    ``str()`` and gives 1, and when ``str()`` itself raises, only the
    newline is written (the error is cleared) and the status is still 1.
    """
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        value = int.__int__(code)  # the value itself, not an overridden __int__
        return value & 0xFF if _LONG_MIN <= value <= _LONG_MAX else 255
    stream = sys.stderr
    if stream is not None:
        try:
            stream.write(str(code))
        except Exception:
            pass
        try:
            stream.write("\n")  # written even when str() failed, as python does
            stream.flush()
        except Exception:
            pass
    return 1


def _is_plumbing(filename: str) -> bool:
    """Frames of runpy, importlib and this command line (not the target's own)."""
    if filename.startswith(("<frozen runpy", "<frozen importlib")):
        return True
    path = os.path.abspath(filename)
    here = os.path.dirname(os.path.abspath(__file__))
    if os.path.dirname(path) == here or path == os.path.abspath(runpy.__file__ or ""):
        return True
    return os.path.dirname(path) == os.path.dirname(os.path.abspath(importlib.util.__file__ or ""))


def _print_target_traceback(exc: BaseException) -> None:
    """The uncaught exception as ``python`` would report it: through ``sys.excepthook``.

    The traceback starts at the target's own frames; none left (a
    ``SyntaxError`` in the script itself) means none shown, as ``python
    script.py`` shows only the offending line.  A hook the script installed
    is called; if it raises, both tracebacks are printed as CPython does
    (``Error in sys.excepthook:`` ... ``Original exception was:``).
    """
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and _is_plumbing(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    exc.__traceback__ = tb
    # sys.__excepthook__ is the interpreter's own printer (PyErr_Display): byte for byte
    # what python prints, down to the carets under a SyntaxError.
    hook = getattr(sys, "excepthook", None)
    if hook is None or hook is sys.__excepthook__:
        sys.__excepthook__(type(exc), exc, tb)
        return
    try:
        hook(type(exc), exc, tb)
    except BaseException as hook_error:
        hook_tb = hook_error.__traceback__
        hook_tb = hook_tb.tb_next if hook_tb is not None else None  # from the hook's own frame on
        hook_error.__traceback__ = hook_tb
        hook_error.__context__ = None  # not "during handling of the above exception"
        sys.stderr.write("Error in sys.excepthook:\n")
        sys.__excepthook__(type(hook_error), hook_error, hook_tb)
        sys.stderr.write("\nOriginal exception was:\n")
        sys.__excepthook__(type(exc), exc, tb)


def _target_problem(target: str) -> str | None:
    """Why TARGET cannot be run at all (a missing file, a folder without ``__main__.py``), or ``None``."""
    if not target.strip():
        return "no TARGET given: name a module (mlx_lm.generate) or a script path"
    if not is_path_target(target):
        return None
    shown = repr(os.path.abspath(target))
    if not os.path.exists(target):
        return f"can't open file {shown}: no such file"
    if os.path.isdir(target):
        if not os.path.isfile(os.path.join(target, "__main__.py")):
            return f"can't find '__main__' module in {shown} (a folder runs only with a __main__.py)"
        return None
    if not os.path.isfile(target):
        return f"can't run {shown}: not a regular file (a device, FIFO or socket)"
    if target.endswith((".pyz", ".zip")) or not target.endswith((".py", ".pyw")):
        import zipfile

        if zipfile.is_zipfile(target) and "__main__.py" not in zipfile.ZipFile(target).namelist():
            return f"can't find '__main__' module in {shown}"
    return None


def run_target(target: str, args: list[str], *, as_module: bool = False) -> int:
    """Run TARGET with ``sys.argv[1:] == args``; return its exit status.

    ``as_module`` (``run -m``) runs TARGET as a module whatever it looks
    like.  The caller has activated mlx-portable already.
    """
    saved_argv, saved_path0 = list(sys.argv), (sys.path[0] if sys.path else None)
    problem = _target_problem(target) if not as_module or not target.strip() else None
    if problem is not None:
        # What plain ``python`` says in one line, where runpy would print a traceback.
        sys.stderr.write(f"mlx-portable run: {problem}\n")
        return 2
    as_path = not as_module and is_path_target(target)
    if as_path:
        # ``python script.py`` puts the script's folder first on sys.path; a
        # folder or zip app is put there by runpy itself.
        first = os.path.dirname(os.path.abspath(target)) if os.path.isfile(target) else None
    else:
        # ``python -m`` puts the working directory first on sys.path.
        first = os.getcwd()
    if first is not None:
        if sys.path:
            sys.path[0] = first
        else:
            sys.path.insert(0, first)
    sys.argv = [target, *args]
    try:
        # Finding a module imports its parent packages, which may fail like
        # the target itself: the same traceback either way.
        problem = None if as_path else _module_problem(target)
        if problem is not None:
            sys.stderr.write(f"mlx-portable run: {problem}\n")
            return 1
        if as_path:
            runpy.run_path(target, run_name="__main__")
        else:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        return _exit_code(exc)
    except KeyboardInterrupt:
        sys.stderr.write("\nmlx-portable run: interrupted\n")
        return EXIT_INTERRUPTED
    except BaseException as exc:
        _print_target_traceback(exc)
        return 1
    finally:
        sys.argv = saved_argv
        if saved_path0 is not None and sys.path and first is not None:
            sys.path[0] = saved_path0
    return 0
