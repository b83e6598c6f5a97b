"""``device_info``: ``mx.device_info`` and ``mx.device_count`` on mlx < 0.30.4.

Why: mlx-lm >= 0.30.6 calls ``mx.device_info()`` unguarded -- the wired-limit
helper ``maybe_set_recommended_wired_limit`` (used by ``generate``,
``stream_generate``, ``BatchGenerator`` and ``python -m mlx_lm.generate``),
and the server's system fingerprint.  On mlx < 0.30.4 that is::

    AttributeError: module 'mlx.core' has no attribute 'device_info'

Which: mlx < 0.30.4, every backend.

What the added functions return is what mlx >= 0.31.2 returns for the same
backend, built from :mod:`mlx_portable.backends` (the same code that fills
:class:`~mlx_portable.DeviceInfo`):

* CPU (``device_info(mx.cpu)``): ``device_name`` and ``architecture``;
* Metal GPU: mlx's own ``mx.metal.device_info()`` dict (``device_name``,
  ``architecture``, ``max_buffer_length``, ``max_recommended_working_set_size``,
  ``memory_size``, ``resource_limit``) -- called only where Metal is
  available, never elsewhere (it raises ``RuntimeError: [metal::device_info]
  Cannot get device info without metal backend`` there);
* CUDA GPU: what can be known without a CUDA context on these versions
  (``device_name`` from the NVIDIA driver); mlx >= 0.30.4 adds memory and
  compute-capability keys;
* a GPU on a wheel without one: ``{}``.

``device_info()`` with no argument describes the *current* default device (as
mlx >= 0.31.2 does), so a Mac whose default device is the CPU gets no
``max_recommended_working_set_size`` and mlx-lm leaves the wired limit alone.
``device_count(mx.gpu)`` is 1 with Metal, the number of visible NVIDIA GPUs
with CUDA, else 0; ``device_count(mx.cpu)`` is 1.

Both functions are added only where missing (always safe), so the patch
applies on ``import mlx_portable``.

Upstream: ml-explore/mlx 0.30.4 added ``mx.device_info``/``mx.device_count``.
"""

from __future__ import annotations

from ..registry.registry import Patch, obsolete

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext, Verdict

__all__ = ["PATCHES", "device_info", "make_device_count", "make_device_info"]

_ADDED = frozenset({"device_info", "device_count"})


class _WithoutAddedFunctions:
    """``mlx.core`` as the backends see it before this patch.

    The backends ask ``mx.device_info`` first when it exists; handing them
    this view keeps the added functions from calling themselves.
    """

    __slots__ = ("_mx",)

    def __init__(self, mx: Any) -> None:
        self._mx = mx

    def __getattr__(self, name: str) -> Any:
        if name in _ADDED:
            raise AttributeError(name)
        return getattr(self._mx, name)


def _device_type(mx: Any, d: Any) -> Any:
    if d is None:
        d = mx.default_device()
    kind = getattr(d, "type", d)  # an mx.Device, or a device type itself
    if kind == mx.cpu or kind == mx.gpu:
        return kind
    raise TypeError(f"device_info() takes an mx.Device, mx.cpu, mx.gpu or None, not {d!r}")


def _metal_available(mx: Any) -> bool:
    from ..backends.metal import MetalBackend

    return MetalBackend.built_into(mx)


def _cuda_available(mx: Any) -> bool:
    from .. import cuda

    return cuda.built_into(mx)


def _visible_cuda_gpus(found: int) -> int:
    """How many of ``found`` driver-listed GPUs ``CUDA_VISIBLE_DEVICES`` leaves visible."""
    from ..cuda import visible_devices

    entries = visible_devices()
    return found if entries is None else min(len(entries), found)


def make_device_count(mx: Any) -> Any:
    """A ``device_count(device_type)`` for ``mx`` (an mlx without one)."""

    def device_count(device_type: Any) -> int:
        """Number of available devices of ``device_type`` (``mx.cpu`` or ``mx.gpu``).

        Added by mlx-portable: this mlx predates ``mx.device_count`` (0.30.4).
        """
        if hasattr(device_type, "type") or not (device_type == mx.cpu or device_type == mx.gpu):
            raise TypeError(
                f"device_count() takes a device type (mx.cpu or mx.gpu), not {device_type!r}; "
                "for an mx.Device pass its .type"
            )
        if device_type == mx.cpu:
            return 1
        if _metal_available(mx):
            return 1
        if _cuda_available(mx):
            from .. import cuda

            return _visible_cuda_gpus(len(cuda.gpu_names()))
        return 0

    return device_count


def make_device_info(mx: Any) -> Any:
    """A ``device_info(d=None)`` for ``mx`` (an mlx without one)."""
    view = _WithoutAddedFunctions(mx)

    def device_info(d: Any = None) -> dict[str, str | int]:
        """Information about a device (default: the default device), as mlx >= 0.31.2 gives it.

        Added by mlx-portable: this mlx predates ``mx.device_info`` (0.30.4).
        """
        kind = _device_type(mx, d)
        if kind == mx.cpu:
            from ..backends.cpu import CpuBackend

            return _keys(CpuBackend(view).device_info())
        if _metal_available(mx):
            from ..backends.metal import MetalBackend

            # mx.metal.device_info() is called here only: Metal is available.
            return dict(MetalBackend(view).device_info().raw)
        if _cuda_available(mx) and make_device_count(mx)(mx.gpu) > 0:
            from ..backend_table import backend_class

            return _keys(backend_class("cuda")(view).device_info())
        return {}

    return device_info


def _keys(info: Any) -> dict[str, str | int]:
    """mlx's key names for the facts a :class:`DeviceInfo` holds."""
    out: dict[str, str | int] = {}
    if info.device_name is not None:
        out["device_name"] = info.device_name
    if info.architecture is not None:
        out["architecture"] = info.architecture
    if info.backend == "cuda":
        if info.compute_capability is not None:
            out["compute_capability_major"], out["compute_capability_minor"] = info.compute_capability
        if info.free_memory is not None:
            out["free_memory"] = info.free_memory
        if info.memory_size is not None:
            out["total_memory"] = info.memory_size
    return out


def _check(ctx: PatchContext) -> Verdict | None:
    mx = ctx.mx
    if all(hasattr(mx, name) for name in _ADDED):
        return obsolete(f"mlx {ctx.mlx_version} has mx.device_info and mx.device_count")
    return None


def _apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    if not hasattr(mx, "device_info"):
        ctx.set_attr(mx, "device_info", make_device_info(mx))
    if not hasattr(mx, "device_count"):
        ctx.set_attr(mx, "device_count", make_device_count(mx))


device_info = Patch(
    name="device_info",
    summary="adds mx.device_info and mx.device_count, with the keys newer mlx returns per backend",
    why=(
        "mlx-lm >= 0.30.6 calls mx.device_info() when generating; on mlx < 0.30.4: AttributeError: "
        "module 'mlx.core' has no attribute 'device_info'."
    ),
    apply=_apply,
    check=_check,
    mlx_versions="<0.30.4",
    when="import",
    upstream="https://github.com/ml-explore/mlx/releases/tag/v0.30.4",
)

PATCHES = (device_info,)
