"""Settings read from ``MLX_PORTABLE_*`` environment variables.

Every bad value is a :class:`ValueError` that names the variable, the value
and the valid choices, so a typo in a job script fails loudly at
``activate()`` instead of silently doing something else.
"""

from __future__ import annotations

import os

from .backend_table import backend_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "BACKEND_NAMES",
    "ENV_BACKEND",
    "ENV_DISABLE",
    "ENV_KILL_SWITCH",
    "ENV_STRICT",
    "Settings",
    "parse_backend_order",
    "read_settings",
    "validate_disabled",
]

#: Backend names in their default priority order (from the backend table).
BACKEND_NAMES: tuple[str, ...]

ENV_BACKEND = "MLX_PORTABLE_BACKEND"
ENV_DISABLE = "MLX_PORTABLE_DISABLE"
ENV_STRICT = "MLX_PORTABLE_STRICT"
ENV_KILL_SWITCH = "MLX_PORTABLE"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


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
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{name}={raw!r} is not a valid value; use one of "
        f"{', '.join(repr(v) for v in ('1', '0', 'true', 'false'))}."
    )


def _split(raw: str) -> list[str]:
    return [part.strip().lower() for part in raw.split(",") if part.strip()]


def parse_backend_order(raw: str, *, variable: str = ENV_BACKEND) -> tuple[str, ...]:
    """Parse ``"cuda,cpu"`` into an ordered tuple of backend names."""
    names = _split(raw)
    if not names:
        raise ValueError(
            f"{variable}={raw!r} names no backend; use one of "
            f"{', '.join(backend_names())} or a comma list such as 'cuda,cpu', "
            f"or unset {variable} to choose automatically."
        )
    unknown = [n for n in names if n not in backend_names()]
    if unknown:
        raise ValueError(
            f"{variable}={raw!r} names unknown backend(s) {', '.join(map(repr, unknown))}; "
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
            f"{ENV_DISABLE} names unknown patch(es) {', '.join(map(repr, unknown))}; "
            f"valid names are: {', '.join(sorted(known_set))}."
        )


def read_settings(env: Mapping[str, str] | None = None, *, strict: bool | None = None) -> Settings:
    """Read :class:`Settings` from ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env
    enabled = _flag(env, ENV_KILL_SWITCH, True)
    raw_backend = env.get(ENV_BACKEND)
    if raw_backend is None or not raw_backend.strip():
        if raw_backend is not None and raw_backend != "":
            parse_backend_order(raw_backend)  # raises: only blanks
        order, forced = backend_names(), False
    else:
        order, forced = parse_backend_order(raw_backend), True
    disabled = frozenset(_split(env.get(ENV_DISABLE, "")))
    strict_value = _flag(env, ENV_STRICT, False) if strict is None else bool(strict)
    return Settings(
        enabled=enabled,
        backend_order=order,
        backend_forced=forced,
        disabled=disabled,
        strict=strict_value,
    )


def __getattr__(name: str) -> object:
    if name == "BACKEND_NAMES":  # derived from the backend table, which a plugin or test may extend
        return backend_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
