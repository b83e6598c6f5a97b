"""The ring backend's own per-rank hostfile (``MLX_HOSTFILE``), as exo writes it.

Where ``mlx.launch`` reads a list of hosts (:mod:`.hostfile`), the ring
backend itself reads, per rank, the ``"ip:port"`` addresses it listens on or
connects to: exo writes one such file per node (its own rank ``0.0.0.0:<port>``,
ranks it never connects to ``198.51.100.1:0``).  Both formats are read with
the same limits and checked alike (:func:`check_ip`), and each reader names
the other when handed the other format.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..validation import shown
from .hostfile import _read_small_text, check_ip

__all__ = ["check_rank_address", "read_rank_hostfile", "write_rank_hostfile"]

#: The highest TCP port.
_MAX_PORT = 65535


def check_rank_address(address: object, *, rank: int) -> str:
    """``address`` if it is ``"ip:port"`` as mlx's ring backend parses it, else ``TypeError``/``ValueError``.

    The IP is checked as :func:`check_ip` checks a launcher hostfile's
    ``ips``; the ring backend splits at the *first* ``:``, so an IPv6 address
    cannot be written in this format (mlx would fail with ``Can't parse
    address``) and is refused here.  Port 0 is allowed: exo writes it for the
    ranks a node never connects to.
    """
    if not isinstance(address, str):
        raise TypeError(
            f'rank {rank}: each address must be an "ip:port" string, '
            f"not {type(address).__name__} {shown(address)}"
        )
    ip, colon, port = address.partition(":")
    if not colon:
        raise ValueError(f'rank {rank}: {shown(address)} is not "ip:port" (e.g. "192.168.1.10:5000")')
    if ":" in port:
        raise ValueError(
            f"rank {rank}: {shown(address)}: mlx's ring backend cannot parse an IPv6 address "
            "(it splits at the first ':'); use an IPv4 address"
        )
    check_ip(ip, host=f"rank {rank}")
    if not (port.isascii() and port.isdigit()) or int(port) > _MAX_PORT:
        raise ValueError(f"rank {rank}: {shown(address)}: the port must be a number from 0 to {_MAX_PORT}")
    return address


def _rank_entry(entry: object, rank: int) -> tuple[str, ...]:
    if isinstance(entry, str):
        return (check_rank_address(entry, rank=rank),)
    if isinstance(entry, (list, tuple)) and entry:
        return tuple(check_rank_address(a, rank=rank) for a in entry)
    raise ValueError(
        f'rank {rank}: expected an "ip:port" string or a non-empty list of them, got {shown(entry)}'
    )


def read_rank_hostfile(path: str | os.PathLike[str]) -> list[tuple[str, ...]]:
    """Read the ring backend's hostfile (``MLX_HOSTFILE``): per rank, its ``"ip:port"`` addresses.

    Two shapes, both read by mlx's ring backend: exo's one address per rank
    (``["0.0.0.0:5000", "10.0.0.2:5000"]``) and several per rank
    (``[["10.0.0.1:5000", "10.0.0.1:5001"], ...]``).  Read with the same
    limits as :func:`read_hostfile` (a regular UTF-8 file of at most
    :data:`.hostfile.MAX_HOSTFILE_BYTES`), and every address checked
    (:func:`check_rank_address`).  ``mlx.launch``'s own hostfile (objects
    with ``"ssh"``) is refused with a pointer to :func:`read_hostfile`.
    """
    name = os.fspath(path)
    text = _read_small_text(name)
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError(f"{name}: the JSON is nested too deeply to be a hostfile") from None
    except ValueError as exc:  # JSONDecodeError
        raise ValueError(
            f'{name} is not valid JSON ({exc}); a ring hostfile is a JSON list of "ip:port"'
        ) from None
    if isinstance(data, Mapping) or (isinstance(data, list) and any(isinstance(e, Mapping) for e in data)):
        raise ValueError(f'{name} is an mlx.launch hostfile (hosts with "ssh"); read it with read_hostfile()')
    if not isinstance(data, list):
        raise ValueError(
            f'{name}: expected a JSON list with one "ip:port" entry (or a list of them) per rank'
        )
    if not data:
        raise ValueError(f"{name}: a ring hostfile needs at least one rank")
    try:
        return [_rank_entry(entry, rank) for rank, entry in enumerate(data)]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: {exc}") from None


def write_rank_hostfile(path: str | os.PathLike[str], ranks: Iterable[str | Sequence[str]]) -> Path:
    """Write the ring backend's per-rank hostfile; a rank with one address is written as exo writes it.

    ``ranks`` holds, per rank, an ``"ip:port"`` string or a list of them;
    checked as :func:`read_rank_hostfile` checks, so what is written reads back
    unchanged.
    """
    if isinstance(ranks, (str, bytes, Mapping)) or not isinstance(ranks, Iterable):
        raise TypeError(
            'write_rank_hostfile() takes a list with an "ip:port" (or a list of them) per rank, '
            f"not {shown(ranks)}"
        )
    entries = [_rank_entry(entry, rank) for rank, entry in enumerate(ranks)]
    if not entries:
        raise ValueError("a ring hostfile needs at least one rank")
    data = [e[0] if len(e) == 1 else list(e) for e in entries]
    target = Path(path)
    target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return target
