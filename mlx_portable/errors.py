"""Exceptions and warnings raised by mlx-portable.

Every error carries a message that says what to do next: the package to
install, the variable to change, or the version to pin.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "MlxPortableError",
    "PatchError",
    "PortabilityWarning",
]


class MlxPortableError(Exception):
    """Base class of every error mlx-portable raises on purpose."""


class BackendUnavailableError(MlxPortableError):
    """A backend was asked for (``MLX_PORTABLE_BACKEND``) but cannot run here.

    The message carries the probe's reason and the remedy.
    """

    def __init__(self, message: str, *, backend: str, reason: str, remedy: str) -> None:
        super().__init__(message)
        self.backend = backend
        self.reason = reason
        self.remedy = remedy


class PatchError(MlxPortableError):
    """A patch failed while strict mode was on (``MLX_PORTABLE_STRICT=1``)."""

    def __init__(self, message: str, *, patch: str) -> None:
        super().__init__(message)
        self.patch = patch


class PortabilityWarning(UserWarning):
    """A patch failed (outside strict mode) or a setting does not fit this machine."""
