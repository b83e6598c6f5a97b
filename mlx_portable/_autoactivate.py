"""Activate mlx-portable as the interpreter starts, when ``MLX_PORTABLE_AUTOACTIVATE=1``.

The wheel installs ``mlx_portable_autoactivate.pth`` into site-packages.
Python's ``site`` module runs its one line at every start: it checks the
variable and imports this module only when it is set, so an interpreter
started without it pays nothing beyond one dictionary lookup.  A child
started with ``mlx_portable.subprocess_env(autoactivate=True)`` comes up
activated (patches applied, backend chosen) without any change to its code.

An activation failure must not stop the interpreter from starting: it is
written to stderr with what to do, and the program runs unpatched.
"""

from __future__ import annotations

import sys


def _activate() -> None:
    try:
        import mlx_portable

        mlx_portable.activate()
    except Exception as exc:  # reported, never fatal: the program still starts
        sys.stderr.write(
            f"mlx-portable: MLX_PORTABLE_AUTOACTIVATE=1, but activate() failed: {type(exc).__name__}: {exc}\n"
            "mlx-portable: starting without it; fix the cause, or unset MLX_PORTABLE_AUTOACTIVATE.\n"
        )


from mlx_portable.settings import autoactivate_requested  # noqa: E402

if autoactivate_requested():  # a value such as "banana" is reported on stderr, not ignored
    _activate()
