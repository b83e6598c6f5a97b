"""``server_sigterm``: ``mlx_lm.server`` stops on SIGTERM as it does on Ctrl-C, and exits 0.

Why: ``mlx_lm.server`` handles only ``KeyboardInterrupt``: on Ctrl-C it shuts
the HTTP server down, stops its generation thread and joins it.  SIGTERM --
what ``docker stop``, systemd, Kubernetes and process supervisors send --
keeps Python's default action and kills the process on the spot (exit 143,
or -15 from ``subprocess``), in the middle of a generation and with no
clean-up at all.

What it does: while ``mlx_lm.server``'s HTTP loop (``_run_http_server``,
wrapped by ``server_sigterm_http_loop`` once ``mlx_lm.server`` is imported,
a part of ``server_sigterm`` left out with it) runs in the main thread, SIGTERM is handled as SIGINT
(``signal.default_int_handler`` raises ``KeyboardInterrupt``), so the server
takes its own shutdown path; together with ``clear_streams_at_exit`` the
process then exits 0.  Started as ``python -m mlx_lm.server`` the server's
code runs as ``__main__`` and cannot be wrapped, so there SIGTERM is handled
as SIGINT for the whole process from the moment ``mlx_lm`` is imported.  A
SIGTERM handler the application installed itself is left alone, and the
previous handler is restored when the loop returns.

Which: every mlx-lm whose ``mlx_lm.server`` has ``_run_http_server`` (0.2x
to today), every mlx and backend; POSIX only (Windows has no SIGTERM to
deliver to a Python handler in the same way).

Upstream: ``mlx_lm/server.py`` (``_run_http_server``).
"""

from __future__ import annotations

import sys

from ...registry.registry import Patch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ...registry.registry import PatchContext

__all__ = ["PATCHES", "server_sigterm", "server_sigterm_http_loop"]

_TARGET = "_run_http_server"
_SERVER = "mlx_lm.server"


def _run_as_main() -> bool:
    """Whether this interpreter was started as ``python -m mlx_lm.server``.

    Then the server's code runs as ``__main__``, not as ``mlx_lm.server``: no
    import of ``mlx_lm.server`` happens that a hook could catch.  ``mlx_lm``
    (the package) is imported first either way.
    """
    argv = getattr(sys, "orig_argv", None) or []
    return any(argv[i] == "-m" and argv[i + 1] == _SERVER for i in range(len(argv) - 1))


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    def _run_http_server(*args: Any, **kwargs: Any) -> Any:
        previous = _term_as_interrupt()
        try:
            return original(*args, **kwargs)
        finally:
            if previous is not None:
                import signal

                signal.signal(signal.SIGTERM, previous)

    return _run_http_server


def _term_as_interrupt() -> Any:
    """Handle SIGTERM as SIGINT; return the handler replaced, or ``None`` when left alone."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None  # only the main thread may set handlers
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None  # the application chose its own handler
    return signal.signal(signal.SIGTERM, signal.default_int_handler)


def _apply_http_loop(ctx: PatchContext) -> None:
    if callable(getattr(ctx.module, _TARGET, None)):
        ctx.wrap(ctx.module, _TARGET, _wrap)


def _apply(ctx: PatchContext) -> None:
    if _run_as_main():
        previous = _term_as_interrupt()
        if previous is not None:

            def restore(_ctx: PatchContext) -> None:
                import signal

                signal.signal(signal.SIGTERM, previous)

            ctx.on_revert(restore)


server_sigterm = Patch(
    name="server_sigterm",
    summary="mlx_lm.server shuts down on SIGTERM as on Ctrl-C (exit 0 instead of being killed)",
    why=(
        "mlx_lm.server only catches KeyboardInterrupt; SIGTERM from a supervisor kills it mid-generation "
        "(exit 143) without stopping its generation thread."
    ),
    apply=_apply,
    when="import:mlx_lm",
    platforms=("linux", "darwin"),
    upstream="https://github.com/ml-explore/mlx-lm/blob/main/mlx_lm/server.py",
)

server_sigterm_http_loop = Patch(
    name="server_sigterm_http_loop",
    summary="mlx_lm.server's HTTP loop handles SIGTERM as Ctrl-C while it runs, with server_sigterm",
    why=(
        "mlx_lm.server only catches KeyboardInterrupt; SIGTERM from a supervisor kills it mid-generation "
        "(exit 143) without stopping its generation thread."
    ),
    apply=_apply_http_loop,
    when=f"import:{_SERVER}",
    part_of="server_sigterm",
    platforms=("linux", "darwin"),
    upstream="https://github.com/ml-explore/mlx-lm/blob/main/mlx_lm/server.py",
)

PATCHES = (server_sigterm, server_sigterm_http_loop)
