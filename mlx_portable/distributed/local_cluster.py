"""Run N ranks of a program on this machine over ring (127.0.0.1), bounded in time.

For tests, benchmarks and trying a distributed program without a cluster:
free ports are picked, a ring hostfile written, ``MLX_HOSTFILE`` and
``MLX_RANK`` set for each rank, and every process is killed if the deadline
passes.  Unlike ``mlx.launch`` it does not stop the other ranks when one
fails, so what the survivors do can be observed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RankResult", "free_ports", "run_local", "write_ring_hostfile"]


@dataclass(frozen=True)
class RankResult:
    """How one rank ended: ``returncode`` is ``None`` if it was killed at the deadline."""

    rank: int
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports free on ``host`` right now (held together while picked)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def write_ring_hostfile(path: str | os.PathLike[str], ports: Sequence[int], host: str = "127.0.0.1") -> Path:
    """The file ``MLX_HOSTFILE`` points the ring backend at: one ``["ip:port"]`` list per rank."""
    target = Path(path)
    target.write_text(json.dumps([[f"{host}:{port}"] for port in ports]), encoding="utf-8")
    return target


def _check_run_local(argv: object, size: object, timeout: object) -> None:
    from ..validation import require_timeout, shown

    if isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence):
        raise TypeError(
            f"run_local(argv=...) takes a list of arguments for python, such as ['-c', 'print(1)'], "
            f"not {type(argv).__name__} {shown(argv)}"
        )
    if not all(isinstance(a, (str, os.PathLike)) for a in argv):
        raise TypeError(f"run_local(argv=...): every argument must be a string, got {shown(list(argv))}")
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"run_local(size=...) must be an int, not {type(size).__name__} {shown(size)}")
    if not 1 <= size <= 256:
        raise ValueError(f"run_local(size={size}): give between 1 and 256 ranks")
    if require_timeout(timeout, "run_local(timeout=...)", zero_waits_forever=False) is None:
        raise ValueError("run_local(timeout=None): give a number of seconds; every rank is killed after it")


def run_local(
    argv: Sequence[str],
    size: int,
    *,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    rank_env: Mapping[int, Mapping[str, str]] | None = None,
    python: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> list[RankResult]:
    """Run ``python argv...`` as ``size`` ring ranks on 127.0.0.1; return each rank's result.

    ``env`` is added to every rank's environment, ``rank_env[r]`` to rank
    ``r``'s.  Every process still running ``timeout`` seconds after the start
    is killed (its ``returncode`` is then ``None``).
    """
    _check_run_local(argv, size, timeout)
    python = python or sys.executable
    with tempfile.TemporaryDirectory(prefix="mlx-portable-ring-") as tmp, ExitStack() as files:
        folder = Path(tmp)
        hostfile = write_ring_hostfile(folder / "hosts.json", free_ports(size))
        outputs = [
            (
                files.enter_context(open(folder / f"{r}.out", "w+b")),
                files.enter_context(open(folder / f"{r}.err", "w+b")),
            )
            for r in range(size)
        ]
        procs: list[subprocess.Popen[bytes]] = []
        ended: dict[int, float] = {}
        started = time.monotonic()
        try:
            for rank, (out, err) in enumerate(outputs):
                rank_vars = {
                    **os.environ,
                    **(env or {}),
                    **((rank_env or {}).get(rank, {})),
                    "MLX_HOSTFILE": str(hostfile),
                    "MLX_RANK": str(rank),
                }
                procs.append(
                    subprocess.Popen([python, *argv], env=rank_vars, stdout=out, stderr=err, cwd=cwd)
                )
            deadline = started + timeout
            while len(ended) < size and time.monotonic() < deadline:
                for rank, proc in enumerate(procs):
                    if rank not in ended and proc.poll() is not None:
                        ended[rank] = time.monotonic() - started
                time.sleep(0.02)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
            for proc in procs:
                proc.wait()
        results = []
        for rank, (proc, (out, err)) in enumerate(zip(procs, outputs, strict=True)):
            out.seek(0)
            err.seek(0)
            results.append(
                RankResult(
                    rank=rank,
                    returncode=proc.returncode if rank in ended else None,
                    stdout=out.read().decode(errors="replace"),
                    stderr=err.read().decode(errors="replace"),
                    seconds=ended.get(rank, timeout),
                )
            )
        return results
