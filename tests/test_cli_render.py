"""Rendering helpers of the command line: colour rules, alignment, progress."""

from __future__ import annotations

import io

from mlx_portable.cli.render import Progress, Style, format_bytes, format_mapping, format_table, wants_colour


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_needs_a_terminal_and_no_no_color() -> None:
    assert wants_colour(_Terminal(), {}) is True
    assert wants_colour(io.StringIO(), {}) is False
    assert wants_colour(_Terminal(), {"NO_COLOR": "1"}) is False
    assert wants_colour(_Terminal(), {"NO_COLOR": ""}) is True  # no-color.org: only a non-empty value


def test_columns_align_on_visible_width_with_colour() -> None:
    green = Style(True)("yes", "green")
    assert green == "\x1b[32myes\x1b[0m"
    lines = format_table([["metal", "no", "needs macOS"], ["cpu", green, "always"]])
    assert lines[0] == "  metal  no   needs macOS"
    assert lines[1] == f"  cpu    {green}  always"
    assert Style(False)("yes", "green") == "yes"


def test_mapping_of_any_shape_is_aligned_and_nested() -> None:
    lines = format_mapping(
        {
            "cuda_major": 13,
            "library_folders": ["/a/lib", "/b/lib"],
            "headers": {"mlx_finds": None, "usable": True},
            "missing_libraries": [{"library": "libcudnn.so.9", "package": "nvidia-cudnn-cu13"}],
            "preloaded": [],
        }
    )
    assert lines == [
        "  cuda major       13",
        "  library folders  /a/lib",
        "                   /b/lib",
        "  headers:",
        "    mlx finds  -",
        "    usable     yes",
        "  missing libraries:",
        "    library=libcudnn.so.9, package=nvidia-cudnn-cu13",
        "  preloaded        -",
    ]


def test_bytes_are_shown_in_binary_units() -> None:
    assert format_bytes(None) == "-"
    assert format_bytes(512) == "512 B"
    assert format_bytes(25_276_502_016) == "23.5 GiB"


def test_progress_rewrites_one_line_on_a_terminal_and_prints_lines_elsewhere() -> None:
    tty = _Terminal()
    live = Progress("check", stream=tty)
    live.step("building")
    live.step("comparing")
    live.done()
    assert tty.getvalue() == "\r\x1b[Kcheck: building\r\x1b[Kcheck: comparing\r\x1b[K"
    log = io.StringIO()
    plain = Progress("check", stream=log)
    plain.step("building")
    plain.done()
    assert log.getvalue() == "check: building\n"
    quiet = io.StringIO()
    Progress("check", stream=quiet, quiet=True).step("building")
    assert quiet.getvalue() == ""
