"""The classes of bad input an audit found that the first fuzz areas missed, as tables.

``tests/fuzz_cases.py`` classifies each case (clear / ok / silent / traceback);
this module adds three areas to it, each a class rather than a list of
single cases, so the next member of a class is found here, not by an auditor:

- ``hostile``: values whose ``__str__``, ``__repr__``, ``__eq__``,
  ``__hash__``, ``__iter__``, ``__fspath__``, ``__index__`` or ``__bool__``
  raises (plain objects, and ``str``/``int`` subclasses that pass an
  ``isinstance`` check), given to every argument of every public function in
  :data:`TARGETS`.  The object's own exception must never come out of
  mlx-portable: a ``TypeError`` naming the argument, or a correct answer
  whose later use (``repr``, ``==``, ``hash``, the JSON report) still works;
- ``wrong type``: every argument of :data:`TARGETS` given each value of
  :data:`WRONG_VALUES` (booleans where strings are expected and the reverse,
  sets, dicts, ``None``, NaN and infinities, empty and blank strings, NUL,
  ``=`` and whitespace).  Each target says which values it accepts; the
  others must get a ``TypeError``/``ValueError``/``MlxPortableError`` that
  names the argument, and the accepted ones an answer;
- ``variables``: every documented environment variable with a table of bad
  values (:data:`BAD_VALUES`), read by the function that reads it, and by
  ``doctor``'s check, which must agree; misspelt names must be named in a
  warning; hostfiles that are empty or hold NaN.  The variables that act at
  ``import mlx_portable`` run in a child process (``slow_cases``).

The oracle is :func:`fuzz_cases.classify_exception` plus the argument's name
in the message: never another exception type from inside mlx-portable, never
silent acceptance.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from . import fuzz_cases
from .fuzz_cases import CLEAR, OK, SILENT, TRACEBACK, Case, child_env, env_value, tmp


class HostileError(Exception):
    """What a hostile dunder raises: it must never come out of mlx-portable."""


#: The special methods an argument's value may make raise.
DUNDERS = ("__str__", "__repr__", "__eq__", "__hash__", "__iter__", "__fspath__", "__index__", "__bool__")


def hostile(dunder: str, base: type = object) -> Any:
    """An instance of a ``base`` subclass whose ``dunder`` raises :class:`HostileError`."""

    def boom(self: object, *args: object) -> Any:
        raise HostileError(f"{dunder} of a hostile {base.__name__}")

    namespace: dict[str, Any] = {dunder: boom}
    if dunder == "__eq__":
        namespace["__hash__"] = lambda self: 1  # defining __eq__ alone would make it unhashable
    value = type(f"Hostile{dunder.strip('_').title()}{base.__name__.title()}", (base,), namespace)
    if base is str:
        return value("cpu")
    if base is int:
        return value(1)
    return value()


def hostile_values() -> Iterator[tuple[str, Any]]:
    for dunder in DUNDERS:
        yield f"object with raising {dunder}", hostile(dunder)
    for dunder in ("__str__", "__repr__", "__eq__", "__hash__", "__iter__"):
        yield f"str subclass with raising {dunder}", hostile(dunder, str)
    for dunder in ("__index__", "__repr__", "__eq__", "__bool__"):
        yield f"int subclass with raising {dunder}", hostile(dunder, int)


class Target:
    """One argument of one public function: how to call it with a value, and which values it accepts.

    ``use`` exercises an accepted result the way a program would (its repr,
    ``==``, the JSON report), so a hostile value stored now and raising later
    is caught.  ``starts`` marks calls whose accepted values would start
    something (a group, a file in the working folder): only refusals are tried.
    """

    __slots__ = ("accepts", "accepts_hostile", "argument", "call", "label", "lookup", "starts")

    def __init__(
        self,
        label: str,
        argument: str,
        call: Callable[[Any], object],
        accepts: Callable[[Any], bool],
        *,
        starts: bool = False,
        lookup: type[Exception] | None = None,
        accepts_hostile: Callable[[str], bool] = lambda label: False,
    ) -> None:
        self.lookup = lookup  # a lookup by name answers this (KeyError, AttributeError) for a missing one
        self.accepts_hostile = accepts_hostile  # hostile values it may rightly accept, by label
        self.label = label
        self.argument = argument
        self.call = call
        self.accepts = accepts
        self.starts = starts


def _use(result: object) -> object:
    """Use a result as a program would: ``repr``, ``str``, ``==``, ``hash`` and the JSON report."""
    repr(result)
    str(result)
    _ = result == result
    try:
        hash(result)
    except TypeError:
        pass  # unhashable by design (a list, a dict)
    import mlx_portable

    mlx_portable.report().to_json()
    return result


def _is_str(v: object, *, empty: bool = False) -> bool:
    return isinstance(v, str) and (empty or bool(v.strip()))


def _plain(v: object) -> bool:
    """Not a hostile subclass (a test value of an exact built-in type)."""
    return type(v) in (str, int, float, bool, list, tuple, dict, set, frozenset, bytes, type(None))


def _is_bool(v: object) -> bool:
    return v is True or v is False


def _host_name(v: object) -> bool:
    import re

    return isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", v) is not None


def _ips(v: object) -> bool:
    import ipaddress

    if not isinstance(v, (list, tuple)):
        return False
    try:
        return all(isinstance(ip, str) and ipaddress.ip_address(ip) for ip in v)
    except ValueError:
        return False


def _env(v: object) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(x, str) and k and "=" not in k and "\0" not in k + x
        for k, x in v.items()
    )


class Pairs(Mapping[Any, Any]):
    """A mapping kept as a list of pairs, so any object (unhashable, hostile) can be a key."""

    def __init__(self, pairs: list[tuple[Any, Any]]) -> None:
        self._pairs = pairs

    def __getitem__(self, key: Any) -> Any:
        for k, v in self._pairs:
            if k is key:
                return v
        raise KeyError("not found")

    def __iter__(self) -> Iterator[Any]:
        return iter([k for k, _ in self._pairs])

    def __len__(self) -> int:
        return len(self._pairs)


def _mx() -> Any:
    import mlx.core as mx

    return mx


def _patch(**kw: Any) -> Any:
    from mlx_portable import Patch

    def apply(ctx: object) -> None:
        return None

    fields: dict[str, Any] = {"name": "fuzz_inputs_patch", "summary": "s", "why": "w", "apply": apply}
    fields.update(kw)
    return Patch(fields.pop("name"), fields.pop("summary"), fields.pop("why"), fields.pop("apply"), **fields)


def _set_detail(key: object, value: object) -> object:
    """``set_detail(key, value)``, then the JSON report as a program would read it; the details restored."""
    from mlx_portable import activation

    saved = dict(activation._details)
    try:
        activation.set_detail(key, value)  # type: ignore[arg-type]
        import mlx_portable

        return json.loads(mlx_portable.report().to_json())["details"]
    finally:
        activation._details.clear()
        activation._details.update(saved)
        activation._invalidate()


def _hostfile(hosts: object) -> str:
    path = tmp() / "inputs-hosts.json"
    path.write_text(json.dumps(hosts))
    return str(path)


def _valid_version(v: object) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        Version(v)  # type: ignore[arg-type]
    except (InvalidVersion, TypeError):
        return False
    return True


def targets() -> list[Target]:
    """Every public function's arguments (the ones a value reaches unchanged)."""
    import mlx_portable
    import mlx_portable.cuda as cuda
    import mlx_portable.distributed as dist
    from mlx_portable.distributed.choice import DEVICE_BACKENDS, REQUESTS, ClusterFacts
    from mlx_portable.distributed.watchdog import Watchdog
    from mlx_portable.validation import MAX_TIMEOUT

    def facts(**kw: Any) -> ClusterFacts:
        fields: dict[str, Any] = {"mlx_version": "0.30.1", "platform": "linux", "local": "cpu"}
        fields.update(kw)
        return ClusterFacts(**fields)

    def watch(v: object) -> str:
        with Watchdog(v):  # type: ignore[arg-type]
            pass
        return "entered and left"

    def timeout_ok(v: object) -> bool:
        return v is None or (
            not isinstance(v, bool) and isinstance(v, (int, float)) and 0 <= v <= MAX_TIMEOUT
        )

    def lower_snake(v: object) -> bool:
        return (
            isinstance(v, str)
            and 0 < len(v) <= 64
            and v.isascii()
            and v.replace("_", "").isalnum()
            and v == v.lower()
        )

    def names(v: object) -> bool:
        return isinstance(v, (list, tuple, set, frozenset)) and bool(v) and all(isinstance(x, str) for x in v)

    good_host = {"ssh": "h1", "ips": ["10.0.0.1"], "backend": "cpu"}
    return [
        Target("obsolete(reason)", "obsolete(reason", mlx_portable.obsolete, _is_str),
        Target("skip(reason)", "skip(reason", mlx_portable.skip, _is_str),
        Target("Patch(name)", "Patch name", lambda v: _patch(name=v), lower_snake),
        Target("Patch(summary)", "summary", lambda v: _patch(summary=v), lambda v: _is_str(v, empty=True)),
        Target(
            "Patch(backends)",
            "backends",
            lambda v: _patch(backends=v),
            lambda v: v is None or (names(v) and set(v) <= set(DEVICE_BACKENDS)),
        ),
        Target(
            "Patch(platforms)",
            "platforms",
            lambda v: _patch(platforms=v),
            # ASCII: no sys.platform is otherwise ("ª" is a lower-case letter to str.isalnum).
            lambda v: (
                v is None or (names(v) and all(x.isascii() and x.isalnum() and x == x.lower() for x in v))
            ),
        ),
        Target(
            "Patch(when)",
            "when",
            lambda v: _patch(when=v),
            lambda v: v in ("activate", "import", "before-mlx"),
        ),
        Target(
            "report().patch(name)",
            "name",
            lambda v: mlx_portable.report().patch(v),
            lambda v: isinstance(v, str) and v in [p.name for p in mlx_portable.report().patches],
            lookup=KeyError,
        ),
        Target(
            "report().to_json(indent)",
            "indent",
            lambda v: mlx_portable.report().to_json(indent=v),
            lambda v: v is None or (not isinstance(v, bool) and isinstance(v, int) and 0 <= v <= 16),
        ),
        Target("set_detail(key)", "key", lambda v: _set_detail(v, 1), _is_str),
        Target(
            "set_detail(value)",
            "value",
            lambda v: _set_detail("fuzz_inputs", v),
            lambda v: True,  # anything str() can show
            # Shown in the report through str(): only a raising __str__/__repr__ makes it unusable.
            accepts_hostile=lambda label: "__str__" not in label and "__repr__" not in label,
        ),
        Target(
            "activate(strict)",
            "strict",
            lambda v: mlx_portable.activate(strict=v),
            lambda v: v is None or _is_bool(v),
        ),
        Target("register(patch)", "register", lambda v: mlx_portable.register(v), lambda v: False),
        Target(
            "is_patched(name)",
            "is_patched",
            lambda v: mlx_portable.is_patched(v),
            lambda v: isinstance(v, str),  # False for a name no patch has: a correct answer
        ),
        Target(
            "get_original(obj, attr)",
            "get_original",
            lambda v: mlx_portable.get_original(_mx(), v),
            lambda v: isinstance(v, str) and hasattr(_mx(), v),
            lookup=AttributeError,
        ),
        Target(
            "probe_all(mx)",
            "mx",
            lambda v: mlx_portable.probe_all(mx=v),
            lambda v: v is None,
        ),
        Target(
            "probe_all(import_mlx)", "import_mlx", lambda v: mlx_portable.probe_all(import_mlx=v), _is_bool
        ),
        Target(
            "any_thread_stream(mx)", "mx", lambda v: mlx_portable.any_thread_stream(mx=v), lambda v: v is None
        ),
        Target(
            "any_thread_stream(device)",
            "device",
            lambda v: mlx_portable.any_thread_stream(v),
            lambda v: v is None,
        ),
        Target(
            "subprocess_env(env)",
            "env",
            lambda v: mlx_portable.subprocess_env(v),
            lambda v: v is None or _env(v),
        ),
        Target(
            "subprocess_env(env={'A': value})",
            "subprocess_env",
            lambda v: mlx_portable.subprocess_env({"A": v}),
            lambda v: isinstance(v, str) and "\0" not in v,
        ),
        Target(
            "subprocess_env(env={name: '1'})",
            "subprocess_env",
            lambda v: mlx_portable.subprocess_env(Pairs([(v, "1")])),
            lambda v: isinstance(v, str) and v != "" and "=" not in v and "\0" not in v,
        ),
        Target(
            "subprocess_env(autoactivate)",
            "autoactivate",
            lambda v: mlx_portable.subprocess_env({}, autoactivate=v),
            _is_bool,
        ),
        Target(
            "visible_devices(env)",
            "visible_devices",
            lambda v: cuda.visible_devices({"CUDA_VISIBLE_DEVICES": v}),
            lambda v: isinstance(v, str) and "\0" not in v,
        ),
        Target(
            "missing_library_message(soname)",
            "soname",
            lambda v: cuda.missing_library_message(v, "cannot open shared object file"),
            _is_str,
        ),
        Target(
            "missing_library_message(error_text)",
            "error_text",
            lambda v: cuda.missing_library_message("libcublas.so.12", v),
            lambda v: isinstance(v, str),
        ),
        Target("Host(ssh)", "ssh name", lambda v: dist.Host(v), _host_name),
        Target("Host(ips)", "ips", lambda v: dist.Host("h", v), _ips),
        Target(
            "Host(backend)",
            "backend",
            lambda v: dist.Host("h", backend=v),
            lambda v: v is None or v in DEVICE_BACKENDS,
        ),
        Target(
            "write_hostfile(path)",
            "path",
            lambda v: dist.write_hostfile(v, [good_host]),
            lambda v: isinstance(v, str) and bool(v) and "\0" not in v,
            starts=True,  # a valid name writes a file in the working folder
        ),
        Target(
            "write_hostfile(hosts)",
            "hosts",
            lambda v: dist.write_hostfile(tmp() / "inputs-w.json", v),
            lambda v: False,
        ),
        Target(
            "read_hostfile(path)",
            "path",
            lambda v: dist.read_hostfile(v),
            lambda v: False,  # none of the values names a hostfile
        ),
        Target(
            "launch_arguments(needs_p2p)",
            "needs_p2p",
            lambda v: dist.launch_arguments(_hostfile([good_host]), needs_p2p=v),
            lambda v: v is None or _is_bool(v),
        ),
        Target(
            "init(backend)",
            "backend",
            lambda v: dist.init(backend=v),
            lambda v: isinstance(v, str) and v.strip().lower() in REQUESTS,
            starts=True,
        ),
        Target(
            "init(needs_p2p)",
            "needs_p2p",
            lambda v: dist.init(needs_p2p=v),
            lambda v: v is None or _is_bool(v),
            starts=True,
        ),
        Target(
            "init(cluster)",
            "cluster",
            lambda v: dist.init(cluster=v),
            lambda v: v is None or v == ["cpu"],
            starts=True,
        ),
        Target("init(strict)", "strict", lambda v: dist.init(strict=v), _is_bool, starts=True),
        Target("sum_scatter(x)", "x", lambda v: dist.sum_scatter(v), lambda v: False),
        Target("all_sum(x)", "x", lambda v: dist.all_sum(v), lambda v: False),
        Target("Watchdog(timeout)", "timeout", watch, timeout_ok),
        Target("ClusterFacts(mlx_version)", "mlx_version", lambda v: facts(mlx_version=v), _valid_version),
        Target("ClusterFacts(local)", "local", lambda v: facts(local=v), lambda v: v in DEVICE_BACKENDS),
        Target(
            "ClusterFacts(built)",
            "built",
            lambda v: facts(built=v),
            lambda v: isinstance(v, dict) and all(k in dist.BACKENDS and _is_bool(x) for k, x in v.items()),
        ),
        Target(
            "ClusterFacts(launched)",
            "launched",
            lambda v: facts(launched=v),
            lambda v: isinstance(v, (list, tuple, set, frozenset)) and set(v) <= set(dist.BACKENDS),
        ),
        Target(
            "set_memory_limit(limit)",
            "set_memory_limit",
            lambda v: mlx_portable.set_memory_limit(v),
            lambda v: (
                v is None or (isinstance(v, float) and 0 < v <= 1) or (type(v) is int and 0 < v < 2**63)
            ),
        ),
    ]


