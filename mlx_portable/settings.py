"""Settings read from ``MLX_PORTABLE_*`` environment variables.

Every bad value is a :class:`ValueError` that names the variable, the value
and the valid choices, so a typo in a job script fails loudly at
``activate()`` instead of silently doing something else.

``import mlx_portable`` must not raise, and must not quietly skip its
import-time patches either (on old mlx that leaves ``import mlx_lm`` failing
with ``AttributeError ... 'new_thread_local_stream'``), so it reads the
settings with :func:`settings_for_import`: every bad value falls back to its
default and one :class:`~mlx_portable.PortabilityWarning` names each bad
variable, its value and the accepted ones, and any ``MLX_PORTABLE_*`` name
that looks like a misspelling of a known one.  An empty value means unset.
"""

from __future__ import annotations

import os

from .backend_table import backend_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import TypeVar

    T = TypeVar("T")

__all__ = [
    "BACKEND_NAMES",
    "ENV_BACKEND",
    "ENV_DISABLE",
    "ENV_KILL_SWITCH",
    "ENV_STRICT",
    "KNOWN_VARIABLES",
    "Settings",
    "misspelt_variables",
    "near_miss",
    "parse_backend_order",
    "read_flag",
    "read_settings",
    "settings_for_import",
    "validate_disabled",
    "with_arguments",
]

#: Backend names in their default priority order (from the backend table).
BACKEND_NAMES: tuple[str, ...]

ENV_BACKEND = "MLX_PORTABLE_BACKEND"
ENV_DISABLE = "MLX_PORTABLE_DISABLE"
ENV_STRICT = "MLX_PORTABLE_STRICT"
ENV_KILL_SWITCH = "MLX_PORTABLE"

ENV_AUTOACTIVATE = "MLX_PORTABLE_AUTOACTIVATE"

#: The one list of every variable mlx-portable reads, each under the module
#: that reads it (its owner, which keeps its own constant for it; a test
#: checks that every ``MLX_PORTABLE_*`` name in the package is listed here).
#: Doctor describes these, and a set name close to one of them (but not one)
#: is reported as a probable misspelling.  A literal list rather than one
#: gathered from the owners: importing ``mlx_portable.distributed`` to ask it
#: would cost ``import mlx_portable`` about 300 ms.
KNOWN_VARIABLES: tuple[str, ...] = (
    # mlx_portable.settings (this module)
    ENV_KILL_SWITCH,
    ENV_BACKEND,
    ENV_DISABLE,
    ENV_STRICT,
    ENV_AUTOACTIVATE,
    # mlx_portable.patches.thread_free_streams (ENV); checked here as a flag
    "MLX_PORTABLE_THREAD_FREE_STREAMS",
    # mlx_portable.distributed.variables
    "MLX_PORTABLE_DISTRIBUTED_BACKEND",
    "MLX_PORTABLE_CLUSTER_BACKENDS",
    "MLX_PORTABLE_HOSTFILE",
    "MLX_PORTABLE_DISTRIBUTED_TIMEOUT",
    # mlx_portable.cli.matrix (ENVS_VARIABLE)
    "MLX_PORTABLE_MATRIX_ENVS",
    # the test suite, in the environments noxfile.py and ``mlx-portable matrix`` build
    "MLX_PORTABLE_MATRIX_MLX",
    "MLX_PORTABLE_MATRIX_MLX_LM",
)

#: Flags read where they are used (not part of :class:`Settings`) whose
#: values are checked with the others, so a typo fails ``activate()``.
OTHER_FLAGS: tuple[str, ...] = ("MLX_PORTABLE_THREAD_FREE_STREAMS",)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_FLAG_CHOICES = "'1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'"


class Settings:
    """What the environment (and ``activate()`` arguments) asked for.

    A plain slotted class rather than a dataclass: this module is on the
    ``import mlx_portable`` path, and ``dataclasses`` costs milliseconds.
    """

    __slots__ = ("backend_forced", "backend_order", "disabled", "enabled", "strict")

    def __init__(
        self,
        enabled: bool = True,
        backend_order: tuple[str, ...] | None = None,
        backend_forced: bool = False,
        disabled: frozenset[str] = frozenset(),
        strict: bool = False,
    ) -> None:
        self.enabled = enabled
        self.backend_order = backend_names() if backend_order is None else backend_order
        self.backend_forced = backend_forced
        self.disabled = disabled
        self.strict = strict

    def _key(self) -> tuple[object, ...]:
        return (self.enabled, self.backend_order, self.backend_forced, self.disabled, self.strict)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Settings(enabled={self.enabled}, backend_order={self.backend_order}, "
            f"backend_forced={self.backend_forced}, disabled={sorted(self.disabled)}, strict={self.strict})"
        )


