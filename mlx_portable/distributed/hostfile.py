"""MLX hostfiles that also record each host's device backend.

``mlx.launch --hostfile`` reads a JSON list of hosts::

    [
      {"ssh": "mac-studio.local", "ips": ["192.168.1.10"], "backend": "metal"},
      {"ssh": "gpu-box",          "ips": ["192.168.1.11"], "backend": "cuda"},
      {"ssh": "cpu-box",          "ips": ["192.168.1.12"], "backend": "cpu"}
    ]

Every ``mlx.launch`` from 0.26.5 on reads ``ssh`` and ``ips`` and ignores
other keys, so the extra ``"backend"`` (``metal``, ``cuda`` or ``cpu``) travels
along unharmed; mlx 0.30.6 and later also accept an object
``{"backend": ..., "envs": [...], "hosts": [...]}``, which
:func:`read_hostfile` reads too.  :func:`write_hostfile` writes the list form,
the one every launcher reads.  The ranks learn the cluster through
``MLX_PORTABLE_CLUSTER_BACKENDS`` (see :func:`launch_arguments`) or
``MLX_PORTABLE_HOSTFILE``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .choice import DEVICE_BACKENDS
from .variables import ENV_CLUSTER

__all__ = [
    "Host",
    "cluster_of",
    "launch_arguments",
    "launcher_backend",
    "local_host",
    "read_hostfile",
    "write_hostfile",
]


@dataclass(frozen=True)
class Host:
    """One host of a hostfile: ``ssh`` name, ``ips`` for ring, its device ``backend``.

    ``extra`` keeps any other keys (e.g. ``rdma`` for JACCL) so a hostfile
    read and written back loses nothing.
    """

    ssh: str
    ips: tuple[str, ...] = ()
    backend: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.ssh, str) or not self.ssh:
            raise ValueError(f"a host needs an ssh name, got {self.ssh!r}")
        if self.backend is not None and self.backend not in DEVICE_BACKENDS:
            raise ValueError(
                f"host {self.ssh!r}: backend={self.backend!r} is not one of {', '.join(DEVICE_BACKENDS)}"
            )
        object.__setattr__(self, "ips", tuple(self.ips))

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"ssh": self.ssh, "ips": list(self.ips)}
        if self.backend is not None:
            entry["backend"] = self.backend
        for key, value in self.extra.items():
            entry.setdefault(key, value)
        return entry

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> Host:
        if not isinstance(entry, Mapping) or "ssh" not in entry:
            raise ValueError(f'each host must be an object with an "ssh" key, got {entry!r}')
        ips = entry.get("ips", [])
        if isinstance(ips, str) or not isinstance(ips, Sequence):
            raise ValueError(f'host {entry["ssh"]!r}: "ips" must be a list of addresses, got {ips!r}')
        extra = {k: v for k, v in entry.items() if k not in ("ssh", "ips", "backend")}
        return cls(str(entry["ssh"]), tuple(str(ip) for ip in ips), entry.get("backend"), extra)


def read_hostfile(path: str | os.PathLike[str]) -> list[Host]:
    """Read a hostfile in either of MLX's layouts (a list, or an object with ``hosts``)."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if isinstance(data, Mapping):
        data = data.get("hosts")
    if not isinstance(data, list):
        raise ValueError(f'{os.fspath(path)}: expected a JSON list of hosts or an object with "hosts"')
    return [Host.from_json(entry) for entry in data]


def write_hostfile(path: str | os.PathLike[str], hosts: Iterable[Host | Mapping[str, Any]]) -> Path:
    """Write ``hosts`` as the JSON list every ``mlx.launch`` reads, with a ``backend`` per host."""
    entries = [h if isinstance(h, Host) else Host.from_json(h) for h in hosts]
    if not entries:
        raise ValueError("a hostfile needs at least one host")
    target = Path(path)
    target.write_text(json.dumps([h.to_json() for h in entries], indent=2) + "\n", encoding="utf-8")
    return target


def cluster_of(hosts: Sequence[Host]) -> tuple[str, ...] | None:
    """Every host's device backend in rank order, or ``None`` if any host lacks one."""
    backends = tuple(h.backend for h in hosts)
    if not backends or any(b is None for b in backends):
        return None
    return tuple(str(b) for b in backends)


def launcher_backend(cluster: Sequence[str], *, needs_p2p: bool | None = None) -> str:
    """The ``mlx.launch --backend`` for this cluster: ``nccl`` only for all-CUDA collective-only programs.

    Name it explicitly: from mlx 0.29 on, ``mlx.launch`` run on a CUDA host
    defaults to NCCL, which a Mac or CPU rank cannot join.
    """
    if cluster and all(b == "cuda" for b in cluster) and needs_p2p is False:
        return "nccl"
    return "ring"


def launch_arguments(hostfile: str | os.PathLike[str], *, needs_p2p: bool | None = None) -> list[str]:
    """``mlx.launch`` arguments for ``hostfile``: ``--hostfile``, ``--backend``, ``--env`` with the cluster.

    E.g. ``["--hostfile", "cluster.json", "--backend", "ring", "--env",
    "MLX_PORTABLE_CLUSTER_BACKENDS=metal,cuda,cpu"]``.
    """
    hosts = read_hostfile(hostfile)
    cluster = cluster_of(hosts)
    args = ["--hostfile", os.fspath(hostfile)]
    if cluster is None:
        return [*args, "--backend", "ring"]
    return [
        *args,
        "--backend",
        launcher_backend(cluster, needs_p2p=needs_p2p),
        "--env",
        f"{ENV_CLUSTER}={','.join(cluster)}",
    ]


def local_host(ssh: str | None = None, ips: Sequence[str] | None = None) -> Host:
    """This machine's hostfile entry: its name, an address, and mlx-portable's backend here."""
    import socket

    from ..backends import current_backend

    name = ssh or socket.gethostname()
    if ips is None:
        ips = [_primary_address()]
    return Host(name, tuple(ips), current_backend().name)


def _primary_address() -> str:
    """The address other hosts reach this one on (the source address of the default route)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent over UDP connect
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"
