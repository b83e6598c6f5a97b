"""Portable ``mx.distributed``: one ``init()`` for Metal, CUDA and CPU ranks.

    import mlx_portable.distributed as dist

    group = dist.init()                       # MLX's own Group
    total = dist.all_sum(x, group)            # any device, float32/16, bfloat16
    dist.eval(total)                          # fails, not hangs, if a peer dies

``init()`` chooses the backend this mlx supports and the whole cluster can
use (see :mod:`.choice`), records the choice and its reason in the
activation report, and returns ``mx.distributed``'s ``Group``.  The wrappers
(:mod:`.ops`) run each operation on a stream that can run it.  Hostfiles with
a ``"backend"`` per host (:mod:`.hostfile`) tell every rank what the cluster
is made of.  See ``docs/distributed.md``.
"""

from __future__ import annotations

from .choice import BACKENDS, REQUESTS, Choice, ClusterFacts, choose_backend
from .errors import DistributedBackendUnavailableError, DistributedError
from .group import current_choice, init
from .hostfile import (
    Host,
    launch_arguments,
    local_host,
    read_hostfile,
    write_hostfile,
)
from .launch_env import ENV_BACKEND, ENV_CLUSTER, ENV_HOSTFILE, ENV_TIMEOUT
from .ops import all_gather, all_max, all_min, all_sum, recv, recv_like, send, sum_scatter
from .rank_hostfile import read_rank_hostfile, write_rank_hostfile
from .watchdog import WATCHDOG_EXIT_CODE, Watchdog, eval

__all__ = [
    "BACKENDS",
    "ENV_BACKEND",
    "ENV_CLUSTER",
    "ENV_HOSTFILE",
    "ENV_TIMEOUT",
    "REQUESTS",
    "WATCHDOG_EXIT_CODE",
    "Choice",
    "ClusterFacts",
    "DistributedBackendUnavailableError",
    "DistributedError",
    "Host",
    "Watchdog",
    "all_gather",
    "all_max",
    "all_min",
    "all_sum",
    "choose_backend",
    "current_choice",
    "eval",
    "init",
    "launch_arguments",
    "local_host",
    "read_hostfile",
    "read_rank_hostfile",
    "recv",
    "recv_like",
    "send",
    "sum_scatter",
    "write_hostfile",
    "write_rank_hostfile",
]