def read_flag(name: str, default: bool = False, env: Mapping[str, str] | None = None) -> bool:
    """The on/off variable ``name`` (``1/0``, ``true/false``, ``yes/no``, ``on/off``; empty: ``default``).

    Anything else is a ``ValueError`` naming the variable: ``ture`` or ``2``
    must not quietly mean "off".
    """
    return _flag(os.environ if env is None else env, name, default)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default  # empty means unset
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={_shown(raw)} is not a valid value; use one of {_FLAG_CHOICES}.")


def _shown(value: str) -> str:
    from .validation import shown

    return shown(value)


def _split(raw: str) -> list[str]:
    return [part.strip().lower() for part in raw.split(",") if part.strip()]


def parse_backend_order(raw: str, *, variable: str = ENV_BACKEND) -> tuple[str, ...]:
    """Parse ``"cuda,cpu"`` into an ordered tuple of backend names."""
    names = _split(raw)
    if not names:
        raise ValueError(
            f"{variable}={_shown(raw)} names no backend; use one of "
            f"{', '.join(backend_names())} or a comma list such as 'cuda,cpu', "
            f"or unset {variable} to choose automatically."
        )
    # Shown as written (a token's case is part of it; redaction recognises it so).
    unknown = [p.strip() for p in raw.split(",") if p.strip() and p.strip().lower() not in backend_names()]
    if unknown:
        raise ValueError(
            f"{variable}={_shown(raw)} names unknown backend(s) {', '.join(map(_shown, unknown[:5]))}; "
            f"valid names are {', '.join(backend_names())} (one, or a comma list giving the order)."
        )
    seen: dict[str, None] = {}
    for n in names:
        seen.setdefault(n, None)
    return tuple(seen)


def validate_disabled(disabled: Iterable[str], known: Iterable[str], *, source: str = ENV_DISABLE) -> None:
    """Raise ``ValueError`` if ``MLX_PORTABLE_DISABLE`` (or ``source``) names an unknown patch."""
    known_set = set(known)
    unknown = sorted(set(disabled) - known_set)
    if unknown:
        raise ValueError(
            f"{source} names unknown patch(es) {', '.join(map(_shown, unknown[:5]))}; "
            f"valid names are: {', '.join(sorted(known_set))}."
        )


