"""Bad inputs, as a careless user or an attacker gives them, and what each one gets.

Every case feeds one bad input to a public entry point (a function, an
``MLX_PORTABLE_*`` variable, the command line, a hostfile, the ELF reader)
and classifies the outcome:

- ``clear``: an error that mlx-portable raised on purpose (``ValueError``,
  ``TypeError``, ``OSError`` naming the file, or an ``MlxPortableError``,
  raised from mlx-portable's own code), at most 1000 characters long; for an
  environment variable, a warning naming it while the defaults still apply;
  for the command line, exit status 2 with a one-line-ish message;
- ``ok``: the input was valid after all and was accepted (mutated ELF files
  that still parse);
- ``silent``: accepted although it is wrong;
- ``traceback``: an exception from deep inside (``AttributeError``,
  ``OverflowError``, ``struct.error``, a JSON error...), a hang, or a message
  so long it buries the point.

``python -m tests.helpers.fuzz_cases`` prints the table (tried / clear / ok / silent /
traceback per area) and, with ``-v``, every case that is not clear.
``tests/test_bad_inputs_classified.py`` asserts that every case is clear or ok.
"""

from __future__ import annotations

import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .subproc import child_env

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = str(ROOT / "mlx_portable")
MAX_MESSAGE = 1000

CLEAR, OK, SILENT, TRACEBACK = "clear", "ok", "silent", "traceback"


class Case:
    __slots__ = ("area", "label", "run")

    def __init__(self, area: str, label: str, run: Callable[[], tuple[str, str]]) -> None:
        self.area = area
        self.label = label
        self.run = run


def _own_frame(exc: BaseException) -> bool:
    """Whether the innermost Python frame of ``exc`` is mlx-portable's own code."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(PACKAGE)


def classify_exception(exc: BaseException) -> tuple[str, str]:
    from mlx_portable.errors import MlxPortableError

    text = f"{type(exc).__name__}: {exc}"
    if len(str(exc)) > MAX_MESSAGE:
        return TRACEBACK, f"message of {len(str(exc))} characters: {text[:120]}..."
    if isinstance(exc, MlxPortableError):
        return CLEAR, text
    if isinstance(exc, OSError) and exc.filename is not None and _own_frame(exc):
        return CLEAR, text
    ours = type(exc) in (ValueError, TypeError) or (
        isinstance(exc, (ValueError, TypeError)) and type(exc).__module__.startswith("mlx_portable")
    )
    if ours and _own_frame(exc) and str(exc):
        return CLEAR, text
    return TRACEBACK, text + " @ " + "".join(traceback.format_tb(exc.__traceback__)[-1:]).strip()[:200]


def call(
    area: str, label: str, fn: Callable[[], object], cleanup: Callable[[], object] | None = None
) -> Case:
    """A bad call: it must raise a clear error."""

    def run() -> tuple[str, str]:
        try:
            result = fn()
        except Exception as exc:
            return classify_exception(exc)
        finally:
            if cleanup is not None:
                try:
                    cleanup()
                except Exception:
                    pass
        return SILENT, f"accepted, returned {result!r}"[:200]

    return Case(area, label, run)


# -- child processes ----------------------------------------------------------


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def run_limited(
    argv: list[str], env: dict[str, str], timeout: float = 60, cwd: str | None = None
) -> subprocess.CompletedProcess[str] | None:
    """Run ``argv`` with 4 GiB of address space and no stdin; None when it outlives ``timeout``."""
    try:
        return subprocess.run(
            argv,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_limit_memory,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired:
        return None


_IMPORT_PROBE = r"""
import json, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import mlx_portable
    import mlx.core
    from mlx_portable.registry.registry import registry
    applied = sorted(r.patch.name for r in registry.records() if r.status == "applied")
out = {"warnings": [str(w.message) for w in caught], "applied": applied}
try:
    mlx_portable.activate()
    out["activate"] = None
except Exception as exc:
    out["activate"] = f"{type(exc).__name__}: {exc}"
