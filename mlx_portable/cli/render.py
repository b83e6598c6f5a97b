"""Text rendering shared by the subcommands: colour, aligned columns, progress.

Colour is used only when the stream is a terminal and ``NO_COLOR`` is unset
or empty (https://no-color.org); everything else gets plain text, so logs
and pipes never see escape codes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

__all__ = ["Progress", "Style", "format_bytes", "format_mapping", "format_table", "wants_colour"]

_CODES = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "cyan": "36",
}


def wants_colour(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set to a non-empty value."""
    env = os.environ if env is None else env
    if env.get("NO_COLOR", ""):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


class Style:
    """Wraps text in ANSI colours when enabled, else returns it unchanged."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        return cls(wants_colour(stream))

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles or not text:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"


def _visible_len(text: str) -> int:
    """Length without ANSI escape sequences (so coloured cells align)."""
    length, i = 0, 0
    while i < len(text):
        if text[i] == "\x1b":
            end = text.find("m", i)
            i = len(text) if end < 0 else end + 1
            continue
        length += 1
        i += 1
    return length


def format_table(rows: Sequence[Sequence[str]], *, indent: int = 2, gap: int = 2) -> list[str]:
    """Rows of cells as lines with aligned columns; the last column is not padded."""
    if not rows:
        return []
    ncols = max(len(r) for r in rows)
    widths = [0] * ncols
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], _visible_len(cell))
    lines = []
    for row in rows:
        parts = []
        for i, cell in enumerate(row):
            pad = "" if i == len(row) - 1 else " " * (widths[i] - _visible_len(cell) + gap)
            parts.append(cell + pad)
        lines.append((" " * indent + "".join(parts)).rstrip())
    return lines


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def format_mapping(data: Mapping[str, Any], *, indent: int = 2) -> list[str]:
    """Any JSON-like mapping as aligned ``key  value`` lines, nested blocks indented.

    Used for sections whose exact keys belong to other modules (the CUDA
    status, the report's details), so that whatever they report is shown.
    Scalar rows of one level share one column width, around nested blocks.
    """
    pad = " " * indent
    labels = {str(k): str(k).replace("_", " ") for k in data}
    width = max(
        (len(labels[str(k)]) for k, v in data.items() if not _is_block(v)),
        default=0,
    )
    lines: list[str] = []
    for key, value in data.items():
        label = labels[str(key)]
        if not _is_block(value):
            cells = _cells(value)
            lines.append(f"{pad}{label:<{width}}  {cells[0]}".rstrip())
            lines.extend(f"{pad}{'':<{width}}  {cell}".rstrip() for cell in cells[1:])
        elif isinstance(value, Mapping):
            lines.append(f"{pad}{label}:")
            lines.extend(format_mapping(value, indent=indent + 2))
        else:
            lines.append(f"{pad}{label}:")
            for item in value:
                if isinstance(item, Mapping):
                    lines.append(pad + "  " + ", ".join(f"{k}={_scalar(v)}" for k, v in item.items()))
                else:
                    lines.append(pad + "  " + _scalar(item))
    return lines


def _is_block(value: Any) -> bool:
    """A non-empty mapping, or a list holding mappings or lists: rendered below its key."""
    if isinstance(value, Mapping):
        return bool(value)
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, (Mapping, list, tuple)) for v in value)
    return False


def _cells(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [_scalar(v) for v in value] or ["-"]
    if isinstance(value, Mapping):
        return ["-"]
    return [_scalar(value)]


def format_bytes(n: int | None) -> str:
    """``17179869184`` -> ``"16.0 GiB"``; ``None`` -> ``"-"``."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


class Progress:
    """Progress on stderr: one rewritten line on a terminal, plain lines elsewhere.

    ``quiet`` silences it (the final report says everything anyway).
    """

    def __init__(self, prefix: str, *, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.prefix = prefix
        self.stream = sys.stderr if stream is None else stream
        self.quiet = quiet
        self.live = _isatty(self.stream)
        self._shown = False

    def step(self, message: str) -> None:
        if self.quiet:
            return
        if self.live:
            self.stream.write(f"\r\x1b[K{self.prefix}: {message}")
            self._shown = True
        else:
            self.stream.write(f"{self.prefix}: {message}\n")
        self.stream.flush()

    def done(self) -> None:
        """Clear the live line (plain lines stay)."""
        if self.live and self._shown and not self.quiet:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        self._shown = False


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
