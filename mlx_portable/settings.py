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
    "autoactivate_requested",
    "misspelt_variables",
    "parse_backend_order",
    "read_settings",
    "settings_for_import",
    "validate_disabled",
]

#: Backend names in their default priority order (from the backend table).
BACKEND_NAMES: tuple[str, ...]

ENV_BACKEND = "MLX_PORTABLE_BACKEND"
ENV_DISABLE = "MLX_PORTABLE_DISABLE"
ENV_STRICT = "MLX_PORTABLE_STRICT"
ENV_KILL_SWITCH = "MLX_PORTABLE"

ENV_AUTOACTIVATE = "MLX_PORTABLE_AUTOACTIVATE"

#: Every variable mlx-portable reads; a set name close to one of these (but
#: not one) is reported as a probable misspelling.
KNOWN_VARIABLES: tuple[str, ...] = (
    ENV_KILL_SWITCH,
    ENV_BACKEND,
    ENV_DISABLE,
    ENV_STRICT,
    ENV_AUTOACTIVATE,
    "MLX_PORTABLE_DISTRIBUTED_BACKEND",
    "MLX_PORTABLE_CLUSTER_BACKENDS",
    "MLX_PORTABLE_HOSTFILE",
    "MLX_PORTABLE_DISTRIBUTED_TIMEOUT",
)

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


def validate_disabled(disabled: Iterable[str], known: Iterable[str]) -> None:
    """Raise ``ValueError`` if ``MLX_PORTABLE_DISABLE`` names an unknown patch."""
    known_set = set(known)
    unknown = sorted(set(disabled) - known_set)
    if unknown:
        raise ValueError(
            f"{ENV_DISABLE} names unknown patch(es) {', '.join(map(_shown, unknown[:5]))}; "
            f"valid names are: {', '.join(sorted(known_set))}."
        )


def read_settings(env: Mapping[str, str] | None = None, *, strict: bool | None = None) -> Settings:
    """Read :class:`Settings` from ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env
    enabled = _flag(env, ENV_KILL_SWITCH, True)
    order, forced = _backend_order(env)
    disabled = frozenset(_split(env.get(ENV_DISABLE, "")))
    strict_value = _flag(env, ENV_STRICT, False) if strict is None else bool(strict)
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
    disabled = frozenset(_split(env.get(ENV_DISABLE, "")))
    sentences = []
    if problems:
        sentences.append(
            "; ".join(problems)
            + ". The import-time patches were applied with the defaults for "
            + ("this" if len(problems) == 1 else "these")
            + "; activate() raises until the value is fixed or unset."
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


def misspelt_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per set ``MLX_PORTABLE_*`` name that is a close misspelling of a known one."""
    env = os.environ if env is None else env
    found: list[str] = []
    unknown = [n for n in env if n.startswith("MLX_PORTABLE") and n not in KNOWN_VARIABLES]
    if unknown:
        import difflib  # only when such a name is set

        for name in sorted(unknown):
            close = difflib.get_close_matches(name, KNOWN_VARIABLES, n=1, cutoff=0.85)
            if close:
                found.append(f"{_shown(name)} is not a variable mlx-portable reads; did you mean {close[0]}?")
    return found


def autoactivate_requested(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``MLX_PORTABLE_AUTOACTIVATE`` asks for activation at start; a bad value warns on stderr.

    Read by the start-up hook, where a warning would go unseen, so the
    message is written to stderr directly; the interpreter starts regardless.
    """
    env = os.environ if env is None else env
    try:
        return _flag(env, ENV_AUTOACTIVATE, False)
    except ValueError as exc:
        import sys

        sys.stderr.write(f"mlx-portable: {exc} Starting without activating.\n")
        return False


def _warn(message: str) -> None:
    import warnings

    from .errors import PortabilityWarning

    warnings.warn(message, PortabilityWarning, stacklevel=4)


def __getattr__(name: str) -> object:
    if name == "BACKEND_NAMES":  # derived from the backend table, which a plugin or test may extend
        return backend_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
