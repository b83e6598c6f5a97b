"""Streams that any thread may use, on every mlx: :func:`any_thread_stream`.

Why: before mlx 0.31.2 a stream was a process-wide object -- code could make
one at module level (``s = mx.new_stream(mx.gpu)``) and use it from worker
threads.  mlx binds streams to the thread that created them, GPU streams from
0.31.2 and CPU streams from 0.32.0, so that code now fails in the worker::

    RuntimeError: There is no Stream(cpu, 0) in current thread.

(``Stream(gpu, N)`` on Metal and CUDA).  mlx 0.32.0 added
``mx.new_thread_unsafe_stream``: a stream any thread may evaluate on, with
the caveat that evaluations on it must not run concurrently (mlx does not
lock it; the application serialises its use, as it had to before 0.31.2).

:func:`any_thread_stream` returns the right stream for the installed mlx:

=================  ===========================================================
mlx                stream returned
=================  ===========================================================
< 0.31.2           ``mx.new_stream(device)`` (no stream is bound to a thread)
0.31.2 - 0.31.x    CPU: ``mx.new_stream(device)`` (CPU streams not bound yet);
                   GPU: ``mx.new_thread_local_stream(device)`` -- one stream
                   per thread, usable with ``mx.stream(...)`` anywhere (mlx
                   0.31 has no thread-free GPU stream)
>= 0.32.0          ``mx.new_thread_unsafe_stream(device)``
=================  ===========================================================

Code you can change: call :func:`any_thread_stream` where it called
``mx.new_stream``.  Code you cannot change (a library's module-level
stream): set ``MLX_PORTABLE_THREAD_FREE_STREAMS=1`` and the
``thread_free_streams`` patch makes ``mx.new_stream`` itself return such a
stream.  It is opt-in because it trades mlx's new guarantee (a stream is
never used by two threads at once) for the old behaviour.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["any_thread_stream"]


def any_thread_stream(device: Any = None, *, mx: Any = None) -> Any:
    """A stream on ``device`` (default: mlx's default device) that any thread can use; see the module."""
    from .validation import require_mx, shown

    require_mx(mx, "any_thread_stream(mx=...)")
    if mx is None:
        from . import _mlx

        mx = _mlx.core()
    from .registry.originals import get_original

    if device is None:
        device = mx.default_device()
    elif not isinstance(device, _device_types(mx)):
        raise TypeError(
            f"any_thread_stream(device=...) must be an mx.Device such as mx.gpu or mx.cpu, or None, "
            f"not {type(device).__name__} {shown(device)}"
        )
    new_stream = get_original(mx, "new_stream")  # mlx's own, even while thread_free_streams is applied
    unsafe = getattr(mx, "new_thread_unsafe_stream", None)
    if unsafe is not None:
        return unsafe(device)
    try:
        get_original(mx, "new_thread_local_stream")
    except AttributeError:
        return new_stream(device)  # < 0.31.2 (mlx-portable may have added the name): not bound
    kind = device.type if hasattr(device, "type") else device
    if kind == mx.cpu:
        return new_stream(device)  # 0.31.x binds GPU streams only
    return mx.new_thread_local_stream(device)


def _device_types(mx: Any) -> tuple[type, ...]:
    """``mx.Device`` and ``mx.DeviceType`` (``mx.cpu`` is the latter), where this mlx has them."""
    found = tuple(
        t for t in (getattr(mx, "Device", None), getattr(mx, "DeviceType", None)) if isinstance(t, type)
    )
    return found or (object,)
