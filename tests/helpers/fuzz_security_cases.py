"""Security and robustness classes of the fuzz table (``tests/fuzz_cases.py``'s outcomes).

- ``special-file``: FIFOs, devices, sockets and folders where a reader expects
  a file (ELF libraries, a distribution's ``entry_points.txt`` and
  ``METADATA``, CUDA headers, hostfiles).  A hang is caught by an alarm and
  counted as ``traceback``.
- ``planted-path``: a planted ``nvidia/cu13/lib`` in every spelling of the
  working directory or the script's folder on ``sys.path``; ``clear`` when
  the search leaves it out, ``silent`` when it is searched.
- ``plugin-exit``: a patch raising ``SystemExit``, ``GeneratorExit`` or
  ``KeyboardInterrupt`` in check, apply, revert or a revert step; ``ok``
  when the registry's rules hold (see ``docs/writing-patches.md``) and
  nothing stays patched.
- ``secret-value``: a secret in a variable's value, by name or by form, in
  doctor's environment listing and in the errors that echo a value;
  ``clear`` when redacted, ``silent`` when it shows.
- ``run-exit`` (child processes): ``mlx-portable run`` against ``python``
  over a table of exit values; ``ok`` when status and stderr are the same.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from .fuzz_cases import CLEAR, OK, SILENT, TRACEBACK, Case, child_env, classify_exception

HANG_S = 5.0


class _Hang(Exception):
    pass


def _guarded(fn: Callable[[], tuple[str, str]]) -> tuple[str, str]:
    """``fn()`` under an alarm: a reader that blocks is reported as a hang, not waited for."""

    def ring(signum: int, frame: object) -> None:
        raise _Hang()

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, HANG_S)
    try:
        return fn()
    except _Hang:
        return TRACEBACK, f"hung for {HANG_S} s"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- special files --------------------------------------------------------------


def _make_special(kind: str, path: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        os.symlink("/dev/zero", path)
    elif kind == "dev-null":
        os.symlink("/dev/null", path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    elif kind == "dangling-link":
        os.symlink(str(path) + ".absent", path)


SPECIAL_KINDS = ("fifo", "dev-zero", "dev-null", "folder", "socket", "dangling-link")


def _reader_cases() -> dict[str, Callable[[Path], tuple[str, str]]]:
    """reader -> what it does with a special file at ``root/<its file>``."""

    def elf(root: Path) -> tuple[str, str]:
        from mlx_portable.cuda.elf import read_dynamic

        try:
            info = read_dynamic(str(root / "libx.so.1"))
        except Exception as exc:
            return classify_exception(exc)
        return SILENT, f"read as {info!r}"

    def entry_points(root: Path) -> tuple[str, str]:
        from mlx_portable import distributions

        found = distributions._scan([("x", str(root))], "mlx_portable.patches")
        return (OK, "no entry points") if found == [] else (SILENT, repr(found))

    def metadata(root: Path) -> tuple[str, str]:
        from mlx_portable.cuda.layout import BackendPackage

        requires = BackendPackage("mlx-cuda-13", "0.32.4", 13, str(root), str(root)).requires()
        return (OK, "no requirements") if requires == [] else (SILENT, repr(requires))

    def header(root: Path) -> tuple[str, str]:
        from mlx_portable.cuda.headers import _cuda_major_of_include

        major = _cuda_major_of_include(str(root))
        return (OK, "no version") if major is None else (SILENT, repr(major))

    def hostfile(root: Path) -> tuple[str, str]:
        from mlx_portable.distributed.hostfile import read_hostfile

        try:
            hosts = read_hostfile(str(root / "hosts.json"))
        except Exception as exc:
            return classify_exception(exc)
        return SILENT, f"read {hosts!r}"

    def ring_size(root: Path) -> tuple[str, str]:
        from mlx_portable.distributed.launch_env import rank_and_size

        found = rank_and_size({"MLX_HOSTFILE": str(root / "hosts.json")})
        return (OK, "size unknown") if found == (None, None) else (SILENT, repr(found))

    return {
        "MLX_HOSTFILE (rank_and_size)": ring_size,
        "read_dynamic": elf,
        "entry_points.txt": entry_points,
        "METADATA": metadata,
        "cuda_runtime_api.h": header,
        "hostfile": hostfile,
    }


_FILE_OF = {
    "MLX_HOSTFILE (rank_and_size)": "hosts.json",
    "read_dynamic": "libx.so.1",
    "entry_points.txt": "entry_points.txt",
    "METADATA": "METADATA",
    "cuda_runtime_api.h": "cuda_runtime_api.h",
    "hostfile": "hosts.json",
}


def special_file_cases() -> Iterator[Case]:
    for reader, check in _reader_cases().items():
        for kind in SPECIAL_KINDS:

            def run(reader: str = reader, check: Callable[[Path], tuple[str, str]] = check, kind: str = kind):  # type: ignore[no-untyped-def]
                root = Path(tempfile.mkdtemp(prefix="mp-special-"))
                try:
                    _make_special(kind, root / _FILE_OF[reader])
                    return _guarded(lambda: check(root))
                finally:
                    shutil.rmtree(root, ignore_errors=True)

            yield Case("special-file", f"{reader} on a {kind}", run)


# -- planted files in every sys.path spelling -----------------------------------

SPELLINGS: dict[str, Callable[[Path, Path], str]] = {
    "''": lambda work, link: "",
    "'.'": lambda work, link: ".",
    "'./'": lambda work, link: "./",
    "absolute (python -m)": lambda work, link: str(work),
    "trailing slash": lambda work, link: f"{work}/",
    "/./ inside": lambda work, link: f"{work}/./",
    "../name": lambda work, link: f"{work}/../{work.name}",
    "symlink to it": lambda work, link: str(link),
    "script folder": lambda work, link: "SCRIPT",
}


def planted_path_cases() -> Iterator[Case]:
    for label, spell in SPELLINGS.items():

        def run(spell: Callable[[Path, Path], str] = spell) -> tuple[str, str]:
            from mlx_portable.cuda import layout

            root = Path(tempfile.mkdtemp(prefix="mp-planted-"))
            work, elsewhere = root / "work", root / "elsewhere"
            (work / "nvidia" / "cu13" / "lib").mkdir(parents=True)
            (work / "nvidia" / "cu13" / "lib" / "libcublasLt.so.13").write_bytes(b"\x7fELF planted")
            (work / "nvidia_cublas-13.1.0.3.dist-info").mkdir()
            elsewhere.mkdir()
            (root / "link").symlink_to(work, target_is_directory=True)
            entry = spell(work, root / "link")
            saved_cwd, saved_argv0 = os.getcwd(), sys.argv[0]
            try:
                if entry == "SCRIPT":  # python work/script.py, run from elsewhere
                    (work / "script.py").write_text("")
                    os.chdir(elsewhere)
                    sys.argv[0] = str(work / "script.py")
                    entry = str(work)
                else:
                    os.chdir(work)
                found = [f.path for f in layout.nvidia_library_folders(path=[entry])]
            finally:
                os.chdir(saved_cwd)
                sys.argv[0] = saved_argv0
                shutil.rmtree(root, ignore_errors=True)
            if found:
                return SILENT, f"searched {found}"
            return CLEAR, "left out"

        yield Case("planted-path", f"planted library, sys.path entry {label}", run)


# -- plugin BaseExceptions ------------------------------------------------------

EXITS = (SystemExit, GeneratorExit, KeyboardInterrupt)


def plugin_exit_cases() -> Iterator[Case]:
    for where in ("check", "apply", "on_revert"):
        for kind in EXITS:

            def run(where: str = where, kind: type[BaseException] = kind) -> tuple[str, str]:
                import mlx_portable
                from mlx_portable import Patch, PatchContext
                from mlx_portable.registry.registry import registry

                target = types.SimpleNamespace()

                def raiser(ctx: PatchContext) -> None:
                    raise kind("from a plugin")

                def apply(ctx: PatchContext) -> None:
                    ctx.set_attr(target, "bad", 1)
                    if where == "apply":
                        raise kind("from a plugin")
                    if where == "on_revert":
                        ctx.on_revert(raiser)

                def good(ctx: PatchContext) -> None:
                    ctx.set_attr(target, "good", 1)

                names = ["fuzz_exit_good", "fuzz_exit_bad"]
                mlx_portable.deactivate()
                mlx_portable.register(Patch(names[0], "s", "w", good))
                mlx_portable.register(
                    Patch(
                        names[1],
                        "s",
                        "w",
                        apply,
                        check=raiser if where == "check" else None,
                    )
                )
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        try:
                            mlx_portable.activate()
                        except BaseException as exc:
                            if where in ("check", "apply") and isinstance(exc, KeyboardInterrupt):
                                left = sorted(vars(target))
                                return (
                                    (OK, "Ctrl-C propagated, rolled back")
                                    if not left
                                    else (SILENT, f"left {left}")
                                )
                            return TRACEBACK, f"{type(exc).__name__} escaped activate()"
                        if where in ("check", "apply"):
                            status = registry.record(names[1]).status
                            return (
                                (OK, f"contained: {status}")
                                if status == "failed" and "bad" not in vars(target)
                                else (SILENT, status)
                            )
                        try:
                            mlx_portable.deactivate()
                        except kind:
                            left = sorted(vars(target))
                            return (
                                (OK, "every revert ran, then re-raised")
                                if not left
                                else (SILENT, f"left {left}")
                            )
                        except BaseException as exc:
                            return TRACEBACK, f"{type(exc).__name__} instead of {kind.__name__}"
                        return SILENT, f"deactivate() swallowed {kind.__name__}"
                finally:
                    for _ in range(3):
                        try:
                            mlx_portable.deactivate()
                            break
                        except BaseException:
                            continue
                    for name in names:
                        registry.unregister(name)

            yield Case("plugin-exit", f"{kind.__name__} in {where}", run)


# -- secrets by value -----------------------------------------------------------

SECRET_VALUES: tuple[tuple[str, str, str], ...] = (
    ("MLX_PORTABLE_PASS", "Pa55wordOne", "Pa55wordOne"),
    ("MLX_PORTABLE_CREDS", "credsTwo22", "credsTwo22"),
    ("MLX_PORTABLE_PAT", "patThree33", "patThree33"),
    ("MLX_PORTABLE_DSN", "postgres://u:dbPw0rd4@h/db", "dbPw0rd4"),
    ("MLX_PORTABLE_PRIVATE", "privFive55", "privFive55"),
    ("MLX_PORTABLE_SESSION", "sessSix66", "sessSix66"),
    ("MLX_PORTABLE_COOKIE", "cookie77", "cookie77"),
    ("MLX_API_PWD", "pwdEight88", "pwdEight88"),
    ("MLX_HOSTFILE", "https://alice:hostPw99@hosts.example/h.json", "hostPw99"),
    ("MLX_JACCL_COORDINATOR", "bob:coordPw10@10.0.0.1:5000", "coordPw10"),
    ("CUDA_HOME", "/opt/cuda?token=cudaTok11", "cudaTok11"),
    ("MLX_SOMETHING", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz123456", "AbCdEfGhIjKlMnOpQrStUvWxYz"),
    ("MLX_SOMETHING", "ghp_1234567890abcdefABCDEF1234567890abcd", "1234567890abcdefABCDEF"),
    ("MLX_SOMETHING", "xoxb-1234-5678-abcdefghij", "abcdefghij"),
    ("MLX_SOMETHING", "sk-proj-abcdefgh12345678", "abcdefgh12345678"),
    ("MLX_SOMETHING", "AbCdEfGh1234IjKlMnOp5678QrStUv", "AbCdEfGh1234IjKlMnOp5678QrStUv"),
)

# variable read by mlx-portable -> how its error is produced
_ECHOING: dict[str, Callable[[dict[str, str]], object]] = {}


def _echoing() -> dict[str, Callable[[dict[str, str]], object]]:
    from mlx_portable import settings
    from mlx_portable.distributed import launch_env

    return {
        "MLX_PORTABLE_BACKEND": lambda env: settings.read_settings(env),
        "MLX_PORTABLE_STRICT": lambda env: settings.read_settings(env),
        "MLX_PORTABLE": lambda env: settings.read_settings(env),
        "MLX_PORTABLE_DISTRIBUTED_TIMEOUT": lambda env: launch_env.timeout_seconds(env),
        "MLX_PORTABLE_HOSTFILE": lambda env: launch_env.cluster_backends(env),
    }


def secret_value_cases() -> Iterator[Case]:
    for name, value, secret in SECRET_VALUES:

        def listing(name: str = name, value: str = value, secret: str = secret) -> tuple[str, str]:
            from mlx_portable.cli.environment import variables_in_effect
            from mlx_portable.redaction import redact_data

            entries = [e.to_dict() for e in variables_in_effect(None, env={name: value})]
            shown = repr(redact_data(entries))
            return (SILENT, f"shown: {shown[:200]}") if secret in shown else (CLEAR, "redacted")

        yield Case("secret-value", f"doctor lists {name}={value[:12]}...", listing)
    by_form = [
        (value, secret) for name, value, secret in SECRET_VALUES if secret != value or "_SOMETHING" in name
    ]
    for variable, produce in _echoing().items():
        for value, secret in by_form:

            def echoed(
                variable: str = variable,
                produce: Callable[[dict[str, str]], object] = produce,
                value: str = value,
                secret: str = secret,
            ) -> tuple[str, str]:
                try:
                    produce({variable: value})
                except (ValueError, TypeError) as exc:
                    return (SILENT, f"echoed: {exc}"[:200]) if secret in str(exc) else (CLEAR, "redacted")
                return OK, "accepted (a valid value)"

            yield Case("secret-value", f"error for {variable}={value[:12]}...", echoed)


# -- run vs python exit parity --------------------------------------------------

EXIT_VALUES = (
    "None", "0", "1", "255", "256", "-1", "2**31", "2**63", "2**100", "-2**100", "True",
    "'text'", "1.5", "BadStr()", "IntSub(7)",
)  # fmt: skip

_PRELUDE = (
    "import sys\n"
    "class BadStr:\n    def __str__(self):\n        raise RuntimeError('str fails')\n"
    "class IntSub(int):\n    def __int__(self):\n        raise RuntimeError('not called')\n"
)


def run_exit_cases() -> Iterator[Case]:
    for value in EXIT_VALUES:

        def run(value: str = value) -> tuple[str, str]:
            root = Path(tempfile.mkdtemp(prefix="mp-exit-"))
            try:
                (root / "s.py").write_text(_PRELUDE + f"sys.exit({value})\n")
                env = child_env()
                kw = {"cwd": root, "env": env, "capture_output": True, "text": True, "timeout": 120}
                plain = subprocess.run([sys.executable, "s.py"], check=False, **kw)  # type: ignore[call-overload]
                ours = subprocess.run(  # type: ignore[call-overload]
                    [sys.executable, "-m", "mlx_portable", "run", "s.py"], check=False, **kw
                )
            finally:
                shutil.rmtree(root, ignore_errors=True)
            if "Traceback" in ours.stderr and "Traceback" not in plain.stderr:
                return TRACEBACK, ours.stderr[-200:]
            if (ours.returncode, ours.stderr) != (plain.returncode, plain.stderr):
                return (
                    SILENT,
                    f"python {plain.returncode} {plain.stderr!r}, run {ours.returncode} {ours.stderr!r}",
                )
            return OK, f"both exit {plain.returncode}"

        yield Case("run-exit", f"sys.exit({value})", run)


FAST_AREAS = (special_file_cases, planted_path_cases, plugin_exit_cases, secret_value_cases)
SLOW_AREAS = (run_exit_cases,)


def all_security_cases(include_slow: bool = True) -> Iterator[Case]:
    for area in FAST_AREAS:
        yield from area()
    if include_slow:
        for area in SLOW_AREAS:
            yield from area()