print("RESULT" + json.dumps(out))
"""

_baseline: dict[str, Any] = {}


def _import_probe(env: dict[str, str]) -> dict[str, Any] | str:
    done = run_limited([sys.executable, "-c", _IMPORT_PROBE], env)
    if done is None:
        return "hang"
    for line in done.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[6:])  # type: ignore[no-any-return]
    return done.stderr[-300:]


def env_value(
    variable: str, value: str, *, activate_raises: bool = True, valid: bool = False, import_warns: bool = True
) -> Case:
    """A bad ``MLX_PORTABLE_*`` value: import warns once, naming it, with the defaults; activate() raises."""

    def run() -> tuple[str, str]:
        if "applied" not in _baseline:
            base = _import_probe(child_env())
            assert isinstance(base, dict), base
            _baseline.update(base)
        got = _import_probe(child_env(**{variable: value}))
        if isinstance(got, str):
            return TRACEBACK, got
        named = [w for w in got["warnings"] if variable in w]
        if got["applied"] != _baseline["applied"]:
            return SILENT, f"import applied {got['applied']} instead of {_baseline['applied']}"
        if valid:  # documented: treated as unset
            if named or got["activate"] is not None:
                return TRACEBACK, f"warned or raised for a valid value: {named or got['activate']}"
            return OK, "the defaults, as documented (empty means unset)"
        if not import_warns and not named and got["activate"] and variable in got["activate"]:
            return CLEAR, "activate() raises: " + got["activate"][:160]
        if not named:
            return SILENT, "no warning names the variable"
        if len(named) > 1:
            return TRACEBACK, f"{len(named)} warnings"
        if any(len(w) > MAX_MESSAGE for w in named):
            return TRACEBACK, f"warning of {max(map(len, named))} characters"
        if activate_raises and got["activate"] is None:
            return SILENT, "activate() accepted it"
        return CLEAR, named[0][:200]

    return Case("environment", f"{variable}={value[:30]!r}", run)


def cli(
    label: str,
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    code: str | None = None,
    timeout: float = 60,
    cwd: str | None = None,
    expect: int = 2,
) -> Case:
    """A bad command line: exit status ``expect``, a short message, no traceback, no hang."""

    def run() -> tuple[str, str]:
        full = [sys.executable, "-c", code, *argv] if code else [sys.executable, "-m", "mlx_portable", *argv]
        done = run_limited(full, env or child_env(), timeout=timeout, cwd=cwd)
        if done is None:
            return TRACEBACK, f"still running after {timeout:.0f} s"
        out = done.stdout + done.stderr
        if "Traceback" in out:
            return TRACEBACK, f"exit {done.returncode}: " + out.strip().splitlines()[-1][:200]
        if done.returncode == 0 and not done.stderr.strip():
            return SILENT, "exit 0"
        if done.returncode != expect:
            return TRACEBACK, f"exit {done.returncode} (expected {expect}): {done.stderr.strip()[:200]}"
        if len(done.stderr) > 4 * MAX_MESSAGE:
            return TRACEBACK, f"{len(done.stderr)} characters on stderr"
        return CLEAR, done.stderr.strip()[:200]

    return Case("cli", label, run)


def child_check(
    area: str, label: str, code: str, *, env: dict[str, str] | None = None, timeout: float = 30
) -> Case:
    """Run ``code`` in a child; it prints ``RESULT <outcome> <detail>`` (a hang or crash is a traceback)."""

    def run() -> tuple[str, str]:
        done = run_limited([sys.executable, "-c", code], env or child_env(), timeout=timeout)
        if done is None:
            return TRACEBACK, f"hangs (still running after {timeout:.0f} s)"
        for line in done.stdout.splitlines():
            if line.startswith("RESULT "):
                outcome, _, detail = line[7:].partition(" ")
                return outcome, detail
        return TRACEBACK, f"exit {done.returncode}: {done.stderr.strip()[-300:]}"

    return Case(area, label, run)


# -- the cases ----------------------------------------------------------------

_tmp_folder: list[Path] = []


def tmp() -> Path:
    """A scratch folder for this run (made on first use, so children importing this module make none)."""
    if not _tmp_folder:
        _tmp_folder.append(Path(tempfile.mkdtemp(prefix="mlx-portable-fuzz-")))
    return _tmp_folder[0]


def _noop(ctx: object) -> None:
    return None


def environment_cases() -> Iterator[Case]:
    for variable in ("MLX_PORTABLE", "MLX_PORTABLE_STRICT"):
        for value in ("banana", "2", "y", "tru"):
            yield env_value(variable, value)
    yield env_value("MLX_PORTABLE", "", valid=True)
    yield env_value("MLX_PORTABLE_STRICT", "", valid=True)
    for value in ("gpu", "cuda;cpu", " , ", "x" * 100_000):
        yield env_value("MLX_PORTABLE_BACKEND", value)
    # Plugins' patch names are known only once activate() loads them: it raises.
    yield env_value("MLX_PORTABLE_DISABLE", "no_such_patch", import_warns=False)
    for name in ("MLX_PORTABLE_BAKEND", "MLX_PORTABLE_STIRCT", "MLX_PORTABLE_DISABEL"):
        yield env_value(name, "1", activate_raises=False)
    for value in ("banana", "2", "y"):
        yield autoactivate_case(value)


def autoactivate_case(value: str) -> Case:
    code = "print('started')"

    def run() -> tuple[str, str]:
        done = run_limited([sys.executable, "-c", code], child_env(MLX_PORTABLE_AUTOACTIVATE=value))
        if done is None:
            return TRACEBACK, "hangs"
        if "Traceback" in done.stderr or "started" not in done.stdout:
            return TRACEBACK, done.stderr.strip()[-200:]
        if "MLX_PORTABLE_AUTOACTIVATE" not in done.stderr:
            return SILENT, "started without a word"
        return CLEAR, done.stderr.strip()[:200]

    return Case("environment", f"MLX_PORTABLE_AUTOACTIVATE={value!r}", run)


def distributed_env_cases() -> Iterator[Case]:
    from mlx_portable.distributed import launch_env
    from mlx_portable.distributed.choice import validate_request

    for value in ("inf", "1e10", "nan", "-1", "abc", "1" * 5000):
        yield call(
            "environment",
            f"MLX_PORTABLE_DISTRIBUTED_TIMEOUT={value[:20]!r}",
            lambda v=value: launch_env.timeout_seconds({"MLX_PORTABLE_DISTRIBUTED_TIMEOUT": v}),
        )
    for value in ("bogus", "ring;rm -rf /", "x" * 100_000):
        yield call(
            "environment",
            f"MLX_PORTABLE_DISTRIBUTED_BACKEND={value[:20]!r}",
            lambda v=value: validate_request(v, source="MLX_PORTABLE_DISTRIBUTED_BACKEND"),
        )
    for value in ("gpu,cpu", ",", "metal," * 20_000):
        yield call(
            "environment",
            f"MLX_PORTABLE_CLUSTER_BACKENDS={value[:20]!r}",
            lambda v=value: launch_env.cluster_backends({"MLX_PORTABLE_CLUSTER_BACKENDS": v}),
        )
    fifo = tmp() / "fifo.json"
    if not fifo.exists():
        os.mkfifo(fifo)
    for label, path in (("/dev/zero", "/dev/zero"), ("a FIFO", str(fifo)), ("/dev/urandom", "/dev/urandom")):
        code = (
            f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from tests.helpers.fuzz_cases import classify_exception\n"
            "from mlx_portable.distributed import launch_env\n"
            "try:\n"
            f"    r = launch_env.cluster_backends({{'MLX_PORTABLE_HOSTFILE': {path!r}}})\n"
            "    print('RESULT silent', r)\n"
            "except BaseException as e:\n"
            "    print('RESULT', *classify_exception(e))\n"
        )
        yield child_check("environment", f"MLX_PORTABLE_HOSTFILE={label}", code, timeout=20)
    for name, content in _bad_hostfiles().items():
        target = tmp() / f"hosts-{name}.json"
        target.write_bytes(content)
        yield call(
            "hostfile",
            f"read_hostfile({name})",
            lambda t=target: __import__("mlx_portable.distributed.hostfile", fromlist=["x"]).read_hostfile(t),
        )
    yield call("hostfile", "read_hostfile(a folder)", lambda: _hostfile().read_hostfile(tmp()))


def _hostfile() -> Any:
    from mlx_portable.distributed import hostfile

    return hostfile


BAD_HOSTNAMES = (
    "-oProxyCommand=touch /tmp/pwned",
    "-p2222",
    "host;reboot",
    "$(id)",
    "`id`",
    "a b",
    "host|cat",
    "host\nother",
    "host&",
    "-",
    "a" * 64 + ".example",
    "ex_ample..com",
    "x" * 100_000,
)


def _bad_hostfiles() -> dict[str, bytes]:
    def js(value: object) -> bytes:
        return json.dumps(value).encode()

    return {
        "proxycommand": js([{"ssh": "-oProxyCommand=touch /tmp/pwned", "ips": ["10.0.0.1"]}]),
        "metachar": js([{"ssh": "h;reboot", "ips": []}]),
        "bad-ip": js([{"ssh": "h", "ips": ["10.0.0.1; id"]}]),
        "ips-number": js([{"ssh": "h", "ips": [1]}]),
        "not-json": b"{hosts: nope",
        "numbers": js([1, 2]),
        "hosts-5": js({"hosts": 5}),
        "ssh-number": js([{"ssh": 5}]),
        "ssh-list": js([{"ssh": ["a"]}]),
        "latin1": '[{"ssh": "h\u00e9"}]'.encode("latin-1"),
        "nul": b"\x00" * 64,
        "deep": b"[" * 100_000 + b"]" * 100_000,
        "backend-gpu": js([{"ssh": "h", "backend": "gpu"}]),
    }


def hostfile_cases() -> Iterator[Case]:
    hf = _hostfile()
    for name in BAD_HOSTNAMES:
        yield call("hostfile", f"Host({name[:24]!r})", lambda n=name: hf.Host(n))
        yield call(
            "hostfile",
            f"write_hostfile(ssh={name[:24]!r})",
            lambda n=name: hf.write_hostfile(tmp() / "w.json", [{"ssh": n, "ips": []}]),
        )
    yield call("hostfile", "Host('h', '10.0.0.1')", lambda: hf.Host("h", "10.0.0.1"))
    yield call("hostfile", "Host('h', ['not-an-ip'])", lambda: hf.Host("h", ["not-an-ip"]))
    yield call("hostfile", "Host('h', [1])", lambda: hf.Host("h", [1]))
    yield call("hostfile", "Host(123)", lambda: hf.Host(123))
    yield call("hostfile", "Host('h', backend='gpu')", lambda: hf.Host("h", backend="gpu"))
    yield call("hostfile", "Host('h', extra='x')", lambda: hf.Host("h", extra="x"))
    yield call("hostfile", "write_hostfile(path, 'abc')", lambda: hf.write_hostfile(tmp() / "w.json", "abc"))
    yield call("hostfile", "write_hostfile(path, [123])", lambda: hf.write_hostfile(tmp() / "w.json", [123]))
    yield call("hostfile", "write_hostfile(path, [])", lambda: hf.write_hostfile(tmp() / "w.json", []))
    yield call(
        "hostfile", "local_host('-oProxyCommand=x')", lambda: hf.local_host("-oProxyCommand=x", ["10.0.0.1"])
    )


BAD_LIMITS: tuple[object, ...] = (
    "1GB",
    -1,
    math.nan,
    2**80,
    object(),
    True,
    0,
    0.0,
    1.5,
    -0.5,
    math.inf,
    [],
    b"1",
)


def api_cases() -> Iterator[Case]:
    import mlx_portable
    from mlx_portable.backends.cpu import CpuBackend
    from mlx_portable.registry.registry import Patch

    deactivate = mlx_portable.deactivate
    for value in ("no", 1, "yes", 0.0, [], "x" * 100_000):
        yield call(
            "api",
            f"activate(strict={value!r:.20})",
            lambda v=value: mlx_portable.activate(strict=v),
            deactivate,
        )
    for value in BAD_LIMITS:
        yield call(
            "api", f"set_memory_limit({value!r:.20})", lambda v=value: mlx_portable.set_memory_limit(v)
        )
    for value in ("1GB", -1, math.nan, 2**80, True):
        yield call(
            "api",
            f"CpuBackend().set_memory_limit({value!r:.20})",
            lambda v=value: CpuBackend().set_memory_limit(v),
        )
    for value in ("no", 1, None):
        yield call(
            "api",
            f"subprocess_env(autoactivate={value!r})",
            lambda v=value: mlx_portable.subprocess_env(autoactivate=v),
        )
    yield call("api", "subprocess_env(env='A=1')", lambda: mlx_portable.subprocess_env("A=1"))
    yield call("api", "subprocess_env(env={'A': 1})", lambda: mlx_portable.subprocess_env({"A": 1}))

    def patch(name: object = "fuzz_patch", **kw: Any) -> Callable[[], object]:
        return lambda: Patch(name, "summary", "why", kw.pop("apply", _noop), **kw)  # type: ignore[arg-type]

    yield call("api", "Patch(123, ...)", patch(123))
    yield call("api", "Patch(None, ...)", patch(None))
    yield call("api", "Patch('x'*100000, ...)", patch("x" * 100_000))
    yield call("api", "Patch(platforms='linux')", patch(platforms="linux"))
    yield call("api", "Patch(platforms=[1])", patch(platforms=[1]))
    yield call("api", "Patch(backends='cpu')", patch(backends="cpu"))
    yield call("api", "Patch(backends=[1])", patch(backends=[1]))
    yield call("api", "Patch(apply=None)", patch(apply=None))
    yield call("api", "Patch(check='x')", patch(check="x"))
    yield call("api", "Patch(when=5)", patch(when=5))
    yield call("api", "Patch(when='')", patch(when=""))
    yield call("api", "Patch(when='activate:1x')", patch(when="activate:1x"))
    yield call("api", "Patch(when='soon')", patch(when="soon"))
    yield call(
        "api",
        "register(Patch(mlx_versions='bogus'))",
        lambda: mlx_portable.register(patch(name="fuzz_bogus", mlx_versions="bogus")()),
    )
    yield call("api", "Patch(mlx_versions=5)", patch(mlx_versions=5))
    yield call("api", "Patch(summary=None)", lambda: Patch("fuzz_patch", None, "why", _noop))  # type: ignore[arg-type]
    yield call("api", "Patch(upstream=3)", patch(upstream=3))
    good = Patch("fuzz_replaced", "summary", "why", _noop)
    other = Patch("fuzz_replaced", "summary", "why", _noop)

    def replace_no() -> object:
        mlx_portable.register(good)
        return mlx_portable.register(other, replace="no")  # type: ignore[arg-type]

    def unregister() -> None:
        from mlx_portable.registry.registry import registry

        registry.unregister("fuzz_replaced")

    yield call("api", "register(p, replace='no')", replace_no, unregister)
    yield call("api", "register('x')", lambda: mlx_portable.register("x"))  # type: ignore[arg-type]
    yield call("api", "register(None)", lambda: mlx_portable.register(None))  # type: ignore[arg-type]
    yield call("api", "get_original(mx, 5)", lambda: mlx_portable.get_original(object(), 5))  # type: ignore[arg-type]
    yield call("api", "is_patched(5)", lambda: mlx_portable.is_patched(5))  # type: ignore[arg-type]


def _watch(watchdog: Any, timeout: object) -> str:
    with watchdog(timeout):
        pass
    return "entered and left"


def distributed_cases() -> Iterator[Case]:
    from mlx_portable.distributed.local_cluster import run_local
    from mlx_portable.distributed.watchdog import Watchdog

    bad_timeouts: tuple[object, ...] = (math.inf, 1e10, math.nan, -1, "10", True, [], -math.inf)
    for value in bad_timeouts:
        yield call("distributed", f"Watchdog({value!r})", lambda v=value: _watch(Watchdog, v))
    yield call("distributed", "run_local('-cpass', 1)", lambda: run_local("-cpass", 1, timeout=10))
    yield call("distributed", "run_local([...], '2')", lambda: run_local(["-c", "pass"], "2"))  # type: ignore[arg-type]
    yield call("distributed", "run_local([...], True)", lambda: run_local(["-c", "pass"], True, timeout=10))
    yield call("distributed", "run_local([...], 0)", lambda: run_local(["-c", "pass"], 0))
    for value in (math.nan, -1, "10", math.inf):
        yield call(
            "distributed",
            f"run_local(timeout={value!r})",
            lambda v=value: run_local(["-c", "pass"], 1, timeout=v),  # type: ignore[arg-type]
        )
    for value in (math.inf, 1e10, math.nan, -1, "10", True):
        code = (
            f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from tests.helpers.fuzz_cases import classify_exception\n"
            "import mlx_portable.distributed as d\n"
            "try:\n"
            f"    d.init(timeout={value!r})\n"
            "    import mlx.core as mx, threading, time\n"
            "    d.eval(mx.array(1))\n"
            "    time.sleep(0.2)\n"
            "    alive = [t for t in threading.enumerate() if 'watchdog' in t.name]\n"
            "    print('RESULT silent accepted; watchdog thread alive:', bool(alive))\n"
            "except BaseException as e:\n"
            "    print('RESULT', *classify_exception(e))\n"
        )
        code = code.replace("timeout=inf", "timeout=float('inf')").replace(
            "timeout=nan", "timeout=float('nan')"
        )
        yield child_check("distributed", f"init(timeout={value!r})", code)


def cli_cases() -> Iterator[Case]:
    yield cli("run .", ["run", "."])
    yield cli("run ..", ["run", ".."], cwd=str(tmp()))
    yield cli("run /etc", ["run", "/etc"])
    yield cli("run /dev/zero", ["run", "/dev/zero"], timeout=20)
    yield cli("run ''", ["run", ""])
    yield cli("run /dev/null/x", ["run", "/dev/null/x"], expect=2)
    yield cli(
        "check --tokens 99999999999999999999", ["check", "--tokens", "99999999999999999999", "-q"], timeout=40
    )
    yield cli("check --tokens 0", ["check", "--tokens", "0"])
    yield cli("check --tokens 1e3", ["check", "--tokens", "1e3"])
    yield cli("check --dtype int8", ["check", "--dtype", "int8"])
    no_tmp = (
        "import sys, tempfile; tempfile.tempdir = '/nonexistent/tmp'\n"
        "from mlx_portable.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    yield cli("check with no usable temp dir", ["check", "-q"], code=no_tmp)
    yield cli("doctor, MLX_PORTABLE=banana", ["doctor"], env=child_env(MLX_PORTABLE="banana"))
    yield cli("run, MLX_PORTABLE_BACKEND=gpu", ["run", "-c"], env=child_env(MLX_PORTABLE_BACKEND="gpu"))
    secret = "s3cr3t-value-123"
    for label, extra, needle in (
        ("doctor shows MLX_HF_TOKEN", {"MLX_HF_TOKEN": secret}, secret),
        ("doctor shows MLX_API_KEY", {"MLX_API_KEY": secret}, secret),
        ("doctor shows MLX_PORTABLE_PASSWORD", {"MLX_PORTABLE_PASSWORD": secret}, secret),
        ("doctor shows an escape sequence", {"MLX_X": "\x1b]0;pwned\x07\x1b[2J"}, "\x1b"),
        ("doctor --json shows MLX_SECRET", {"MLX_SECRET": secret}, secret),
    ):
        yield doctor_leak(label, extra, needle, json_output="--json" in label)


def doctor_leak(label: str, extra: dict[str, str], needle: str, json_output: bool) -> Case:
    def run() -> tuple[str, str]:
        argv = [sys.executable, "-m", "mlx_portable", "doctor", *(["--json"] if json_output else [])]
        done = run_limited(argv, child_env(**extra))
        if done is None:
            return TRACEBACK, "hangs"
        if "Traceback" in done.stderr:
            return TRACEBACK, done.stderr.strip().splitlines()[-1]
        if needle in done.stdout:
            return SILENT, "printed verbatim"
        return CLEAR, "redacted/escaped"

    return Case("cli", label, run)


def mlx_broken_cases() -> Iterator[Case]:
    """mlx missing, or an mlx whose import raises something other than ImportError."""
    for name, body in (
        ("missing", "raise ImportError('No module named mlx.core')"),
        ("OSError", "raise OSError('libmlx.so: cannot open shared object file')"),
        ("RuntimeError", "raise RuntimeError('[cuda] cudaMallocManaged failed')"),
    ):
        site = tmp() / f"mlx-{name}"
        (site / "mlx").mkdir(parents=True, exist_ok=True)
        (site / "mlx" / "__init__.py").write_text("")
        (site / "mlx" / "core.py").write_text(body + "\n")
        env = child_env(PYTHONPATH=os.pathsep.join((str(ROOT), str(site))))
        probe = (
            "import sys, warnings\n"
            "sys.path.insert(0, ROOT)\n"
            "warnings.simplefilter('always')\n"
            "from tests.helpers.fuzz_cases import classify_exception\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    import mlx_portable\n"
            "    try:\n"
            "        CALL\n"
            "        print('RESULT silent accepted:', SHOWN)\n"
            "    except BaseException as e:\n"
            "        outcome, text = classify_exception(e)\n"
            "        if len(caught) > 1:\n"
            "            outcome, text = 'traceback', f'{len(caught)} warnings first: ' + text\n"
            "        print('RESULT', outcome, text)\n"
        )
        for call_text, shown in (
            ("mlx_portable.activate()", "'activated'"),
            ("import mlx_portable.distributed as d; d.init()", "'init'"),
        ):
            code = probe.replace("ROOT", repr(str(ROOT))).replace("CALL", call_text).replace("SHOWN", shown)
            yield child_check("mlx broken", f"mlx {name}: {call_text}", code, env=env)
        report = (
            "import mlx_portable\n"
            "r = mlx_portable.report()\n"
            "ok = r.backend is None\n"
            "print('RESULT', 'clear report().backend is None' if ok else f'silent claims {r.backend}')\n"
        )
        yield child_check("mlx broken", f"mlx {name}: report().backend", report, env=env)


# -- the ELF reader -----------------------------------------------------------


def _sample_elf() -> bytes:
    folder = Path(os.__file__).parent / "lib-dynload"
    candidates = sorted(folder.glob("*.so"), key=lambda p: p.stat().st_size)
    return candidates[len(candidates) // 2].read_bytes()


def elf_inputs(count: int = 320, seed: int = 12) -> Iterator[tuple[str, bytes]]:
    """Malformed ELF files: truncations, corrupted headers, absurd offsets and sizes."""
    import struct

    rng = random.Random(seed)
    good = _sample_elf()
    yield "empty", b""
    yield "magic only", b"\x7fELF"
    yield "header of zeros", b"\x7fELF" + b"\x00" * 60
    for i in range(count):
        kind = i % 8
        data = bytearray(good)
        if kind == 0:
            data = data[: rng.randrange(0, min(len(data), 4096))]
        elif kind == 1:
            for _ in range(rng.randrange(1, 16)):
                data[rng.randrange(4, 64)] = rng.randrange(256)
        elif kind == 2:  # program header offset / count / entry size
            field, fmt = rng.choice(((0x20, "<Q"), (0x36, "<H"), (0x38, "<H")))
            struct.pack_into(
                fmt,
                data,
                field,
                rng.choice((0, 1, 2**16 - 1, 2**15, rng.randrange(2**16)))
                if fmt == "<H"
                else rng.choice((0, 2**63 - 1, 2**64 - 1, len(data) - 8, rng.randrange(2**40))),
            )
        elif kind == 3:  # corrupt the program headers
            phoff = struct.unpack_from("<Q", data, 0x20)[0]
            for _ in range(rng.randrange(1, 40)):
                pos = phoff + rng.randrange(0, 56 * 8)
                if pos < len(data):
                    data[pos] = rng.randrange(256)
        elif kind == 4:  # absurd sizes in the dynamic entries
            phoff = struct.unpack_from("<Q", data, 0x20)[0]
            phnum = struct.unpack_from("<H", data, 0x38)[0]
            for n in range(phnum):
                p_type = struct.unpack_from("<I", data, phoff + 56 * n)[0]
                if p_type == 2:
                    off = struct.unpack_from("<Q", data, phoff + 56 * n + 8)[0]
                    for _ in range(rng.randrange(1, 6)):
                        pos = off + 16 * rng.randrange(0, 30) + 8
                        if pos + 8 <= len(data):
                            struct.pack_into("<Q", data, pos, rng.choice((2**63 - 1, 2**64 - 1, 2**40, 0)))
        elif kind == 5:
            data = bytearray(b"\x7fELF" + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 512))))
        elif kind == 6:  # 32-bit / big-endian flag on a 64-bit body
            data[4] = rng.choice((0, 1, 3, 255))
            data[5] = rng.choice((0, 2, 3, 255))
        else:
            cut = rng.randrange(64, len(data))
            data = data[:cut] + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        yield f"mutant {i} (kind {kind})", bytes(data)


def elf_cases() -> Iterator[Case]:
    from mlx_portable.cuda.elf import read_dynamic

    if not sys.platform.startswith("linux"):  # the sample library is Mach-O on macOS
        return
    folder = tmp() / "elf"
    folder.mkdir(exist_ok=True)
    for n, (label, data) in enumerate(elf_inputs()):
        path = folder / f"{n}.so"
        path.write_bytes(data)

        def run(p: str = str(path)) -> tuple[str, str]:
            try:
                info = read_dynamic(p)
            except MemoryError:
                return TRACEBACK, "MemoryError"
            except Exception as exc:
                return classify_exception(exc)
            return OK, repr(info)[:100]

        yield Case("elf", label, run)
    yield call("elf", "a folder", lambda: read_dynamic(str(folder)))
    yield call("elf", "a missing file", lambda: read_dynamic(str(folder / "missing.so")))


def all_cases(include_slow: bool = True) -> Iterator[Case]:
    from . import (
        fuzz_inputs,  # the classes of tests/helpers/fuzz_inputs.py: hostile dunders, wrong types, variables
        fuzz_security_cases,  # special files, planted sys.path entries, plugin exits, secrets, run parity
    )

    yield from api_cases()
    yield from hostfile_cases()
    yield from distributed_env_cases()
    yield from elf_cases()
    yield from fuzz_inputs.fast_cases()
    yield from fuzz_security_cases.all_security_cases(include_slow)
    if include_slow:
        yield from fuzz_inputs.slow_cases()
        yield from distributed_cases()
        yield from environment_cases()
        yield from mlx_broken_cases()
        yield from cli_cases()


def classify_all(cases: Iterator[Case]) -> list[tuple[Case, str, str]]:
    results = []
    for case in cases:
        try:
            outcome, detail = case.run()
        except Exception as exc:  # the harness itself must not stop
            outcome, detail = TRACEBACK, f"harness: {type(exc).__name__}: {exc}"
        results.append((case, outcome, detail))
    return results


def table(results: list[tuple[Case, str, str]]) -> str:
    areas: dict[str, dict[str, int]] = {}
    for case, outcome, _ in results:
        row = areas.setdefault(case.area, {CLEAR: 0, OK: 0, SILENT: 0, TRACEBACK: 0})
        row[outcome] += 1
    total = {k: sum(r[k] for r in areas.values()) for k in (CLEAR, OK, SILENT, TRACEBACK)}
    lines = ["| area | tried | clear | ok (valid) | silent | traceback/hang |", "|---|---|---|---|---|---|"]
    for area, row in [*areas.items(), ("**total**", total)]:
        lines.append(
            f"| {area} | {sum(row.values())} | {row[CLEAR]} | {row[OK]} | {row[SILENT]} | {row[TRACEBACK]} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    sys.path.insert(0, str(ROOT))
    found = classify_all(all_cases(include_slow="--fast" not in sys.argv))
    print(table(found))
    if "-v" in sys.argv:
        for case, outcome, detail in found:
            if outcome not in (CLEAR, OK):
                print(f"{outcome:9} {case.area:12} {case.label}: {detail}")