def read_settings(env: Mapping[str, str] | None = None, *, strict: bool | None = None) -> Settings:
    """Read :class:`Settings` from ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env
    enabled = _flag(env, ENV_KILL_SWITCH, True)
    order, forced = _backend_order(env)
    disabled = frozenset(_split(env.get(ENV_DISABLE, "")))
    strict_value = _flag(env, ENV_STRICT, False) if strict is None else bool(strict)
    for name in OTHER_FLAGS:
        _flag(env, name, False)
    return Settings(
        enabled=enabled,
        backend_order=order,
        backend_forced=forced,
        disabled=disabled,
        strict=strict_value,
    )


def settings_for_import(env: Mapping[str, str] | None = None) -> Settings:
    """The settings ``import mlx_portable`` uses: bad values fall back to defaults, with one warning.

    ``activate()`` reads them with :func:`read_settings`, which raises, so
    the fix is still demanded where the user asked for something.
    """
    env = os.environ if env is None else env
    problems: list[str] = []

    def attempt(read: Callable[[], T], default: T) -> T:
        try:
            return read()
        except ValueError as exc:
            problems.append(str(exc).rstrip("."))
            return default

    defaults = Settings()
    enabled = attempt(lambda: _flag(env, ENV_KILL_SWITCH, True), True)
    strict = attempt(lambda: _flag(env, ENV_STRICT, False), False)
    order, forced = attempt(lambda: _backend_order(env), (defaults.backend_order, False))
    for name in OTHER_FLAGS:
        attempt(lambda name=name: _flag(env, name, False), False)  # type: ignore[misc]
    disabled = frozenset(_split(env.get(ENV_DISABLE, "")))
    unknown = _not_builtin(disabled)
    sentences = []
    if problems:
        sentences.append(
            "; ".join(problems)
            + ". The import-time patches were applied with the defaults for "
            + ("this" if len(problems) == 1 else "these")
            + "; activate() raises until the value is fixed or unset."
        )
    if unknown:
        sentences.append(
            f"{ENV_DISABLE} names {', '.join(map(_shown, unknown[:5]))}, which no built-in patch is called; "
            "the other names are left alone, and activate() raises unless a plugin registers "
            + ("it." if len(unknown) == 1 else "them.")
        )
    sentences.extend(misspelt_variables(env))
    if sentences:
        _warn("mlx-portable: " + " ".join(sentences))
    return Settings(
        enabled=enabled, backend_order=order, backend_forced=forced, disabled=disabled, strict=strict
    )


def _backend_order(env: Mapping[str, str]) -> tuple[tuple[str, ...], bool]:
    raw = env.get(ENV_BACKEND)
    if raw is None or raw == "":
        return backend_names(), False
    return parse_backend_order(raw), True


def _not_builtin(disabled: frozenset[str]) -> list[str]:
    """The names in ``disabled`` that no built-in patch has (plugins' names are known only at activate()).

    The names come from the generated index (no shim module is imported).
    """
    if not disabled:
        return []
    from .registry.import_index import builtin_names

    return sorted(disabled - builtin_names())


def _key(name: str) -> str:
    """``name`` upper-cased, with everything but letters and digits dropped: the form typos share."""
    return "".join(c for c in name.upper() if c.isalnum())


def _looks_portable(name: str) -> bool:
    """Whether ``name`` may be meant as ours: ``MLX`` then at least 7 of the next 8 letters in PORTABLE.

    A letter count over each set variable's name (microseconds), so the
    import pays nothing for ``PATH``, ``MLX_METAL_FAST_SYNCH`` or
    ``MLX_PTX_CACHE_DIR``; ``difflib`` is imported only when such a name is set.
    """
    if "MLX" not in name[:5].upper():  # most names: one slice and one search, in C
        return False
    key = _key(name)
    return key.startswith("MLX") and sum(c in "PORTABLE" for c in key[3:11]) >= 7


def near_miss(name: str, known: Iterable[str] | None = None) -> str | None:
    """The known variable ``name`` probably misspells, or ``None``.

    Matches, in order: the same letters in another case or spacing
    (``mlx_portable_backend``, ``MLXPORTABLE_BACKEND``, a trailing space,
    ``MLX_PORTABLE_AUTO_ACTIVATE``); a known name plus or minus a tail
    (``MLX_PORTABLE_DISABLE_PATCHES``, ``MLX_PORTABLE_THREAD_FREE_STREAM``);
    a close spelling (``MLX_PORTBLE_BACKEND``).  A new name of one's own
    (``MLX_PORTABLE_MY_OWN_THING``) matches nothing.
    """
    names = KNOWN_VARIABLES if known is None else tuple(known)
    if name in names or not _looks_portable(name):
        return None
    key = _key(name)
    keys = {_key(k): k for k in names}
    if key in keys:
        return keys[key]
    kill = _key(ENV_KILL_SWITCH)  # every name starts with it: not a tail match
    tails = [
        k for k in keys if k != kill and (key.startswith(k) or k.startswith(key)) and len(key) > len(kill)
    ]
    if tails:
        return keys[min(tails, key=lambda k: (abs(len(k) - len(key)), -len(k)))]  # the nearest length
    import difflib  # only for a name that looks like ours yet is none of them

    close = difflib.get_close_matches(key, list(keys), n=1, cutoff=0.85)
    return keys[close[0]] if close else None


def misspelt_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per set name that probably misspells a known variable (see :func:`near_miss`)."""
    env = os.environ if env is None else env
    found: list[str] = []
    # The same first test as _looks_portable, inline: this loop runs over the environment at import.
    for name in sorted(n for n in env if "MLX" in n[:5].upper() and n not in KNOWN_VARIABLES):
        guess = near_miss(name)
        if guess:
            found.append(f"{_shown(name)} is not a variable mlx-portable reads; did you mean {guess}?")
    return found


def _warn(message: str) -> None:
    from ._user_warning import warn_user  # at the user's import line, not inside mlx-portable

    warn_user(message)


def __getattr__(name: str) -> object:
    if name == "BACKEND_NAMES":  # derived from the backend table, which a plugin or test may extend
        return backend_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def with_arguments(backend: object, disable: object, settings: Settings) -> Settings:
    """``settings`` with ``activate(backend=..., disable=...)`` in place of the environment's.

    The arguments are checked as the variables are (the same parser, the same
    messages naming the argument); an argument wins over its variable, as
    ``strict=`` wins over ``MLX_PORTABLE_STRICT``.
    """
    order, forced, disabled = settings.backend_order, settings.backend_forced, settings.disabled
    if backend is not None:
        if not isinstance(backend, str) and isinstance(backend, (list, tuple)):
            backend = ",".join(b if isinstance(b, str) else "\x00" for b in backend) or " "
        if not isinstance(backend, str):
            raise TypeError(
                f"activate(backend=...) takes a backend name such as 'cpu', a comma list such as "
                f"'cuda,cpu' or a list of names, not {type(backend).__name__}"
            )
        order, forced = parse_backend_order(backend, variable="activate(backend=...)"), True
    if disable is not None:
        if isinstance(disable, str):
            disabled = frozenset(part.strip().lower() for part in disable.split(",") if part.strip())
        elif isinstance(disable, (list, tuple, set, frozenset)) and all(isinstance(n, str) for n in disable):
            disabled = frozenset(n.strip().lower() for n in disable if n.strip())
        else:
            raise TypeError(
                "activate(disable=...) takes patch names: a comma list such as 'wired_limit,sdpa_sinks' "
                f"or a list of names, not {type(disable).__name__}"
            )
    return Settings(
        enabled=settings.enabled,
        backend_order=order,
        backend_forced=forced,
        disabled=disabled,
        strict=settings.strict,
    )
