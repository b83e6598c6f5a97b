"""``metal_namespace``: ``mx.metal.device_info()`` answers off Metal, with the keys older code reads.

Why: mlx-lm up to 0.25 sizes its wired limit from Metal's device facts
without asking whether Metal is there (``generate.wired_limit`` and the
trainer: ``mx.metal.device_info()["max_recommended_working_set_size"]``);
0.26-0.31 ask ``mx.metal.is_available()`` first, but their server, DWQ and
other projects of that time do not always.  Off Metal that fails on every
supported mlx, differently per version::

    RuntimeError: [metal::device_info] Cannot get device info without metal backend   (mlx < 0.30.4)
    KeyError: 'max_recommended_working_set_size'                                      (mlx >= 0.30.4: {})

Which: every mlx 0.26.5-0.32.4, on CUDA and the CPU, and on a Mac whose
default device is the CPU (mlx >= 0.30.4's ``mx.metal.device_info`` is a
deprecated alias of ``mx.device_info()`` for the *default* device).

What the replacement returns -- only ever more than mlx's own function:

* on Metal, mlx's own dict (for the GPU, whatever the default device);
* elsewhere the dict's Metal keys, filled with what is true of the device
  the process computes on (the CUDA GPU when mlx-portable's backend is CUDA,
  else the CPU):

  ``device_name``, ``architecture`` -- the device's (CPU model and machine,
  or GPU name and ``sm_XY``); ``memory_size`` -- its memory (system RAM, or
  the GPU's total memory); ``max_recommended_working_set_size`` -- the same
  figure: off Metal nothing is wired (``mx.set_wired_limit`` returns 0 and
  does nothing on CPU and CUDA, so older mlx-lm's ``wired_limit`` becomes a
  harmless no-op) and mlx's own memory limit governs, so the honest
  "working set" is the memory there is; mlx-lm then warns only when a model
  exceeds 90% of it; ``max_buffer_length`` -- the same figure (no per-buffer
  cap off Metal).  ``resource_limit`` (the Metal resource count) has no
  counterpart and is left out.

The rest of ``mx.metal`` needs nothing on any supported version off Metal
(checked on the CPU wheels 0.26.5, 0.30.0, 0.30.6, 0.32.4): ``get_active_memory``,
``get_peak_memory``, ``get_cache_memory``, ``reset_peak_memory``, ``clear_cache``,
``set_memory_limit``, ``set_cache_limit`` and ``set_wired_limit`` delegate to
the top-level functions (printing mlx's deprecation line once),
``start_capture`` / ``stop_capture`` do nothing, and ``is_available()`` is
False.  The test pins each of these per version.

Upstream: ml-explore/mlx 0.24.1 (top-level memory API, ``mx.metal.*``
deprecated), 0.30.4 (``mx.device_info``); ml-explore/mlx-lm 0.26.0 (guards
on ``mx.metal.is_available()``).
"""

from __future__ import annotations

from ..registry.registry import Patch, skip

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext, Verdict

__all__ = ["PATCHES", "metal_namespace", "portable_metal_device_info"]

#: The keys Metal's dict has that callers of ``mx.metal.device_info()`` read.
METAL_KEYS = ("device_name", "architecture", "memory_size", "max_recommended_working_set_size")


def portable_metal_device_info(mx: Any) -> dict[str, Any]:
    """The Metal-shaped facts of the device this process computes on (not Metal)."""
    from .device_info import _WithoutAddedFunctions

    view = _WithoutAddedFunctions(mx)
    info: Any = None
    try:
        from ..backends.selection import current_backend

        # The backend mlx-portable runs on (not Metal: this is reached only where
        # Metal is unavailable), asked through the view without the added functions.
        backend_class: Any = type(current_backend())  # every table class takes mx (see selection)
        info = backend_class(view).device_info()
    except Exception:  # no usable backend: describe the CPU
        info = None
    if info is None:
        from ..backends.cpu import CpuBackend

        info = CpuBackend(view).device_info()
    from ..installed_probe import host_memory

    memory = info.memory_size or host_memory() or 0
    return {
        "device_name": info.device_name or "",
        "architecture": info.architecture or "",
        "memory_size": memory,
        "max_recommended_working_set_size": memory,
        "max_buffer_length": memory,
    }


def _wrap(mx: Any, original: Any) -> Any:
    def device_info() -> dict[str, Any]:
        if mx.metal.is_available():
            found = dict(original())
            if "max_recommended_working_set_size" in found:
                return found
            native = getattr(mx, "device_info", None)
            if native is not None:  # mlx >= 0.30.4 aliases the default device: ask for the GPU
                return dict(native(mx.gpu))
            return found
        return portable_metal_device_info(mx)

    return device_info


def _check(ctx: PatchContext) -> Verdict | None:
    metal = getattr(ctx.mx, "metal", None)
    if metal is None or not hasattr(metal, "device_info"):
        return skip(f"mlx {ctx.mlx_version} has no mx.metal.device_info")
    return None


def _apply(ctx: PatchContext) -> None:
    metal = ctx.mx.metal
    ctx.wrap(
        metal,
        "device_info",
        lambda original: _wrap(ctx.mx, original),
        doc="\n\nmlx-portable: off Metal, the same keys for the device in use.",
    )


metal_namespace = Patch(
    name="metal_namespace",
    summary="mx.metal.device_info() off Metal returns Metal's keys for the device in use (RAM / GPU memory)",
    why=(
        "mlx-lm <= 0.25 reads mx.metal.device_info()['max_recommended_working_set_size'] unguarded: "
        "RuntimeError: [metal::device_info] Cannot get device info without metal backend (mlx < 0.30.4), "
        "KeyError: 'max_recommended_working_set_size' (mlx >= 0.30.4) on CUDA and the CPU."
    ),
    apply=_apply,
    check=_check,
    when="import",
    upstream="https://github.com/ml-explore/mlx/releases/tag/v0.30.4",
)

PATCHES = (metal_namespace,)
