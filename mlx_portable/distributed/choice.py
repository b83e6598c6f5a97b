"""Which distributed backend a rank should use, and why: a pure function.

MLX ships four communication backends and picks among them badly for a
portable program: ``mx.distributed.init()`` ("any") tries NCCL first on a
CUDA rank, yet NCCL has no point-to-point (``[nccl] Send not supported in
NCCL backend.``); a cluster that mixes a Mac, a CUDA box and a CPU box can only
talk over ring (TCP); JACCL (Thunderbolt RDMA) exists only on macOS; and mlx
older than 0.29.0 (NCCL) or 0.30.1 (JACCL) rejects the newer names with
``ValueError: [distributed] The only valid values for backend are 'any',
'mpi' and 'ring' but 'nccl' was provided.``

:func:`choose_backend` takes the facts (this mlx's version and build, the
platform, this rank's device backend, the backends the launcher prepared an
environment for, and every rank's device backend when a hostfile says so) and
returns a :class:`Choice` with its reason, or raises
:class:`~mlx_portable.distributed.errors.DistributedBackendUnavailableError`
with a remedy.  It reads no environment and imports no mlx, so every case is
unit-tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.version import InvalidVersion, Version

from ..backend_table import backend_names
from .errors import DistributedBackendUnavailableError

__all__ = [
    "BACKENDS",
    "DEVICE_BACKENDS",
    "FIRST_MLX",
    "REQUESTS",
    "Choice",
    "ClusterFacts",
    "choose_backend",
    "mlx_has_backend",
    "validate_request",
]

#: Distributed backends, in the order automatic mode prefers them.
BACKENDS: tuple[str, ...] = ("jaccl", "nccl", "ring", "mpi")
#: What ``init(backend=...)`` and ``MLX_PORTABLE_DISTRIBUTED_BACKEND`` accept.
REQUESTS: tuple[str, ...] = ("auto", "ring", "mpi", "nccl", "jaccl")
#: Device backends a rank can run on (mlx-portable's names, from the backend table).
DEVICE_BACKENDS: tuple[str, ...] = backend_names()
#: First mlx release whose ``mx.distributed.init`` accepts the name; ring and
#: mpi predate the oldest supported mlx (0.26.5).
FIRST_MLX: Mapping[str, str] = {"ring": "0.26.5", "mpi": "0.26.5", "nccl": "0.29.0", "jaccl": "0.30.1"}

#: Which launcher environment each backend needs (for the messages).
LAUNCH_HINT: Mapping[str, str] = {
    "ring": "MLX_HOSTFILE and MLX_RANK (mlx.launch --backend ring)",
    "nccl": "NCCL_HOST_IP, NCCL_PORT, MLX_WORLD_SIZE and MLX_RANK (mlx.launch --backend nccl)",
    "jaccl": "MLX_JACCL_COORDINATOR and MLX_IBV_DEVICES (mlx.launch --backend jaccl)",
    "mpi": "an MPI launcher (mlx.launch --backend mpi, or mpirun)",
}

_ENV = "MLX_PORTABLE_DISTRIBUTED_BACKEND"


@dataclass(frozen=True)
class ClusterFacts:
    """Everything :func:`choose_backend` looks at.

    ``launched``: backends whose launcher environment is present on this rank.
    ``cluster``: every rank's device backend in rank order (from a hostfile or
    ``MLX_PORTABLE_CLUSTER_BACKENDS``), ``None`` when nobody said.
    ``built``: ``mx.distributed.is_available(name)`` answers, where this mlx
    can answer per name (0.30.1 and later); a missing name means "unknown".
    ``cuda_extra``: the pip extra that gives this machine a CUDA mlx
    (``"cuda12"`` or ``"cuda13"``), used in remedies.
    """

    mlx_version: str
    platform: str
    local: str
    launched: frozenset[str] = frozenset()
    cluster: tuple[str, ...] | None = None
    built: Mapping[str, bool] = field(default_factory=dict)
    cuda_extra: str = "cuda12"

    def __post_init__(self) -> None:
        # choose_backend trusts these: "gpu" as local or built=1 would give a wrong answer, not an error.
        from ..validation import require_bool, require_names, require_str, shown

        for key in ("mlx_version", "platform", "local", "cuda_extra"):  # plain str: hashed, compared, shown
            object.__setattr__(
                self, key, require_str(getattr(self, key), f"ClusterFacts({key}=...)", empty=False)
            )
        try:
            Version(self.mlx_version)
        except InvalidVersion:
            raise ValueError(
                f"ClusterFacts(mlx_version={shown(self.mlx_version)}) is not a version such as '0.30.1'"
            ) from None
        if self.local not in DEVICE_BACKENDS:
            raise ValueError(
                f"ClusterFacts(local={shown(self.local)}) is not one of {', '.join(DEVICE_BACKENDS)}"
            )
        launched = require_names(self.launched, "ClusterFacts(launched=...)", BACKENDS)
        object.__setattr__(self, "launched", launched)
        if self.cluster is not None:
            if isinstance(self.cluster, str) or not isinstance(self.cluster, (list, tuple)):
                raise TypeError("ClusterFacts(cluster=...) must be a tuple of device backends or None")
            unknown = [c for c in self.cluster if not isinstance(c, str) or c not in DEVICE_BACKENDS]
            if unknown or not self.cluster:
                raise ValueError(
                    f"ClusterFacts(cluster=...) must list every rank's device backend, each one of "
                    f"{', '.join(DEVICE_BACKENDS)}"
                )
            object.__setattr__(self, "cluster", tuple(self.cluster))
        if not isinstance(self.built, Mapping):
            raise TypeError("ClusterFacts(built=...) must be a mapping of backend name to True/False")
        for key, value in self.built.items():
            require_names([key], "ClusterFacts(built=...) keys", BACKENDS)
            require_bool(value, f"ClusterFacts(built=...)[{key!r}]")

    def to_dict(self) -> dict[str, Any]:
        return {
            "mlx_version": self.mlx_version,
            "platform": self.platform,
            "local": self.local,
            "launched": sorted(self.launched),
            "cluster": list(self.cluster) if self.cluster is not None else None,
            "built": dict(self.built),
        }


@dataclass(frozen=True)
class Choice:
    """The backend to initialize, how, and why.

    ``strict``: pass ``strict=True`` to ``mx.distributed.init`` (a launcher
    environment is present, so failing to connect is an error).
    ``single_process``: no launcher environment: the group has size 1.
    ``fallbacks``: backends to try, in order, if ``backend`` fails to
    initialize (JACCL "where it initializes").
    ``rejected``: ``(backend, reason)`` for each launched backend not chosen.
    """

    backend: str
    reason: str
    strict: bool = True
    forced: bool = False
    single_process: bool = False
    fallbacks: tuple[str, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "reason": self.reason,
            "forced": self.forced,
            "single_process": self.single_process,
            "fallbacks": list(self.fallbacks),
            "rejected": {name: why for name, why in self.rejected},
        }


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def mlx_has_backend(name: str, mlx_version: str) -> bool:
    """Whether ``mx.distributed.init(backend=name)`` accepts the name on this mlx."""
    first = FIRST_MLX.get(name)
    return first is not None and _version(mlx_version) >= Version(first)


def validate_request(value: str, *, source: str = "backend") -> str:
    """Normalize a requested backend name, or raise ``ValueError`` naming ``source``."""
    from ..validation import require_str, shown

    name = require_str(value, source).strip().lower()
    if name not in REQUESTS:
        raise ValueError(
            f"{source}={shown(value)} is not a distributed backend; valid names are "
            f"{', '.join(REQUESTS)} ('auto' lets mlx-portable choose)."
        )
    return str(name)


def _upgrade_remedy(name: str, facts: ClusterFacts) -> str:
    if name == "nccl":
        return (
            "on a Linux CUDA host install a CUDA mlx with NCCL: "
            f'pip install -U "mlx[{facts.cuda_extra}]>=0.30.1" '
            "(NCCL came in mlx 0.29.0); or use ring: "
            f"{_ENV}=ring and mlx.launch --backend ring"
        )
    if name == "jaccl":
        return (
            'on macOS 26.2 or later: pip install -U "mlx>=0.30.1"; or use ring: '
            f"{_ENV}=ring and mlx.launch --backend ring"
        )
    return f"use ring: {_ENV}=ring and mlx.launch --backend ring"


def _unavailable(name: str, facts: ClusterFacts, *, needs_p2p: bool | None) -> tuple[str, str] | None:
    """Why ``name`` cannot serve this rank and cluster, with a remedy; ``None`` if it can."""
    # No mlx upgrade brings JACCL to Linux: say so before the version.
    if name == "jaccl" and facts.platform != "darwin":
        return (
            f"JACCL (Thunderbolt RDMA) runs only on macOS 26.2 or later, this rank runs on {facts.platform}",
            f"use ring: {_ENV}=ring and mlx.launch --backend ring",
        )
    if not mlx_has_backend(name, facts.mlx_version):
        return (
            f"mlx {facts.mlx_version} has no {name} backend (it came in mlx {FIRST_MLX[name]}; older mlx "
            "answers: ValueError: [distributed] The only valid values for backend are 'any', 'mpi' and "
            "'ring')",
            _upgrade_remedy(name, facts),
        )
    if name == "jaccl" and facts.cluster is not None and any(b != "metal" for b in facts.cluster):
        return (
            f"JACCL needs every rank on a Mac, the cluster is {','.join(facts.cluster)}",
            "use ring for a mixed cluster: mlx.launch --backend ring",
        )
    if name == "nccl":
        if facts.local != "cuda":
            return (
                f"NCCL needs CUDA on every rank and this rank runs on {facts.local}",
                f"use ring: {_ENV}=ring and mlx.launch --backend ring (or install a CUDA mlx on this host: "
                f'pip install "mlx[{facts.cuda_extra}]")',
            )
        if facts.cluster is not None and any(b != "cuda" for b in facts.cluster):
            return (
                f"NCCL needs CUDA on every rank and the cluster is {','.join(facts.cluster)}",
                "use ring for a mixed cluster: mlx.launch --backend ring",
            )
        if needs_p2p:
            return (
                "the program needs point-to-point (needs_p2p=True) and NCCL has no send/recv "
                "([nccl] Send not supported in NCCL backend.)",
                "use ring: mlx.launch --backend ring (or pass needs_p2p=False if the program only "
                "uses collectives)",
            )
    if facts.built.get(name) is False:
        return (
            f"this mlx build has no usable {name} here (mx.distributed.is_available({name!r}) is False)",
            _upgrade_remedy(name, facts),
        )
    return None


def _raise(name: str, reason: str, remedy: str, *, source: str) -> DistributedBackendUnavailableError:
    return DistributedBackendUnavailableError(
        f"{source} asks for the {name} distributed backend, which cannot run on this rank: {reason}. "
        f"To fix: {remedy}.",
        backend=name,
        reason=reason,
        remedy=remedy,
    )


def choose_backend(
    facts: ClusterFacts,
    requested: str = "auto",
    *,
    needs_p2p: bool | None = None,
    source: str = "backend",
) -> Choice:
    """Choose the distributed backend for this rank (see the module docstring).

    ``requested``: ``"auto"`` or a backend name (forced).  ``needs_p2p``:
    ``True`` -- the program calls send/recv, so never NCCL; ``False`` -- only
    collectives, so NCCL when every rank is CUDA and the launcher prepared it;
    ``None`` (unknown) -- prefer ring where both are launched, accept NCCL when
    it is all the launcher prepared.  ``source`` names who asked (an argument
    or the environment variable) in error messages.
    """
    requested = validate_request(requested, source=source)
    if requested != "auto":
        return _forced(facts, requested, needs_p2p=needs_p2p, source=source)
    if not facts.launched:
        return Choice(
            backend="ring",
            strict=False,
            single_process=True,
            reason=(
                "no launcher environment on this rank (MLX_HOSTFILE/MLX_RANK, NCCL_HOST_IP, "
                "MLX_JACCL_COORDINATOR or an MPI launcher): a single-process group of size 1"
            ),
        )
    usable: list[tuple[str, str]] = []
    rejected: list[tuple[str, str, str]] = []
    for name in BACKENDS:
        if name not in facts.launched:
            continue
        problem = _unavailable(name, facts, needs_p2p=needs_p2p)
        if problem is not None:
            rejected.append((name, *problem))
        else:
            usable.append((name, _why(name, facts, needs_p2p)))
    if not usable:
        details = "; ".join(f"{name}: {why}" for name, why, _ in rejected)
        names = ", ".join(name for name, _, _ in rejected)
        reason = f"the launcher prepared only {names}, which cannot serve this rank: {details}"
        raise DistributedBackendUnavailableError(
            f"no distributed backend is usable on this rank: {reason}. To fix: {rejected[0][2]}.",
            backend=rejected[0][0],
            reason=reason,
            remedy=rejected[0][2],
        )
    # Where the program's needs are unknown, ring (which has send/recv) beats
    # NCCL when the launcher prepared both.
    if needs_p2p is None and len(usable) > 1 and usable[0][0] == "nccl":
        usable.sort(key=lambda item: item[0] == "nccl")
    backend, reason = usable[0]
    return Choice(
        backend=backend,
        reason=reason,
        strict=True,
        fallbacks=tuple(name for name, _ in usable[1:]),
        rejected=tuple((name, f"{why}; to fix: {remedy}") for name, why, remedy in rejected),
    )


def _why(name: str, facts: ClusterFacts, needs_p2p: bool | None) -> str:
    cluster = f"cluster {','.join(facts.cluster)}" if facts.cluster is not None else "cluster not described"
    if name == "nccl":
        extra = (
            "; send/recv are unavailable on NCCL (pass needs_p2p=True to refuse it)"
            if needs_p2p is None
            else "; the program needs no point-to-point"
        )
        return f"every rank runs CUDA ({cluster}) and the launcher prepared NCCL{extra}"
    if name == "jaccl":
        return f"macOS with JACCL (Thunderbolt RDMA) prepared by the launcher ({cluster})"
    if name == "ring":
        return f"ring over TCP works on every platform and device ({cluster}, this rank: {facts.local})"
    return f"launched by an MPI launcher ({cluster})"


def _forced(facts: ClusterFacts, name: str, *, needs_p2p: bool | None, source: str) -> Choice:
    problem = _unavailable(name, facts, needs_p2p=needs_p2p)
    if problem is not None:
        raise _raise(name, problem[0], problem[1], source=source)
    if not facts.launched:
        return Choice(
            backend=name,
            strict=False,
            forced=True,
            single_process=True,
            reason=f"forced by {source}; no launcher environment: a single-process group of size 1",
        )
    if name not in facts.launched:
        prepared = ", ".join(sorted(facts.launched))
        reason = f"the launcher prepared {prepared}, not {name} (which needs {LAUNCH_HINT[name]})"
        remedy = f"relaunch with mlx.launch --backend {name}, or unset {_ENV} to use {prepared}"
        raise _raise(name, reason, remedy, source=source)
    return Choice(backend=name, strict=True, forced=True, reason=f"forced by {source}")
