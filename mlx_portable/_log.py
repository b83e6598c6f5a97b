"""The ``mlx_portable`` loggers, loaded only when somebody can be listening: the one logging path.

``logging`` costs a few milliseconds to import, which was a large part of the
first ``activate()``.  A record can only reach a handler if the application
(or a library it uses) imported ``logging`` and configured it, so until
``logging`` is in ``sys.modules`` the records are dropped without importing
it; from then on they go to ``logging.getLogger("mlx_portable")``, which has
a ``NullHandler`` as libraries should.  Sub-loggers (``mlx_portable.distributed``)
come from :func:`get_logger` and behave the same way.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging

__all__ = ["get_logger", "logger"]


class _Logger:
    """The few ``logging.Logger`` methods mlx-portable uses, deferred as described above."""

    __slots__ = ("_name", "_real")

    def __init__(self, name: str = "mlx_portable") -> None:
        self._name = name
        self._real: logging.Logger | None = None

    def get(self) -> logging.Logger | None:
        """The real logger, or ``None`` while ``logging`` has not been imported by anyone."""
        if self._real is None:
            if "logging" not in sys.modules:
                return None
            import logging

            package = logging.getLogger("mlx_portable")  # sub-loggers propagate to it
            if not any(isinstance(h, logging.NullHandler) for h in package.handlers):
                package.addHandler(logging.NullHandler())
            self._real = logging.getLogger(self._name)
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


def get_logger(name: str) -> _Logger:
    """The logger ``name`` (under ``mlx_portable``), deferred like :data:`logger`."""
    return _Logger(name)
