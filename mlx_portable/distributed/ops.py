"""Collectives and point-to-point that run whatever device the program uses.

Where MLX runs each distributed primitive:

* ring, MPI and JACCL communicate from the CPU: their primitives have no GPU
  kernel on Metal (``[Send::eval_gpu] has no GPU implementation.``) and CUDA's
  ``Send``/``Recv`` have none either (``Send has no CUDA implementation.``);
  asking for ``stream=mx.gpu`` therefore fails at evaluation.
* NCCL runs collectives on the GPU and has no point-to-point at all
  (``[nccl] Send not supported in NCCL backend.``).

These wrappers take the same arguments as ``mx.distributed``'s functions and
put each operation on a stream that can run it: a CPU stream for every
non-NCCL backend (the inputs may come from GPU streams; MLX orders the
streams), the caller's choice for NCCL collectives, and a clear
:class:`DistributedError` for NCCL send/recv.  ``sum_scatter`` (mlx >= 0.29,
not implemented by ring) falls back to ``all_sum`` plus a slice.  They hold
no NumPy round trip, so float16 and bfloat16 travel as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import _mlx
from .._log import get_logger
from . import group as group_state
from .errors import DistributedError

__all__ = [
    "all_gather",
    "all_max",
    "all_min",
    "all_sum",
    "communication_device",
    "recv",
    "recv_like",
    "send",
    "sum_scatter",
]

logger = get_logger("mlx_portable.distributed")

_P2P = frozenset({"send", "recv", "recv_like"})
#: Backends that communicate from the CPU: with no stream asked for, every
#: wrapper takes this two-lookup path (it runs on every token of a pipeline).
_FROM_CPU = frozenset({"ring", "mpi", "jaccl"})


def communication_device(backend: str | None, op: str, requested: str | None = None) -> str | None:
    """Where ``op`` must run on ``backend``: ``"cpu"``, or ``None`` for "as requested".

    ``requested`` is the caller's device type (``"cpu"``/``"gpu"``/``None``).
    Raises :class:`DistributedError` for point-to-point on NCCL.
    """
    if backend == "nccl":
        if op in _P2P:
            raise DistributedError(
                f"{op} is not available on the NCCL backend (MLX: '[nccl] Send not supported in NCCL "
                "backend.'). Initialize with mlx_portable.distributed.init(needs_p2p=True) or set "
                "MLX_PORTABLE_DISTRIBUTED_BACKEND=ring, and launch with mlx.launch --backend ring."
            )
        return requested
    return "cpu"


def _device_type(stream: Any) -> str | None:
    """``"cpu"``/``"gpu"`` for a Stream, Device or DeviceType; ``None`` for ``None``."""
    if stream is None:
        return None
    device = getattr(stream, "device", stream)
    kind = getattr(device, "type", device)
    name = getattr(kind, "name", str(kind))
    return "gpu" if "gpu" in name else "cpu"


def _route(op: str, stream: Any) -> Any:
    backend = group_state._backend
    if backend is None:
        backend = group_state.current_distributed_backend()
    if stream is None and backend != "nccl":
        return _mlx.core().cpu
    requested = _device_type(stream)
    where = communication_device(backend, op, requested)
    if where == "cpu" and requested != "cpu":
        if requested == "gpu":
            logger.debug("%s on %s: routed from the GPU to a CPU stream", op, backend)
        return _mlx.core().cpu
    return stream


def _require_array(mx: Any, x: object, op: str) -> None:
    """An ``mx.array``, or a ``TypeError`` naming the call.

    A one-process group returns ``x`` unchanged, so ``sum_scatter("x")``
    would otherwise answer ``'x'``.
    """
    array = getattr(mx, "array", None)
    if isinstance(array, type) and not isinstance(x, array):
        from ..validation import shown

        raise TypeError(f"{op}(x=...) takes an mx.array, not {type(x).__name__} {shown(x)}")


def all_sum(x: Any, group: Any = None, *, stream: Any = None) -> Any:
    """``mx.distributed.all_sum`` on a stream that can run it."""
    mx = _mlx.loaded or _mlx.core()
    _require_array(mx, x, "all_sum")
    on = mx.cpu if stream is None and group_state._backend in _FROM_CPU else _route("all_sum", stream)
    return mx.distributed.all_sum(x, group=group, stream=on)


def all_max(x: Any, group: Any = None, *, stream: Any = None) -> Any:
    """``mx.distributed.all_max`` on a stream that can run it."""
    mx = _mlx.loaded or _mlx.core()
    _require_array(mx, x, "all_max")
    on = mx.cpu if stream is None and group_state._backend in _FROM_CPU else _route("all_max", stream)
    return mx.distributed.all_max(x, group=group, stream=on)


def all_min(x: Any, group: Any = None, *, stream: Any = None) -> Any:
    """``mx.distributed.all_min`` on a stream that can run it."""
    mx = _mlx.loaded or _mlx.core()
    _require_array(mx, x, "all_min")
    on = mx.cpu if stream is None and group_state._backend in _FROM_CPU else _route("all_min", stream)
    return mx.distributed.all_min(x, group=group, stream=on)


def all_gather(x: Any, group: Any = None, *, stream: Any = None) -> Any:
    """``mx.distributed.all_gather`` (concatenated on axis 0) on a stream that can run it."""
    mx = _mlx.loaded or _mlx.core()
    _require_array(mx, x, "all_gather")
    on = mx.cpu if stream is None and group_state._backend in _FROM_CPU else _route("all_gather", stream)
    return mx.distributed.all_gather(x, group=group, stream=on)


def sum_scatter(x: Any, group: Any = None, *, stream: Any = None) -> Any:
    """Sum over ranks, then keep this rank's slice of axis 0.

    Uses ``mx.distributed.sum_scatter`` where the backend implements it
    (NCCL); elsewhere (ring: ``[ring] sum_scatter not supported.``; mlx <
    0.29 has no function) it is ``all_sum`` and a slice.
    """
    mx = _mlx.loaded or _mlx.core()
    _require_array(mx, x, "sum_scatter")
    dist = mx.distributed
    group = group if group is not None else dist.init()
    size = group.size()
    if size == 1:
        return x
    if x.ndim == 0 or x.shape[0] % size:
        raise ValueError(
            f"sum_scatter: axis 0 of shape {tuple(x.shape)} must be divisible by the group size {size}"
        )
    if group_state.current_distributed_backend() == "nccl" and hasattr(dist, "sum_scatter"):
        return dist.sum_scatter(x, group=group, stream=_route("sum_scatter", stream))
    chunk = x.shape[0] // size
    start = group.rank() * chunk
    return all_sum(x, group, stream=stream)[start : start + chunk]


def send(x: Any, dst: int, group: Any = None, *, stream: Any = None) -> Any:
    """``mx.distributed.send`` on a CPU stream (refused on NCCL with a remedy)."""
    mx = _mlx.loaded or _mlx.core()
    _require_array(mx, x, "send")
    on = mx.cpu if stream is None and group_state._backend in _FROM_CPU else _route("send", stream)
    return mx.distributed.send(x, dst, group=group, stream=on)


def recv(shape: Sequence[int], dtype: Any, src: int, group: Any = None, *, stream: Any = None) -> Any:
    """``mx.distributed.recv`` on a CPU stream (refused on NCCL with a remedy)."""
    mx = _mlx.loaded or _mlx.core()
    on = mx.cpu if stream is None and group_state._backend in _FROM_CPU else _route("recv", stream)
    return mx.distributed.recv(shape, dtype, src, group=group, stream=on)


def recv_like(x: Any, src: int, group: Any = None, *, stream: Any = None) -> Any:
    """``mx.distributed.recv_like`` on a CPU stream (refused on NCCL with a remedy)."""
    mx = _mlx.loaded or _mlx.core()
    _require_array(mx, x, "recv_like")
    on = mx.cpu if stream is None and group_state._backend in _FROM_CPU else _route("recv_like", stream)
    return mx.distributed.recv_like(x, src, group=group, stream=on)
