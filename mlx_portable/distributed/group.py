"""``init()``: gather the facts, choose the backend, start MLX's own group.

The group returned is ``mx.distributed``'s ``Group``.  MLX caches the first
group it initializes as the default (``"any"``), so library code that later
calls ``mx.distributed.init()`` or a collective without ``group=`` gets the
backend chosen here rather than MLX's own "NCCL first on CUDA" pick.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .. import _mlx
from .._log import get_logger
from . import watchdog
from .choice import (
    FIRST_MLX,
    LAUNCH_HINT,
    Choice,
    ClusterFacts,
    choose_backend,
    mlx_has_backend,
    validate_request,
)
from .errors import DistributedBackendUnavailableError
from .launch_env import (
    ENV_BACKEND,
    ENV_CLUSTER,
    ENV_TIMEOUT,
    check_launcher_numbers,
    cluster_backends,
    launched_backends,
    parse_cluster,
    rank_and_size,
    timeout_seconds,
)
from .watchdog import GuardProcess

__all__ = [
    "current_choice",
    "current_distributed_backend",
    "default_timeout",
    "describe_rank",
    "gather_facts",
    "init",
]

logger = get_logger("mlx_portable.distributed")

_UNSET: Any = object()
_lock = threading.Lock()
_choice: Choice | None = None
_backend: str | None = None
_timeout: Any = _UNSET
_rank_size: tuple[int, int] | None = None
_guess: tuple[Any, str | None] | None = None  # (mlx.core, MLX's likely backend) without init()


def _built(mx: Any) -> dict[str, bool]:
    """``is_available(name)`` answers, where this mlx takes a name (0.30.1 and later)."""
    answers: dict[str, bool] = {}
    for name in FIRST_MLX:
        if not mlx_has_backend(name, _mlx.mlx_version(mx)):
            continue
        try:
            answers[name] = bool(mx.distributed.is_available(name))
        except TypeError:  # is_available() takes no name before 0.30.1
            return {}
    return answers


def gather_facts(
    mx: Any | None = None,
    *,
    cluster: Sequence[str] | None = None,
    env: dict[str, str] | None = None,
    local: str | None = None,
) -> tuple[ClusterFacts, str]:
    """The :class:`ClusterFacts` for this rank, and where the cluster description came from."""
    mx = _mlx.core() if mx is None else mx
    env = dict(os.environ) if env is None else env
    if local is None:
        from ..backends import current_backend

        local = current_backend().name
    if cluster is not None:
        described: tuple[str, ...] | None = parse_cluster(",".join(cluster), source="cluster")
        source = "init(cluster=...)"
    else:
        described, source = cluster_backends(env)
    from ..install_hint import pip_extra_for_this_machine

    extra = pip_extra_for_this_machine()
    facts = ClusterFacts(
        mlx_version=_mlx.mlx_version(mx),
        platform=sys.platform,
        local=local,
        launched=launched_backends(env),
        cluster=_own_entry(described, env, local),
        built=_built(mx),
        cuda_extra=extra if extra in ("cuda12", "cuda13") else "cuda12",
    )
    return facts, source


def _own_entry(cluster: tuple[str, ...] | None, env: dict[str, str], local: str) -> tuple[str, ...] | None:
    """Check the description against this rank; what this rank runs beats what was written."""
    if cluster is None:
        return None
    rank, size = rank_and_size(env)
    if size is not None and len(cluster) != size:
        raise ValueError(
            f"the cluster description lists {len(cluster)} ranks ({','.join(cluster)}) but the launcher "
            f'started {size}; fix {ENV_CLUSTER} or the hostfile\'s "backend" entries.'
        )
    if rank is not None and 0 <= rank < len(cluster) and cluster[rank] != local:
        logger.warning(
            "rank %d is described as %s but runs on %s; using %s for it", rank, cluster[rank], local, local
        )
        return (*cluster[:rank], local, *cluster[rank + 1 :])
    return cluster


def init(
    backend: str = "auto",
    *,
    needs_p2p: bool | None = None,
    strict: bool = False,
    cluster: Sequence[str] | None = None,
    timeout: float | None = _UNSET,
) -> Any:
    """Start MLX's distributed group on the backend this rank and its cluster can use.

    ``backend``: ``"auto"`` (default) or ``"ring"``, ``"mpi"``, ``"nccl"``,
    ``"jaccl"``; ``MLX_PORTABLE_DISTRIBUTED_BACKEND`` overrides it.
    ``needs_p2p``: ``True`` if the program calls send/recv (never NCCL),
    ``False`` if it only uses collectives (NCCL allowed when every rank is
    CUDA), ``None`` when unknown (ring preferred where both are launched).
    ``strict``: a missing launcher environment is an error rather than a group
    of size 1.  ``cluster``: every rank's device backend in rank order
    (default: ``MLX_PORTABLE_CLUSTER_BACKENDS`` or ``MLX_PORTABLE_HOSTFILE``).
    ``timeout``: seconds that connecting, and later each
    :func:`mlx_portable.distributed.eval`, may take (default
    ``MLX_PORTABLE_DISTRIBUTED_TIMEOUT``, 600; ``None`` waits forever).

    Activates mlx-portable first, so every rank runs patched.  The choice and
    its reason are in ``mlx_portable.report().details["distributed"]``.
    """
    global _choice, _backend, _timeout, _rank_size
    from ..activation import activate, set_detail
    from ..validation import require_bool, require_list, require_optional_bool, require_str, require_timeout

    if timeout is not _UNSET:  # checked before anything starts, not when the watchdog first waits
        require_timeout(timeout, "init(timeout=...)")
    # Every argument is checked before anything starts ("yes" is truthy, a set has no rank order).
    validate_request(backend, source="init(backend=...)")
    require_optional_bool(needs_p2p, "init(needs_p2p=...)")
    require_bool(strict, "init(strict=...)")
    if cluster is not None:
        names = require_list(cluster, "init(cluster=...)", item="device backends in rank order")
        cluster = [require_str(n, "init(cluster=...) entry") for n in names]
        if not cluster or any("," in n for n in cluster):  # one entry per rank, never "cpu,cpu"
            parse_cluster(",", source="init(cluster=...)")  # raises, with the accepted values
    check_launcher_numbers()

    activate()
    mx = _mlx.core()
    raw = os.environ.get(ENV_BACKEND, "")
    if raw.strip():
        requested, source = validate_request(raw, source=ENV_BACKEND), ENV_BACKEND
    else:
        requested, source = validate_request(backend, source="backend"), "init(backend=...)"
    # Read fresh here (default_timeout() keeps the value read for eval() without init()).
    limit = timeout_seconds() if timeout is _UNSET else require_timeout(timeout, "init(timeout=...)")
    facts, cluster_source = gather_facts(mx, cluster=cluster)
    choice = choose_backend(facts, requested, needs_p2p=needs_p2p, source=source)
    if choice.single_process and facts.cluster is not None and len(facts.cluster) != 1:
        raise ValueError(
            f"{cluster_source or 'the cluster description'} lists {len(facts.cluster)} ranks "
            f"({','.join(facts.cluster)}) but no launcher started this program: it is one process. Start it "
            "with mlx.launch, or leave the cluster out."
        )
    if strict and choice.single_process:
        raise DistributedBackendUnavailableError(
            f"init(strict=True) found no launcher environment: {choice.reason}",
            backend=choice.backend,
            reason=choice.reason,
            remedy="start the program with mlx.launch (e.g. mlx.launch --backend ring -n 2 script.py)",
        )
    group, used, failures = _start(mx, choice, limit)
    with _lock:
        _choice, _backend, _timeout = choice, used, limit
        _rank_size = (group.rank(), group.size())
    detail = {
        **choice.to_dict(),
        "backend": used,
        "rank": group.rank(),
        "size": group.size(),
        "requested": requested,
        "needs_p2p": needs_p2p,
        "cluster_source": cluster_source or None,
        "timeout_s": limit,
        "facts": facts.to_dict(),
    }
    if failures:
        detail["failed"] = failures
    set_detail("distributed", detail)
    logger.info("distributed: %s (rank %d of %d): %s", used, group.rank(), group.size(), choice.reason)
    return group


def _start(mx: Any, choice: Choice, limit: float | None) -> tuple[Any, str, dict[str, str]]:
    failures: dict[str, str] = {}
    candidates = (choice.backend, *choice.fallbacks)
    for name in candidates:
        rank, size = rank_and_size()
        message = (
            f"mlx-portable: rank {rank} of {size}: connecting the {name} group did not finish within "
            f"{limit} s: a peer did not start or cannot be reached ({LAUNCH_HINT[name]}). Ending this "
            f"rank; check every host's output and addresses, or raise {ENV_TIMEOUT}.\n"
        )
        try:
            with GuardProcess(limit if choice.strict else None, message):
                group = mx.distributed.init(strict=choice.strict, backend=name)
        except ValueError as exc:
            if "only valid values for backend" not in str(exc):
                raise
            raise DistributedBackendUnavailableError(
                f"mlx {_mlx.mlx_version(mx)} rejects the {name} backend ({exc}). To fix: upgrade mlx "
                f'(nccl: pip install -U "mlx[cuda12]>=0.30.1"; jaccl: pip install -U "mlx>=0.30.1" on '
                f"macOS) or set {ENV_BACKEND}=ring.",
                backend=name,
                reason=str(exc),
                remedy=f"upgrade mlx or set {ENV_BACKEND}=ring",
            ) from exc
        except RuntimeError as exc:
            failures[name] = str(exc)
            logger.info("distributed: %s did not initialize: %s", name, exc)
            continue
        return group, name, failures
    details = "; ".join(f"{n}: {why}" for n, why in failures.items())
    raise DistributedBackendUnavailableError(
        f"no distributed backend initialized on this rank ({details}). To fix: check that the launcher "
        f"prepared {LAUNCH_HINT[candidates[0]]}, or start the program with mlx.launch.",
        backend=candidates[0],
        reason=details,
        remedy="start the program with mlx.launch",
    )


def current_choice() -> Choice | None:
    """The last :func:`init`'s :class:`Choice` (``None`` before it)."""
    return _choice


