"""Errors of the distributed layer; each message says what to do next."""

from __future__ import annotations

from ..errors import BackendUnavailableError, MlxPortableError

__all__ = ["DistributedBackendUnavailableError", "DistributedError"]


class DistributedBackendUnavailableError(BackendUnavailableError):
    """The distributed backend asked for (or launched) cannot run on this rank.

    ``backend`` is the distributed backend's name (``"nccl"``, ...), ``reason``
    says why, ``remedy`` what to change (a ``pip install`` command, an
    ``mlx.launch --backend`` flag or an environment variable).
    """


class DistributedError(MlxPortableError, RuntimeError):
    """Communication failed at run time: a peer died, hung, or the backend lacks the operation."""
