"""What the environment says about this rank: launcher variables and ours.

MLX's backends read their own variables (``MLX_HOSTFILE``/``MLX_RANK`` for
ring; ``NCCL_HOST_IP``/``NCCL_PORT``/``MLX_WORLD_SIZE`` for NCCL;
``MLX_JACCL_COORDINATOR``/``MLX_IBV_DEVICES`` for JACCL; an MPI launcher's
for MPI).  Which of them are present tells which backend the launcher
prepared.  mlx-portable adds:

=====================================  ==================================================
``MLX_PORTABLE_DISTRIBUTED_BACKEND``   ``auto`` (default), ``ring``, ``mpi``, ``nccl``,
                                       ``jaccl``: force one (overrides ``init(backend=)``)
``MLX_PORTABLE_CLUSTER_BACKENDS``      every rank's device backend in rank order, e.g.
                                       ``metal,cuda,cpu``
``MLX_PORTABLE_HOSTFILE``              a hostfile with a ``"backend"`` per host (read when
                                       ``MLX_PORTABLE_CLUSTER_BACKENDS`` is unset)
``MLX_PORTABLE_DISTRIBUTED_TIMEOUT``   seconds a distributed evaluation may take before the
                                       watchdog ends the rank (default 600; ``0``: never)
=====================================  ==================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..validation import MAX_TIMEOUT, shown
from .choice import DEVICE_BACKENDS

__all__ = [
    "DEFAULT_TIMEOUT",
    "ENV_BACKEND",
    "ENV_CLUSTER",
    "ENV_HOSTFILE",
    "ENV_TIMEOUT",
    "check_launcher_numbers",
    "cluster_backends",
    "environment_problems",
    "launched_backends",
    "parse_cluster",
    "rank_and_size",
    "timeout_seconds",
]

from .variables import DEFAULT_TIMEOUT, ENV_BACKEND, ENV_CLUSTER, ENV_HOSTFILE, ENV_TIMEOUT

_MPI_MARKERS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")


def _has(env: Mapping[str, str], *names: str) -> bool:
    return all(env.get(n, "").strip() for n in names)


def launched_backends(env: Mapping[str, str] | None = None) -> frozenset[str]:
    """The backends whose launcher environment is present."""
    env = os.environ if env is None else env
    found = set()
    if _has(env, "MLX_HOSTFILE", "MLX_RANK"):
        found.add("ring")
    if _has(env, "NCCL_HOST_IP", "NCCL_PORT", "MLX_WORLD_SIZE"):
        found.add("nccl")
    if (_has(env, "MLX_JACCL_COORDINATOR") or _has(env, "JACCL_COORDINATOR")) and (
        _has(env, "MLX_IBV_DEVICES") or _has(env, "JACCL_IBV_DEVICES")
    ):
        found.add("jaccl")
    if any(_has(env, n) for n in _MPI_MARKERS):
        found.add("mpi")
    return frozenset(found)


def rank_and_size(env: Mapping[str, str] | None = None) -> tuple[int | None, int | None]:
    """This rank and the world size as the launcher announced them (``None`` if unknown)."""
    env = os.environ if env is None else env
    rank = _int(env.get("MLX_RANK"))
    size = _int(env.get("MLX_WORLD_SIZE"))
    if size is None and env.get("MLX_HOSTFILE"):
        size = _ring_size(env["MLX_HOSTFILE"])
    return rank, size


def check_launcher_numbers(env: Mapping[str, str] | None = None) -> None:
    """``ValueError`` unless ``MLX_WORLD_SIZE`` is a positive and ``MLX_RANK`` a non-negative integer.

    :func:`rank_and_size` reads leniently (it words messages, also from the
    watchdog, which must not fail); ``init()`` and ``doctor`` call this
    first, so ``MLX_WORLD_SIZE=-1`` is an error instead of "unknown".
    """
    env = os.environ if env is None else env
    for name, low in (("MLX_WORLD_SIZE", 1), ("MLX_RANK", 0)):
        raw = env.get(name)
        if raw is None or not raw.strip():
            continue
        text = raw.strip()
        if not (text.isascii() and text.isdigit()) or int(text) < low:
            raise ValueError(
                f"{name}={shown(raw)} must be {'a positive' if low else 'a non-negative'} integer "
                "(mlx.launch sets it); unset it, or start the program with mlx.launch"
            )
    rank, size = _int(env.get("MLX_RANK")), _int(env.get("MLX_WORLD_SIZE"))
    if rank is not None and size is not None and rank >= size:
        raise ValueError(f"MLX_RANK={rank} is not below MLX_WORLD_SIZE={size}; ranks count from 0")


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None and raw.strip() else None
    except ValueError:
        return None


def _ring_size(path: str) -> int | None:
    import json

    from .hostfile import _read_small_text  # a regular file, bounded: never a FIFO's hang

    try:
        hosts = json.loads(_read_small_text(path))
    except (OSError, ValueError, RecursionError):
        return None
    return len(hosts) if isinstance(hosts, list) else None


def parse_cluster(raw: str, *, source: str = ENV_CLUSTER) -> tuple[str, ...]:
    """``"metal,cuda,cpu"`` -> ``("metal", "cuda", "cpu")``; a bad value is a ``ValueError``."""
    names = tuple(part.strip().lower() for part in raw.split(","))
    bad = [n for n in names if n not in DEVICE_BACKENDS]
    if not raw.strip() or bad:
        raise ValueError(
            f"{source}={shown(raw)} must list every rank's device backend in rank order, each one of "
            f"{', '.join(DEVICE_BACKENDS)} (e.g. 'metal,cuda,cpu'); unset it if unknown."
        )
    return names


def cluster_backends(env: Mapping[str, str] | None = None) -> tuple[tuple[str, ...] | None, str]:
    """Every rank's device backend and where that came from (``(None, "")`` if nobody said)."""
    env = os.environ if env is None else env
    raw = env.get(ENV_CLUSTER)
    if raw is not None and raw.strip():
        return parse_cluster(raw), ENV_CLUSTER
    path = env.get(ENV_HOSTFILE, "").strip()
    if path:
        from .hostfile import cluster_of, read_hostfile

        try:
            hosts = read_hostfile(path)
        except (OSError, ValueError) as exc:
            from ..redaction import redact

            # The OSError repeats the path: redacted like the value itself.
            raise ValueError(f"{ENV_HOSTFILE}={shown(path)} cannot be read: {redact(str(exc))}") from exc
        cluster = cluster_of(hosts)
        if cluster is None:
            raise ValueError(
                f'{ENV_HOSTFILE}={shown(path)} does not give every host a "backend" '
                f"({', '.join(DEVICE_BACKENDS)}); write it with mlx_portable.distributed.write_hostfile "
                "or add the field by hand."
            )
        return cluster, ENV_HOSTFILE
    return None, ""


