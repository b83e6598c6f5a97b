"""Argument checks shared by the public API, so every bad value reads the same.

A wrong type is a :class:`TypeError`, a wrong value a :class:`ValueError`;
both name the argument, show the value (its ``repr`` cut to 80 characters,
so a 100 KB string does not bury the message) and say what is accepted.

A hostile value (its ``__repr__``, ``__str__``, ``__eq__``, ``__hash__``,
``__iter__`` or ``__fspath__`` raises) gets the same :class:`TypeError`
naming the argument, never its own exception from deep inside: the checks
call only ``type()``/``isinstance`` on it before deciding, show it through
:func:`shown` (which survives a raising ``repr``), and copy a ``str`` or
``int`` subclass to the plain type, so that nothing it overrides runs later.
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
    "require_env",
    "require_int",
    "require_list",
    "require_memory_limit",
    "require_mx",
    "require_names",
    "require_optional_bool",
    "require_path",
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

    A ``repr`` that raises (or returns a non-string) is replaced by the type's
    name: the message is about the argument, not about its ``__repr__``.  A
    string is redacted first (:func:`mlx_portable.redaction.redact`): error
    messages echo environment values, and a token pasted into the wrong
    variable must not end up in a log.
    """
    if isinstance(value, str):
        from .redaction import redact

        plain = str.__str__(value)  # a str subclass's own __repr__ is never called
        # Only what is shown is redacted (a megabyte value must not cost seconds); the
        # length noted is the whole value's.
        whole = len(repr(plain))
        text = repr(redact(plain[: 4 * limit]))
        if whole > limit or len(text) > limit:
            return f"{text[:limit]}... ({whole} characters)"
        return text
    try:
        text = repr(value)
        if type(text) is not str:
            raise TypeError("__repr__ returned a non-string")
    except Exception:
        return f"<a {_type_name(value)} object whose repr() fails>"
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text)} characters)"
    return text


def _type_name(value: object) -> str:
    return type(value).__name__


def _plain_str(value: str) -> str:
    """``value`` as an exact ``str`` (a subclass's ``__eq__``/``__hash__``/``__str__`` never run later)."""
    return value if type(value) is str else str.__str__(value)


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


