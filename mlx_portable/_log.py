"""The ``mlx_portable`` logger, with its ``NullHandler``.

Imported only by modules that log (probes, activation), never on the
``import mlx_portable`` path: ``logging`` costs milliseconds to import.
"""

from __future__ import annotations

import logging

__all__ = ["logger"]

logger = logging.getLogger("mlx_portable")
if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
    logger.addHandler(logging.NullHandler())
