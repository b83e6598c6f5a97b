"""The command line's argparse classes: URLs kept whole in help, usage errors as JSON, failed writes seen."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _typeshed import SupportsWrite

__all__ = ["HelpFormatter", "Parser", "SubcommandParser", "TopParser"]


class HelpFormatter(argparse.HelpFormatter):
    """argparse's layout, but a URL, path or command is never split (at a hyphen or anywhere).

    The stock formatter wraps with ``textwrap``'s defaults, which break
    ``https://mlx-portable.github.io/...`` after ``mlx-``: the link can no
    longer be copied.  Line breaks written into a description or epilog
    (``Documentation: ...`` / ``Issues: ...``) are kept.
    """

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        text = " ".join(text.split())
        return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False) or [""]

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        lines = []
        for paragraph in text.splitlines():
            lines += textwrap.wrap(
                " ".join(paragraph.split()),
                width,
                initial_indent=indent,
                subsequent_indent=indent,
                break_on_hyphens=False,
                break_long_words=False,
            ) or [""]
        return "\n".join(lines)


class Parser(argparse.ArgumentParser):
    """argparse that lets a failed write of ``--help``/``--version`` be seen (it swallows ``OSError``)."""

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        if message:
            stream = file or sys.stderr
            if stream is not None:
                stream.write(message)


class SubcommandParser(Parser):
    """A subcommand's parser: with ``--json`` among its arguments, a usage error is JSON on stdout too.

    ``check --json`` promises one JSON object on stdout whatever happens; a
    script reading it must not get an empty stdout because ``--tokens 5000``
    was refused before the check started.
    """

    json_error: Callable[[str], str] | None = None  #: message -> the JSON document, if supported
    _json_requested = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._json_requested = args is not None and "--json" in list(args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        if self._json_requested and self.json_error is not None:
            sys.stdout.write(self.json_error(message))
            sys.stdout.flush()
        super().error(message)


class TopParser(Parser):
    """The top parser: "unrecognized arguments" of a subcommand with ``--json`` is JSON there too."""

    _args: tuple[str, ...] = ()
    subcommands: dict[str, SubcommandParser] | None = None  #: name -> parser

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._args = tuple(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        command = self._args[0] if self._args else ""
        sub = (self.subcommands or {}).get(command)
        if isinstance(sub, SubcommandParser) and sub.json_error is not None and "--json" in self._args:
            sub._json_requested = True
            sub.error(message)  # the JSON document, then the subcommand's usage line
        super().error(message)
