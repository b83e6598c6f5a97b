"""Whether a name or keyword is usable on the running mlx, as a consumer would reach it.

Why: the consumer check asks this after ``mlx_portable.activate()``, so that
a shim counts as presence, and so that the answer comes from the live objects
(a patched function's own signature) rather than from a snapshot.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from .history import split_key
from .surface import parse_nb_params

__all__ = ["accepts_keyword", "present", "resolve"]

_MISSING = object()


def resolve(name: str) -> Any:
    """The object ``name`` (``mlx.core.fast.rope``) names, or raise ``LookupError``."""
    parts = name.split(".")
    obj: Any = None
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, _MISSING)
            if obj is _MISSING:
                raise LookupError(f"{name}: no attribute {attr!r}")
        return obj
    raise LookupError(f"{name}: no module {parts[0]!r}")


def accepts_keyword(obj: Any, keyword: str) -> bool | None:
    """Whether calling ``obj`` accepts ``keyword=``; ``None`` when it cannot be told.

    A wrapper's own signature is read (not the function it wraps), so a shim
    that adds a keyword counts; ``**kwargs`` cannot be told statically.
    """
    sigs = getattr(obj, "__nb_signature__", None)
    if sigs:
        return any(keyword in parse_nb_params(entry[0]) for entry in sigs)
    target = vars(obj)["__init__"] if isinstance(obj, type) and "__init__" in vars(obj) else obj
    try:
        params = inspect.signature(target, follow_wrapped=False).parameters
    except (TypeError, ValueError):
        return None
    if keyword in params and params[keyword].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.VAR_POSITIONAL,
    ):
        return True
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return False


def present(key: str) -> bool | None:
    """Whether ``key`` (``name`` or ``name(keyword)``) is usable here; ``None``: cannot be told."""
    name, keyword = split_key(key)
    try:
        obj = resolve(name)
    except LookupError:
        return False
    if keyword is None:
        return True
    return accepts_keyword(obj, keyword)