#: Values of the wrong type or shape, for every argument.
WRONG_VALUES: tuple[tuple[str, object], ...] = (
    ("None", None),
    ("True", True),
    ("False", False),
    ("0", 0),
    ("1", 1),
    ("-1", -1),
    ("2**70", 2**70),
    ("nan", math.nan),
    ("inf", math.inf),
    ("-inf", -math.inf),
    ("1.5", 1.5),
    ("''", ""),
    ("' '", " "),
    ("'\\t\\n'", "\t\n"),
    ("'x\\0y'", "x\0y"),
    ("'yes'", "yes"),
    ("'no'", "no"),
    ("'true'", "true"),
    ("'A=B'", "A=B"),
    ("' cpu '", " cpu "),
    ("'x'*5000", "x" * 5000),
    ("b'cpu'", b"cpu"),
    ("[]", []),
    ("['']", [""]),
    ("['cpu', 'cpu']", ["cpu", "cpu"]),
    ("set()", set()),
    ("{'cpu'}", {"cpu"}),
    ("{}", {}),
    ("{'a': 1}", {"a": 1}),
    ("object()", object()),
)


def _named(exc: BaseException, argument: str) -> bool:
    """The message names the argument (an ``OSError`` names its file instead)."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return True
    return argument.lower() in str(exc).lower()


def shown(value: object) -> str:
    try:
        return repr(value)[:100]
    except Exception as exc:
        return f"<repr raised {type(exc).__name__}>"


def argument_case(
    area: str, target: Target, label: str, value: object, *, hostile_value: bool
) -> Case | None:
    """One value given to one argument, classified against what the target accepts."""
    try:
        accepted = target.accepts_hostile(label) if hostile_value else bool(target.accepts(value))
    except Exception:
        accepted = False
    if accepted and target.starts:
        return None

    def run() -> tuple[str, str]:
        import os

        import mlx_portable

        here = os.getcwd()
        os.chdir(tmp())  # a path accepted after all (a str subclass "cpu") is written in the scratch folder
        try:
            result = target.call(value)
            if hostile_value or accepted:
                _use(result)
        except HostileError as exc:
            return TRACEBACK, f"the value's own exception came out: {exc}"
        except Exception as exc:
            # A lookup by name answers what a dict or getattr would, with a short message.
            lookup = target.lookup is not None and type(exc) is target.lookup and fuzz_cases._own_frame(exc)
            if lookup and len(str(exc)) <= fuzz_cases.MAX_MESSAGE and _named(exc, target.argument):
                return CLEAR, f"{type(exc).__name__}: {str(exc)[:160]}"
            outcome, detail = fuzz_cases.classify_exception(exc)
            if isinstance(exc.__context__, HostileError) and exc.__suppress_context__ is False:
                return TRACEBACK, f"raised while the value's own exception was handled: {detail}"
            if outcome == CLEAR and not _named(exc, target.argument):
                return TRACEBACK, f"does not name {target.argument!r}: {detail}"
            if outcome == CLEAR and accepted:
                return TRACEBACK, f"refused a valid value: {detail}"
            return outcome, detail
        finally:
            os.chdir(here)
            mlx_portable.deactivate()
        if accepted or (hostile_value and type(value).__mro__[1] in (str, int)):
            return OK, f"answered {shown(result)}"
        return SILENT, f"accepted, returned {shown(result)}"

    return Case(area, f"{target.label} <- {label}", run)


def hostile_cases() -> Iterator[Case]:
    for target in targets():
        for label, value in hostile_values():
            case = argument_case("hostile", target, label, value, hostile_value=True)
            if case is not None:
                yield case


def wrong_type_cases() -> Iterator[Case]:
    for target in targets():
        for label, value in WRONG_VALUES:
            case = argument_case("wrong type", target, label, value, hostile_value=False)
            if case is not None:
                yield case


# -- environment variables ---------------------------------------------------

FLAG_BAD = ("banana", "2", "y", "ture", "tru", "-1", "yes please", "1 0", "\uff11", "on\0")
TIMEOUT_BAD = (
    "nan",
    "NaN",
    "inf",
    "-inf",
    "infinity",
    "1e10",
    "-1",
    "1_0",
    "0x10",
    "\u0661\u0660",
    "10s",
    "1,5",
)
SIZE_BAD = ("-1", "0", "abc", "1_0", "1.5", "\u0661", "2**3")
RANK_BAD = ("-1", "abc", "1_0", "1.0")
DIST_BACKEND_BAD = ("bogus", "ring;rm -rf /", "nccl,ring", "ri ng", "x" * 5000)  # " RING " is fine
CLUSTER_BAD = ("gpu,cpu", ",", "cpu,,cpu", "cpu;cuda", "cpu cuda")  # blank means unset
BACKEND_BAD = ("gpu", "cuda;cpu", " , ", "mps")

#: Every documented variable (but the import-time ones, in ``slow_cases``) and a table of bad values.
BAD_VALUES: dict[str, tuple[str, ...]] = {
    "MLX_PORTABLE": FLAG_BAD,
    "MLX_PORTABLE_STRICT": FLAG_BAD,
    "MLX_PORTABLE_THREAD_FREE_STREAMS": FLAG_BAD,
    "MLX_PORTABLE_BACKEND": BACKEND_BAD,
    "MLX_PORTABLE_DISTRIBUTED_TIMEOUT": TIMEOUT_BAD,
    "MLX_PORTABLE_DISTRIBUTED_BACKEND": DIST_BACKEND_BAD,
    "MLX_PORTABLE_CLUSTER_BACKENDS": CLUSTER_BAD,
    "MLX_WORLD_SIZE": SIZE_BAD,
    "MLX_RANK": RANK_BAD,
}

#: Names a person mistypes, each with the variable meant.
MISSPELT: dict[str, str] = {
    "MLX_PORTBLE_BACKEND": "MLX_PORTABLE_BACKEND",
    "MLXPORTABLE_BACKEND": "MLX_PORTABLE_BACKEND",
    "mlx_portable_backend": "MLX_PORTABLE_BACKEND",
    "MLX_PROTABLE_STRICT": "MLX_PORTABLE_STRICT",
    "MLX_PORTABLE_THREAD_FREE_STREAM": "MLX_PORTABLE_THREAD_FREE_STREAMS",
    "MLX_PORTABLE_DISABLE_PATCHES": "MLX_PORTABLE_DISABLE",
    "MLX_PORTABLE_AUTOACTIVATE ": "MLX_PORTABLE_AUTOACTIVATE",
    "MLX_PORTABLE_AUTO_ACTIVATE": "MLX_PORTABLE_AUTOACTIVATE",
    " MLX_PORTABLE_STRICT": "MLX_PORTABLE_STRICT",
    "MLX_PORTABLE_DISTRIBUTED_TIMEOUTS": "MLX_PORTABLE_DISTRIBUTED_TIMEOUT",
    "MLX_PORTABLE_HOST_FILE": "MLX_PORTABLE_HOSTFILE",
}


def _readers() -> dict[str, Callable[[dict[str, str]], object]]:
    """The function that reads each variable, as the library does."""
    from mlx_portable.distributed import launch_env
    from mlx_portable.settings import read_settings

    return {
        "MLX_PORTABLE": read_settings,
        "MLX_PORTABLE_STRICT": read_settings,
        "MLX_PORTABLE_THREAD_FREE_STREAMS": read_settings,
        "MLX_PORTABLE_BACKEND": read_settings,
        "MLX_PORTABLE_DISTRIBUTED_TIMEOUT": launch_env.timeout_seconds,
        "MLX_PORTABLE_CLUSTER_BACKENDS": launch_env.cluster_backends,
        # Before check_launcher_numbers, rank_and_size read them (and ignored bad ones).
        "MLX_WORLD_SIZE": getattr(launch_env, "check_launcher_numbers", launch_env.rank_and_size),
        "MLX_RANK": getattr(launch_env, "check_launcher_numbers", launch_env.rank_and_size),
    }


def _doctor_check(env: dict[str, str]) -> list[str]:
    """What ``doctor`` reports about the variables (the distributed ones; the others fail activate())."""
    from mlx_portable.distributed import launch_env

    check = getattr(launch_env, "environment_problems", None)  # absent: doctor checked none of them
    return [] if check is None else check(env)


def variable_case(variable: str, value: str, *, extra: dict[str, str] | None = None) -> Case:
    def run() -> tuple[str, str]:
        env = {variable: value, **(extra or {})}
        reader = _readers().get(variable)
        doctor_says = [p for p in _doctor_check(env) if variable in p]
        if reader is None or variable == "MLX_PORTABLE_DISTRIBUTED_BACKEND":
            if doctor_says:
                return CLEAR, doctor_says[0][:200]
            return SILENT, "neither init() nor doctor names it"
        try:
            result = reader(env)
        except ValueError as exc:
            outcome, detail = fuzz_cases.classify_exception(exc)
            if outcome == CLEAR and variable not in str(exc):
                return TRACEBACK, f"does not name {variable}: {detail}"
            if (
                outcome == CLEAR
                and variable.startswith(
                    ("MLX_PORTABLE_DISTRIBUTED", "MLX_PORTABLE_CLUSTER", "MLX_WORLD", "MLX_RANK")
                )
                and not doctor_says
            ):
                return SILENT, f"init() refuses it but doctor says ok: {detail}"
            return outcome, detail
        except Exception as exc:
            return fuzz_cases.classify_exception(exc)
        return SILENT, f"accepted, read as {result!r}"[:200]

    return Case("variables", f"{variable}={value[:24]!r}", run)


def hostfile_variable_case(label: str, content: bytes | None, path: str | None = None) -> Case:
    """``MLX_PORTABLE_HOSTFILE`` naming a bad file: init() and doctor both refuse it, naming it."""

    def run() -> tuple[str, str]:
        from mlx_portable.distributed import launch_env

        target = path
        if target is None:
            file = tmp() / f"inputs-hostfile-{abs(hash(label))}.json"
            file.write_bytes(content or b"")
            target = str(file)
        env = {"MLX_PORTABLE_HOSTFILE": target}
        doctor_says = [p for p in _doctor_check(env) if "MLX_PORTABLE_HOSTFILE" in p]
        try:
            result = launch_env.cluster_backends(env)
        except ValueError as exc:
            outcome, detail = fuzz_cases.classify_exception(exc)
            if outcome == CLEAR and not doctor_says:
                return SILENT, f"init() refuses it but doctor says ok: {detail}"
            return outcome, detail
        except Exception as exc:
            return fuzz_cases.classify_exception(exc)
        return SILENT, f"accepted, read as {result!r}"[:200]

    return Case("variables", f"MLX_PORTABLE_HOSTFILE={label}", run)


def misspelt_case(name: str, meant: str) -> Case:
    def run() -> tuple[str, str]:
        from mlx_portable.cli.environment import variables_in_effect
        from mlx_portable.settings import misspelt_variables

        said = misspelt_variables({name: "1"})
        if not said:
            return SILENT, "no warning"
        if meant not in said[0]:
            return TRACEBACK, f"names the wrong variable: {said[0]}"
        doctor = [e.warning for e in variables_in_effect("cpu", {name: "1"}) if e.warning]
        if not doctor or meant not in doctor[0]:
            return SILENT, f"import warns but doctor does not: {said[0]}"
        return CLEAR, said[0][:200]

    return Case("variables", f"misspelt {name!r}", run)


def _hostfiles() -> dict[str, bytes]:
    return {
        "[]": b"[]",
        '{"hosts": []}': b'{"hosts": []}',
        "NaN in ips": b'[{"ssh": "h", "ips": [NaN]}]',
        "NaN as a key's value": b'[{"ssh": "h", "backend": "cpu", "slots": NaN}]',
        "Infinity": b'[{"ssh": "h", "backend": "cpu", "x": Infinity}]',
        '{"hosts": {}}': b'{"hosts": {}}',
        "null": b"null",
        "backend 5": b'[{"ssh": "h", "backend": 5}]',
    }


def variable_cases() -> Iterator[Case]:
    for variable, values in BAD_VALUES.items():
        for value in values:
            extra = {"MLX_WORLD_SIZE": "2"} if variable == "MLX_RANK" else None
            yield variable_case(variable, value, extra=extra)
    yield variable_case("MLX_RANK", "2", extra={"MLX_WORLD_SIZE": "2"})
    for label, content in _hostfiles().items():
        yield hostfile_variable_case(label, content)
    for label, path in (
        ("/dev/zero", "/dev/zero"),
        ("a folder", None),
        ("a missing file", "/nonexistent/h.json"),
    ):
        yield hostfile_variable_case(label, None, path if path is not None else str(tmp()))
    for name, meant in MISSPELT.items():
        yield misspelt_case(name, meant)
    from mlx_portable.distributed import read_hostfile

    for label, content in _hostfiles().items():
        file = tmp() / f"inputs-read-{abs(hash(label))}.json"
        file.write_bytes(content)
        yield fuzz_cases.call("hostfile", f"read_hostfile({label})", lambda f=file: read_hostfile(f))  # type: ignore[misc]
    from mlx_portable.distributed import launch_arguments

    for label in ("[]", '{"hosts": []}'):
        file = tmp() / f"inputs-launch-{abs(hash(label))}.json"
        file.write_bytes(_hostfiles()[label])
        yield fuzz_cases.call(
            "hostfile",
            f"launch_arguments({label})",
            lambda f=file: launch_arguments(f),  # type: ignore[misc]
        )


def _strict_json_case() -> Case:
    def run() -> tuple[str, str]:
        import mlx_portable
        from mlx_portable.activation import _details, set_detail

        set_detail("fuzz_nan", {"a": math.nan, "b": [math.inf, -math.inf]})
        try:
            text = mlx_portable.report().to_json()
        finally:
            _details.pop("fuzz_nan", None)

        def refuse(word: str) -> object:
            raise ValueError(word)

        try:
            json.loads(text, parse_constant=refuse)
        except ValueError as exc:
            return SILENT, f"the JSON holds bare {exc}"
        return OK, "strict JSON"

    return Case("variables", "report().to_json() with NaN in details", run)


def fast_cases() -> Iterator[Case]:
    """The in-process classes: a few seconds."""
    yield from hostile_cases()
    yield from wrong_type_cases()
    yield from variable_cases()
    yield _strict_json_case()


# -- in a fresh interpreter: what ``import mlx_portable`` reads ---------------


def slow_cases() -> Iterator[Case]:
    for value in ("banana", "2", "y", "ture"):
        yield env_value("MLX_PORTABLE_THREAD_FREE_STREAMS", value)
    for value in ("ture", "tru", "-1", "yes please"):  # fuzz_cases tries banana, 2 and y
        yield fuzz_cases.autoactivate_case(value)
    yield disable_case("metal_namespace,nonexistent", "nonexistent")
    yield disable_case("no_such_patch", "no_such_patch")
    for name in (
        "MLX_PORTBLE_BACKEND",
        "MLXPORTABLE_BACKEND",
        "mlx_portable_backend",
        "MLX_PORTABLE_AUTO_ACTIVATE",
    ):
        yield env_value(name, "1", activate_raises=False)
    yield fuzz_cases.cli("doctor --json --markdown", ["doctor", "--json", "--markdown"])
    for variable, value in (
        ("MLX_PORTABLE_DISTRIBUTED_TIMEOUT", "nan"),
        ("MLX_PORTABLE_HOSTFILE", "/dev/zero"),
        ("MLX_WORLD_SIZE", "-1"),
    ):
        yield doctor_agrees(variable, value)


def disable_case(value: str, unknown: str) -> Case:
    """``MLX_PORTABLE_DISABLE`` naming a patch that does not exist: a warning at import, activate() raises."""

    def run() -> tuple[str, str]:
        got = fuzz_cases._import_probe(child_env(MLX_PORTABLE_DISABLE=value))
        if isinstance(got, str):
            return TRACEBACK, got
        named = [w for w in got["warnings"] if "MLX_PORTABLE_DISABLE" in w and unknown in w]
        if not named:
            return SILENT, f"no warning at import names {unknown!r}"
        if not got["activate"] or unknown not in got["activate"]:
            return SILENT, f"activate() accepted it: {got['activate']}"
        return CLEAR, named[0][:200]

    return Case("environment", f"MLX_PORTABLE_DISABLE={value!r}", run)


def doctor_agrees(variable: str, value: str) -> Case:
    """``doctor`` finds a problem naming the variable (exit 1) where ``distributed.init()`` refuses it."""

    def run() -> tuple[str, str]:
        done = fuzz_cases.run_limited(
            [sys.executable, "-m", "mlx_portable", "doctor", "--json"], child_env(**{variable: value})
        )
        if done is None:
            return TRACEBACK, "hangs"
        if "Traceback" in done.stderr:
            return TRACEBACK, done.stderr.strip().splitlines()[-1][:200]
        data = json.loads(done.stdout)
        named = [p for p in data["problems"] if variable in p]
        if not named or done.returncode == 0:
            return SILENT, f"doctor exit {done.returncode}, status {data['status']}: nothing about {variable}"
        return CLEAR, named[0][:200]

    return Case("variables", f"doctor with {variable}={value}", run)


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    found = fuzz_cases.classify_all(fast_cases())
    if "--fast" not in sys.argv:
        found += fuzz_cases.classify_all(slow_cases())
    print(fuzz_cases.table(found))
    if "-v" in sys.argv:
        for case, outcome, detail in found:
            if outcome not in (CLEAR, OK):
                print(f"{outcome:9} {case.area:12} {case.label}: {detail}")
