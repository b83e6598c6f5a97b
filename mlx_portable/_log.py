"""The ``mlx_portable`` logger, loaded only when somebody can be listening.

``logging`` costs a few milliseconds to import, which was a large part of the
first ``activate()``.  A record can only reach a handler if the application
(or a library it uses) imported ``logging`` and configured it, so until
``logging`` is in ``sys.modules`` the records are dropped without importing
it; from then on they go to ``logging.getLogger("mlx_portable")``, which has
a ``NullHandler`` as libraries should.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging

__all__ = ["logger"]


class _Logger:
    """The few ``logging.Logger`` methods mlx-portable uses, deferred as described above."""

    __slots__ = ("_real",)

    def __init__(self) -> None:
        self._real: logging.Logger | None = None

    def get(self) -> logging.Logger | None:
        """The real logger, or ``None`` while ``logging`` has not been imported by anyone."""
        if self._real is None:
            if "logging" not in sys.modules:
                return None
            import logging

            real = logging.getLogger("mlx_portable")
            if not any(isinstance(h, logging.NullHandler) for h in real.handlers):
                real.addHandler(logging.NullHandler())
            self._real = real
        return self._real

    def debug(self, msg: str, *args: object) -> None:
        real = self.get()
        if real is not None:
            real.debug(msg, *args, stacklevel=2)

    def info(self, msg: str, *args: object) -> None:
        real = self.get()
        if real is not None:
            real.info(msg, *args, stacklevel=2)

    def warning(self, msg: str, *args: object) -> None:
        real = self.get()
        if real is not None:
            real.warning(msg, *args, stacklevel=2)


logger = _Logger()