def require_str(value: object, what: str, *, empty: bool = True, nul: bool = True) -> str:
    """``value`` as a plain ``str``; ``empty=False`` also refuses a blank one, ``nul=False`` a NUL."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {_type_name(value)} {shown(value)}")
    text = _plain_str(value)
    if not empty and not text.strip():
        raise ValueError(f"{what} must not be empty or blank, got {shown(text)}")
    if not nul and "\0" in text:
        raise ValueError(f"{what} must not contain a NUL character, got {shown(text)}")
    return text


def require_int(value: object, what: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An ``int`` (not ``bool``, not a float) within ``[minimum, maximum]``, as a plain ``int``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an integer, not {_type_name(value)} {shown(value)}")
    number = int.__int__(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        low = "" if minimum is None else f" from {minimum}"
        high = "" if maximum is None else f" to {maximum}"
        raise ValueError(f"{what} must be an integer{low}{high}, got {shown(number)}")
    return number


def require_mx(value: object, what: str) -> None:
    """``None`` or an ``mlx.core`` (real or a test's stand-in): it has ``__version__`` and ``default_device``.

    Anything else would fail later with an ``AttributeError`` from deep inside.
    """
    if value is None:
        return
    try:
        looks_right = isinstance(getattr(value, "__version__", None), str) and callable(
            getattr(value, "default_device", None)
        )
    except Exception:
        looks_right = False
    if not looks_right:
        raise TypeError(
            f"{what} must be the mlx.core module (or None for it), not {_type_name(value)} {shown(value)}"
        )


def require_path(value: object, what: str) -> str:
    """A file path (``str`` or ``os.PathLike``) as a plain, non-empty, NUL-free ``str``."""
    import os

    if isinstance(value, (bytes, bool)) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{what} must be a path (str or os.PathLike), not {_type_name(value)} {shown(value)}")
    try:
        path = os.fspath(value)
    except Exception as exc:
        raise TypeError(
            f"{what}: its __fspath__() raised {type(exc).__name__}; pass a str or pathlib.Path"
        ) from None
    if not isinstance(path, str):
        raise TypeError(f"{what}: __fspath__() must give a str, not {_type_name(path)}")
    return require_str(path, what, empty=False, nul=False)


def require_list(value: object, what: str, *, item: str = "items") -> list[object]:
    """The items of an ordered collection (list, tuple, generator) as a list.

    A string (its letters), a mapping (its keys) and a set (no order) are
    refused, as is a collection whose iteration raises.
    """
    from collections.abc import Iterable, Mapping, Set

    if isinstance(value, (str, bytes, Mapping, Set)) or not isinstance(value, Iterable):
        raise TypeError(f"{what} must be a list of {item}, not {_type_name(value)} {shown(value)}")
    try:
        return list(value)
    except Exception as exc:
        raise TypeError(
            f"{what}: iterating the {_type_name(value)} raised {type(exc).__name__}; pass a list of {item}"
        ) from None


def require_env(value: object, what: str) -> dict[str, str]:
    """An environment: a mapping of variable names to values, both plain strings, as a new dict.

    A name must be non-empty and hold neither ``=`` nor NUL, a value no NUL:
    ``os.execve`` refuses those (``ValueError: illegal environment variable
    name``) only when the child starts, far from the mistake.
    """
    from collections.abc import Mapping

    if not isinstance(value, Mapping):
        raise TypeError(f"{what} takes a mapping of str to str, not {_type_name(value)} {shown(value)}")
    try:
        items = list(value.items())
    except Exception as exc:
        raise TypeError(f"{what}: reading the {_type_name(value)} raised {type(exc).__name__}") from None
    for key, val in items:  # every type first: a wrong type is the TypeError whatever comes before it
        if not isinstance(key, str) or not isinstance(val, str):
            raise TypeError(
                f"{what}: every name and value must be a string; {shown(key)}: {shown(val)} is not"
            )
    env: dict[str, str] = {}
    for key, val in items:
        name = _plain_str(key)
        if not name or "=" in name or "\0" in name:
            raise ValueError(f"{what}: {shown(name)} is not a variable name (empty, or holds '=' or NUL)")
        text = _plain_str(val)
        if "\0" in text:
            raise ValueError(f"{what}: the value of {name} holds a NUL character, which no environment can")
        env[name] = text
    return env


def require_callable(value: object, what: str) -> None:
    if not callable(value):
        raise TypeError(f"{what} must be callable (a function taking the PatchContext), not {shown(value)}")


def require_names(
    value: object, what: str, allowed: Iterable[str] | None = None, *, empty: bool = True
) -> frozenset[str]:
    """A collection of strings (never a single string, which would become its letters).

    ``empty=False`` refuses an empty collection (``backends=set()`` would
    mean "never", which nobody means: ``None`` means "every").
    """
    from collections.abc import Iterable as IterableABC
    from collections.abc import Mapping

    if isinstance(value, Mapping):  # its keys would be taken, its values dropped without a word
        raise TypeError(f"{what} must be a list or set of names, not a mapping {shown(value)}")
    if isinstance(value, (str, bytes)):
        hint = f"; write [{shown(value, 40)}]" if isinstance(value, str) and len(value) < 40 else ""
        raise TypeError(f"{what} must be a collection of names, not a single string {shown(value)}{hint}")
    if not isinstance(value, IterableABC):
        raise TypeError(f"{what} must be a collection of names, not {_type_name(value)} {shown(value)}")
    try:
        items = list(value)
    except Exception as exc:
        raise TypeError(f"{what}: iterating the {_type_name(value)} raised {type(exc).__name__}") from None
    for name in items:
        if not isinstance(name, str):
            raise TypeError(f"{what} must hold strings, not {_type_name(name)} {shown(name)}")
    names = frozenset(_plain_str(name) for name in items)
    if not empty and not names:
        raise ValueError(f"{what} must name at least one; give None to mean all of them")
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


def check_patch_arguments(name: object, fields: dict[str, object]) -> dict[str, object]:
    """Check :class:`~mlx_portable.Patch`'s arguments; the checked ones, strings made plain ``str``.

    ``mlx_versions`` is only checked to be a string here (parsing it needs
    ``packaging``, too slow for the import path); ``register()`` parses it.
    """
    if not isinstance(name, str):
        raise TypeError(f"Patch name must be a string, not {_type_name(name)} {shown(name)}")
    name = _plain_str(name)
    if not name or len(name) > 64 or not name.isascii():
        raise ValueError(f"patch name {shown(name)} must be lower_snake_case, 1 to 64 characters")
    what = f"patch {name!r}"
    checked: dict[str, object] = {"name": name}
    for key in ("summary", "why", "mlx_versions", "upstream"):
        checked[key] = require_str(fields[key], f"{what}: {key}")
    require_callable(fields["apply"], f"{what}: apply")
    if fields["check"] is not None:
        require_callable(fields["check"], f"{what}: check")
    when = checked["when"] = require_str(fields["when"], f"{what}: when", empty=False)
    module = when.partition(":")[2]
    if module and not all(part.isidentifier() for part in module.split(".")):
        raise ValueError(
            f"{what}: when={shown(when)}: {shown(module)} is not an absolute module name such as "
            "'mlx_lm.generate' (no spaces, no leading dot)"
        )
    for key in ("backends", "platforms"):
        checked[key] = (
            None if fields[key] is None else require_names(fields[key], f"{what}: {key}", empty=False)
        )
    platforms = checked["platforms"]
    if isinstance(platforms, frozenset):
        for platform in sorted(platforms):
            if (
                not platform
                or not platform.isascii()
                or not platform.isalnum()
                or platform != platform.lower()
            ):
                raise ValueError(
                    f"{what}: platforms holds {shown(platform)}, which no sys.platform is; use values such "
                    "as 'linux', 'darwin', 'win32'"
                )
    return checked
