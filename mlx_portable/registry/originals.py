"""The saved originals: what every patch replaced, to restore on ``deactivate()``.

Modelled on gevent.monkey's ``_state``: an attribute is recorded with its
original the first time any patch replaces it (``setdefault``: the first
original wins), so reverting restores the very same objects, and
:func:`get_original` can hand the unpatched function to code that needs it.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["MISSING", "get_original", "remember", "restore"]

#: Stands for "there was no such attribute / variable".
MISSING: Any = object()

# (id(obj), attr) -> (obj, original).  The object itself is kept so its id
# cannot be reused while the entry exists.
_originals: dict[tuple[int, str], tuple[Any, Any]] = {}


def remember(obj: Any, attr: str, original: Any) -> None:
    """Record ``obj.attr``'s original unless an earlier patch already did."""
    _originals.setdefault((id(obj), attr), (obj, original))


def get_original(obj: Any, attr: str) -> Any:
    """The object ``obj.attr`` held before any patch replaced it.

    Raises ``AttributeError`` when a patch *added* the attribute (it had no
    original); returns the current value when no patch touched it.
    """
    if type(attr) is not str:
        from ..validation import require_str

        attr = require_str(attr, "get_original(attr=...)")
    entry = _originals.get((id(obj), attr))
    if entry is None or entry[0] is not obj:
        try:
            return getattr(obj, attr)
        except AttributeError:
            from ..validation import shown

            raise AttributeError(
                f"get_original(attr=...): {shown(obj, 60)} has no attribute {shown(attr)}"
            ) from None
    original = entry[1]
    if original is MISSING:
        raise AttributeError(f"{attr!r} was added by mlx-portable; {obj!r} has no original")
    return original


def restore(kind: str, obj: Any, attr: str, original: Any) -> None:
    """Undo one recorded change: ``kind`` is ``"attr"`` or ``"env"``."""
    if kind == "env":
        if original is MISSING:
            os.environ.pop(attr, None)
        else:
            os.environ[attr] = original
        return
    if original is MISSING:
        try:
            delattr(obj, attr)
        except AttributeError:
            pass
    else:
        setattr(obj, attr, original)
