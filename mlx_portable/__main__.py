"""``python -m mlx_portable``: the same command line as the ``mlx-portable`` script."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