def timeout_seconds(env: Mapping[str, str] | None = None) -> float | None:
    """The watchdog's limit from ``MLX_PORTABLE_DISTRIBUTED_TIMEOUT`` (``None``: no limit)."""
    env = os.environ if env is None else env
    raw = env.get(ENV_TIMEOUT)
    if raw is None or not raw.strip():
        return DEFAULT_TIMEOUT
    text = raw.strip()
    try:
        # float() also reads "1_0" (as 10) and Arabic-Indic digits: only plain ASCII decimals are seconds.
        value = float(text) if text.isascii() and "_" not in text else -1.0
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_TIMEOUT:  # NaN, inf, negative and absurd values all fail here
        raise ValueError(
            f"{ENV_TIMEOUT}={shown(raw)} must be a number of seconds up to {MAX_TIMEOUT:.0f} "
            "(e.g. 600), or 0 to wait forever."
        )
    return None if value == 0 else value


def environment_problems(env: Mapping[str, str] | None = None) -> list[str]:
    """What ``init()`` would refuse in the distributed variables, one message each (``doctor`` shows them).

    The same readers ``init()`` uses, so the two never disagree (doctor used
    to say ok for ``MLX_PORTABLE_DISTRIBUTED_TIMEOUT=nan`` and a hostfile of
    ``/dev/zero``, which ``init()`` then rejected).
    """
    from .choice import validate_request

    env = os.environ if env is None else env
    problems: list[str] = []
    raw = env.get(ENV_BACKEND, "")
    readers = (
        lambda: validate_request(raw, source=ENV_BACKEND) if raw.strip() else None,
        lambda: timeout_seconds(env),
        lambda: cluster_backends(env),
        lambda: check_launcher_numbers(env),
    )
    for read in readers:
        try:
            read()
        except ValueError as exc:
            problems.append(str(exc))
    return problems