def current_distributed_backend() -> str | None:
    """The backend :func:`init` started; without it, MLX's likely pick (``None`` if not NCCL)."""
    global _guess
    if _backend is not None:
        return _backend
    mx = _mlx.core_if_loaded()
    if mx is None:
        return None
    if _guess is not None and _guess[0] is mx:
        return _guess[1]  # asked on every collective: the environment is read once
    # mx.distributed.init() ("any") tries NCCL first on a CUDA build.
    from .. import cuda

    on_cuda = cuda.built_into(mx)
    nccl = on_cuda and "nccl" in launched_backends() and mlx_has_backend("nccl", _mlx.mlx_version(mx))
    _guess = (mx, "nccl" if nccl else None)
    return _guess[1]


def default_timeout() -> float | None:
    """The watchdog limit: ``init(timeout=...)``, else ``MLX_PORTABLE_DISTRIBUTED_TIMEOUT`` (600 s).

    Without ``init()`` the variable is read at the first evaluation and kept:
    every :func:`~mlx_portable.distributed.eval` asks, and reading the
    environment cost more than the rest of the watchdog together.
    """
    global _timeout
    if _timeout is _UNSET:
        with _lock:
            if _timeout is _UNSET:
                _timeout = timeout_seconds()
    return _timeout  # type: ignore[no-any-return]


def describe_rank() -> str:
    """E.g. ``"rank 1 of 2 (ring)"`` for messages."""
    if _rank_size is not None:
        rank, size = _rank_size
    else:
        maybe_rank, maybe_size = rank_and_size()
        rank, size = (maybe_rank if maybe_rank is not None else -1), (maybe_size or 0)
    backend = _backend or "distributed backend not initialized by mlx_portable"
    return f"rank {rank} of {size} ({backend})"


watchdog.use_group_state(describe_rank, default_timeout)


def _reset_for_tests() -> None:
    global _choice, _backend, _timeout, _rank_size, _guess
    with _lock:
        _choice, _backend, _timeout, _rank_size, _guess = None, None, _UNSET, None, None
