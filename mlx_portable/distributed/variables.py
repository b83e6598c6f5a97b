"""The environment variables of the distributed layer, in a module of their own.

Both :mod:`.launch_env` (which reads them) and :mod:`.hostfile` (which writes
``MLX_PORTABLE_CLUSTER_BACKENDS`` into ``mlx.launch`` arguments) need the
names; keeping them here lets ``launch_env`` read hostfiles without the two
modules importing each other.
"""

from __future__ import annotations

__all__ = ["DEFAULT_TIMEOUT", "ENV_BACKEND", "ENV_CLUSTER", "ENV_HOSTFILE", "ENV_TIMEOUT"]

ENV_BACKEND = "MLX_PORTABLE_DISTRIBUTED_BACKEND"
ENV_CLUSTER = "MLX_PORTABLE_CLUSTER_BACKENDS"
ENV_HOSTFILE = "MLX_PORTABLE_HOSTFILE"
ENV_TIMEOUT = "MLX_PORTABLE_DISTRIBUTED_TIMEOUT"

#: Seconds, as PyTorch's NCCL watchdog: long enough for a large prefill.
DEFAULT_TIMEOUT = 600.0
