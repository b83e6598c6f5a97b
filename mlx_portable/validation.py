"""Argument checks shared by the public API, so every bad value reads the same.

A wrong type is a :class:`TypeError`, a wrong value a :class:`ValueError`;
both name the argument, show the value (its ``repr`` cut to 80 characters,
so a 100 KB string does not bury the message) and say what is accepted.
Checking at the door matters because the values travel far: a timeout of
``1e10`` used to crash the watchdog thread (``OverflowError: timeout value
is too large``) long after ``init()`` returned, and ``Patch(platforms=
"linux")`` became the set of its letters.

On the ``import mlx_portable`` path (the registry uses it), so it imports
nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "MAX_TIMEOUT",
    "require_bool",
    "require_callable",
    "require_memory_limit",
    "require_names",
    "require_optional_bool",
    "require_str",
    "require_timeout",
    "shown",
]

#: The longest timeout accepted, in seconds (30 days).  ``threading``'s own
#: ceiling (``threading.TIMEOUT_MAX``, about 292 years on Linux, far less on
#: some platforms) is where ``Condition.wait`` starts raising ``OverflowError``.
MAX_TIMEOUT = 30 * 24 * 3600.0

#: Largest byte count accepted as a memory limit (mlx takes a ``size_t``).
MAX_BYTES = 2**63 - 1


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters with the full length noted.

    A string is redacted first (:func:`mlx_portable.redaction.redact`): error
    messages echo environment values, and a token pasted into the wrong
    variable must not end up in a log.
    """
    if isinstance(value, str):
        from .redaction import redact

        # Only what is shown is redacted (a megabyte value must not cost seconds); the
        # length noted is the whole value's.
        whole = len(repr(value))
        text = repr(redact(value[: 4 * limit]))
        if whole > limit or len(text) > limit:
            return f"{text[:limit]}... ({whole} characters)"
        return text
    text = repr(value)
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text)} characters)"
    return text


def _type_name(value: object) -> str:
    return type(value).__name__


def require_bool(value: object, what: str) -> bool:
    """``value`` itself if it is ``True``/``False``; else :class:`TypeError`.

    ``"no"`` is truthy, so accepting any object would turn ``strict="no"``
    into strict mode.
    """
    if value is True or value is False:
        return value
    raise TypeError(f"{what} must be True or False, not {_type_name(value)} {shown(value)}")


def require_optional_bool(value: object, what: str) -> bool | None:
    """Like :func:`require_bool`, with ``None`` (use the default) allowed too."""
    if value is None:
        return None
    if value is True or value is False:
        return value
    raise TypeError(f"{what} must be True, False or None, not {_type_name(value)} {shown(value)}")


def require_str(value: object, what: str, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {_type_name(value)} {shown(value)}")
    if not empty and not value:
        raise ValueError(f"{what} must not be empty")
    return value


def require_callable(value: object, what: str) -> None:
    if not callable(value):
        raise TypeError(f"{what} must be callable (a function taking the PatchContext), not {shown(value)}")


def require_names(value: object, what: str, allowed: Iterable[str] | None = None) -> frozenset[str]:
    """A collection of strings (never a single string, which would become its letters)."""
    if isinstance(value, (str, bytes)):
        hint = f"; write [{value!r}]" if isinstance(value, str) and len(value) < 40 else ""
        raise TypeError(f"{what} must be a collection of names, not a single string {shown(value)}{hint}")
    try:
        names: frozenset[str] = frozenset(value)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(
            f"{what} must be a collection of names, not {_type_name(value)} {shown(value)}"
        ) from None
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{what} must hold strings, not {_type_name(name)} {shown(name)}")
    if allowed is not None:
        allowed_set = frozenset(allowed)
        unknown = sorted(names - allowed_set)
        if unknown:
            raise ValueError(
                f"{what}: unknown name(s) {', '.join(shown(u, 40) for u in unknown[:5])}; "
                f"use {', '.join(sorted(allowed_set))}"
            )
    return names


def require_timeout(value: object, what: str, *, zero_waits_forever: bool = True) -> float | None:
    """Seconds as a ``float``, or ``None`` to wait forever (also ``0`` when ``zero_waits_forever``).

    Not ``bool`` (``True`` would be one second), not a string, not NaN, not
    infinite (say ``None``), not negative, at most :data:`MAX_TIMEOUT`.
    """
    forever = "None or 0" if zero_waits_forever else "None"
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{what} must be a number of seconds (int or float) or {forever} to wait forever, "
            f"not {_type_name(value)} {shown(value)}"
        )
    seconds = float(value)
    if seconds != seconds or seconds < 0 or seconds > MAX_TIMEOUT:
        raise ValueError(
            f"{what}={shown(value)} is not a usable timeout: give seconds between 0 and "
            f"{MAX_TIMEOUT:.0f} (30 days), or {forever} to wait forever"
        )
    if seconds == 0:
        if zero_waits_forever:
            return None
        raise ValueError(f"{what}=0 is not a usable timeout: give a positive number of seconds, or None")
    return seconds


def require_memory_limit(value: object) -> int | float | None:
    """A memory limit: bytes (``int``, 1 to 2**63-1), a fraction (``float`` in (0, 1]) or ``None``.

    The same on every backend, so a script that passes ``"1GB"`` fails on the
    CPU of a laptop as it would on the GPU of the cluster.
    """
    if value is None:
        return None
    accepted = "bytes as an int (e.g. 8 * 2**30), a fraction of the device as a float in (0, 1], or None"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"set_memory_limit() takes {accepted}; not {_type_name(value)} {shown(value)}")
    if isinstance(value, float):
        if not 0.0 < value <= 1.0:
            raise ValueError(
                f"set_memory_limit({shown(value)}): a fraction must be in (0, 1]; pass an int for bytes"
            )
        return value
    if not 0 < value <= MAX_BYTES:
        raise ValueError(f"set_memory_limit({shown(value)}): bytes must be between 1 and 2**63-1")
    return value


def check_patch_arguments(name: object, fields: dict[str, object]) -> None:
    """Check the types of :class:`~mlx_portable.Patch`'s arguments (the patch module checks the values).

    ``mlx_versions`` is only checked to be a string here (parsing it needs
    ``packaging``, too slow for the import path); ``register()`` parses it.
    """
    if not isinstance(name, str):
        raise TypeError(f"Patch name must be a string, not {_type_name(name)} {shown(name)}")
    if not name or len(name) > 64 or not name.isascii():
        raise ValueError(f"patch name {shown(name)} must be lower_snake_case, 1 to 64 characters")
    what = f"patch {name!r}"
    for key in ("summary", "why", "mlx_versions", "upstream"):
        require_str(fields[key], f"{what}: {key}")
    require_callable(fields["apply"], f"{what}: apply")
    for key in ("check", "revert"):
        if fields[key] is not None:
            require_callable(fields[key], f"{what}: {key}")
    for key in ("on_import", "needs_mlx"):
        require_optional_bool(fields[key], f"{what}: {key}")
    for key in ("when", "when_imported"):
        if fields[key] is not None:
            require_str(fields[key], f"{what}: {key}", empty=False)
    module = fields["when_imported"]
    if isinstance(module, str) and not all(part.isidentifier() for part in module.split(".")):
        raise ValueError(
            f"{what}: when_imported={shown(module)} is not a module name such as 'mlx_lm.generate'"
        )
    for key in ("backends", "platforms"):
        if fields[key] is not None:
            require_names(fields[key], f"{what}: {key}")
