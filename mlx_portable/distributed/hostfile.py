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

from ..validation import require_list, require_path, require_str, shown
from .choice import DEVICE_BACKENDS
from .variables import ENV_CLUSTER

__all__ = [
    "Host",
    "check_ip",
    "check_ssh_name",
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
        ssh = check_ssh_name(self.ssh)
        object.__setattr__(self, "ssh", ssh)
        if self.backend is not None:
            backend = require_str(self.backend, f"host {ssh!r}: backend")
            if backend not in DEVICE_BACKENDS:
                raise ValueError(
                    f"host {ssh!r}: backend={shown(backend)} is not one of {', '.join(DEVICE_BACKENDS)}"
                )
            object.__setattr__(self, "backend", backend)
        if isinstance(self.ips, str):
            raise TypeError(
                f"host {ssh!r}: ips must be a list of IP addresses, not a single string "
                f"{shown(self.ips)}; write ips=[{shown(self.ips)}]"
            )
        ips = tuple(
            check_ip(ip, host=ssh) for ip in require_list(self.ips, f"host {ssh!r}: ips", item="IP addresses")
        )
        object.__setattr__(self, "ips", ips)
        if not isinstance(self.extra, Mapping):
            raise TypeError(f"host {ssh!r}: extra must be a mapping, not {shown(self.extra)}")
        try:
            extra = {require_str(k, f"host {ssh!r}: extra key"): v for k, v in self.extra.items()}
            json.dumps(extra, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise TypeError(
                f"host {ssh!r}: extra must hold plain JSON data (a hostfile is JSON): {exc}"
            ) from None
        except Exception as exc:
            raise TypeError(f"host {ssh!r}: reading extra raised {type(exc).__name__}") from None
        object.__setattr__(self, "extra", extra)

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
            raise ValueError(f'each of the hosts must be an object with an "ssh" key, got {shown(entry)}')
        ips = entry.get("ips", [])
        if isinstance(ips, str) or not isinstance(ips, (list, tuple)):
            raise ValueError(
                f'host {shown(entry["ssh"])}: "ips" must be a list of addresses, got {shown(ips)}'
            )
        extra = {k: v for k, v in entry.items() if k not in ("ssh", "ips", "backend")}
        return cls(entry["ssh"], tuple(ips), entry.get("backend"), extra)


def read_hostfile(path: str | os.PathLike[str]) -> list[Host]:
    """Read a hostfile in either of MLX's layouts (a list, or an object with ``hosts``).

    Only a regular file of at most :data:`MAX_HOSTFILE_BYTES` is read:
    ``/dev/zero`` would be read until memory runs out and a FIFO would block
    forever.  Every host name and address is checked (:func:`check_ssh_name`).
    """
    name = require_path(path, "read_hostfile(path=...)")
    text = _read_small_text(name)
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"{name}: the JSON is nested too deeply to be a hostfile") from None
    except ValueError as exc:  # JSONDecodeError
        raise ValueError(f"{name} is not valid JSON ({exc}); a hostfile is a JSON list of hosts") from None
    if isinstance(data, Mapping):
        data = data.get("hosts")
    if not isinstance(data, list):
        raise ValueError(f'{name}: expected a JSON list of hosts or an object with "hosts"')
    if not data:
        raise ValueError(f"{name} lists no host; a hostfile names every host of the cluster, in rank order")
    if data and all(isinstance(e, (str, list)) for e in data):
        raise ValueError(
            f'{name} is a per-rank ring hostfile ("ip:port" per rank, as exo writes); '
            "read it with read_rank_hostfile()"
        )
    try:
        return [Host.from_json(entry) for entry in data]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: {exc}") from None


def _no_constant(word: str) -> object:
    """Refuse ``NaN``/``Infinity``: Python's JSON reader takes them, strict JSON does not."""
    raise ValueError(f"{word} is not a JSON value")


#: A hostfile larger than this is refused (a real one is a few kilobytes).
MAX_HOSTFILE_BYTES = 1 << 20


def _read_small_text(path: str) -> str:
    """The UTF-8 text of the regular file ``path``, refusing devices, FIFOs and big files.

    Opened with ``O_NONBLOCK`` so that a FIFO cannot block the open itself.
    """
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if len(path) <= 200:
            raise
        raise OSError(exc.errno, exc.strerror, f"{path[:200]}... ({len(path)} characters)") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = (
                "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device, FIFO or socket)"
            )
            raise ValueError(f"{path} is {kind}; a hostfile is a JSON file")
        if info.st_size > MAX_HOSTFILE_BYTES:
            raise ValueError(
                f"{path} is {info.st_size} bytes; a hostfile is at most {MAX_HOSTFILE_BYTES} bytes"
            )
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(MAX_HOSTFILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
_USER_CHARS = _LABEL_CHARS | frozenset("._")


#: What an IPv6 zone (scope id) may be: an interface name or index (``fe80::1%eth0``, ``%2``).
_SCOPE_CHARS = _LABEL_CHARS | frozenset("._")


def _is_ip(text: str) -> bool:
    """An IPv4 or IPv6 literal; an IPv6 zone must be an interface name or number.

    ``ipaddress`` accepts any text after ``%`` (``fe80::1%a b -oProxyCommand=id``),
    which would reach ``ssh`` and a shell.
    """
    import ipaddress

    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    scope = getattr(address, "scope_id", None)
    return scope is None or (0 < len(scope) <= 64 and set(scope) <= _SCOPE_CHARS)


def check_ssh_name(ssh: object) -> str:
    """``ssh`` if it is ``[user@]host`` with an RFC 1123 host name or an IP literal; else ``ValueError``.

    ``mlx.launch`` and ``mlx.distributed_config`` pass the name to ``ssh``;
    one starting with ``-`` is read as an option (``-oProxyCommand=...``
    runs a command), and shell metacharacters reach a shell on the far side.
    """
    if not isinstance(ssh, str):
        raise TypeError(f"a host's ssh name must be a string, not {type(ssh).__name__} {shown(ssh)}")
    ssh = require_str(ssh, "a host's ssh name")  # a plain str: a subclass's methods never run later
    user, at, host = ssh.rpartition("@")
    problem = None
    if at and (not user or user[0] == "-" or not set(user) <= _USER_CHARS):
        problem = "the user name may hold only letters, digits, '.', '_' and '-' (not first)"
    elif not (_is_ip(host) or _is_hostname(host)):
        problem = (
            "it is neither an IP address nor a host name (RFC 1123: letters, digits and '-', "
            "dot-separated labels of 1-63 characters not starting or ending with '-', 253 at most, "
            "the last not all digits; an IPv6 zone after '%' is an interface name or number)"
        )
    if problem:
        raise ValueError(f"host {shown(ssh)} is not a usable ssh name: {problem}")
    return ssh


def _is_hostname(host: str) -> bool:
    """RFC 1123 host name whose last label is not all digits.

    An all-digit last label (``999.1.1.1``, ``1.2.3``, ``1234``) is a
    malformed IPv4 address, not a name: ``inet_aton`` reads ``1.2.3`` as
    ``1.2.0.3`` and ``1234`` as ``0.0.4.210`` (RFC 3696 section 2).
    """
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253 or name.rsplit(".", 1)[-1].isdigit():
        return False
    for label in name.split("."):
        if not 1 <= len(label) <= 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not set(label) <= _LABEL_CHARS:
            return False
    return True


def check_ip(ip: object, *, host: object = None) -> str:
    """``ip`` if it is an IPv4 or IPv6 literal, else ``TypeError``/``ValueError``."""
    if not isinstance(ip, str):
        raise TypeError(
            f"host {shown(host)}: each of ips must be a string, not {type(ip).__name__} {shown(ip)}"
        )
    ip = require_str(ip, f"host {shown(host)}: ips entry")
    if not _is_ip(ip):
        raise ValueError(
            f"host {shown(host)}: ips holds {shown(ip)}, which is not an IP address (e.g. 192.168.1.10)"
        )
    return ip


def write_hostfile(path: str | os.PathLike[str], hosts: Iterable[Host | Mapping[str, Any]]) -> Path:
    """Write ``hosts`` as the JSON list every ``mlx.launch`` reads, with a ``backend`` per host."""
    target = Path(require_path(path, "write_hostfile(path=...)"))
    items = require_list(hosts, "write_hostfile(hosts=...)", item="Host objects or dicts, in rank order")
    entries = [h if isinstance(h, Host) else Host.from_json(h) for h in items]  # type: ignore[arg-type]  # from_json checks
    if not entries:
        raise ValueError("write_hostfile(hosts=...): a hostfile needs at least one host")
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
    from ..validation import require_optional_bool

    require_optional_bool(needs_p2p, "launch_arguments(needs_p2p=...)")
    path = require_path(hostfile, "launch_arguments(hostfile=...)")
    hosts = read_hostfile(path)
    cluster = cluster_of(hosts)
    args = ["--hostfile", path]
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
