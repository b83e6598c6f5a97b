"""When can an mlx-lm Metal kernel run, decided per call."""

from __future__ import annotations

import mlx.core as mx

from ..backends.metal import MetalBackend

__all__ = ["metal_kernels_usable", "usable_now"]


def metal_kernels_usable() -> bool:
    """Whether a ``mx.fast.metal_kernel`` call would run now.

    It needs an mlx built with Metal *and* the GPU as the default device: on
    a Mac whose default device is the CPU the kernel raises as it does on a
    machine without Metal.  Both questions are cheap (no allocation, no
    synchronisation), so the patched functions ask on every call and follow
    ``mx.set_default_device`` / ``mx.stream`` changes made after import.
    """
    return MetalBackend.built_into(mx) and mx.default_device() == mx.gpu


def usable_now() -> bool:
    """:func:`metal_kernels_usable`, looked up at each call (tests substitute it to simulate Metal)."""
    return metal_kernels_usable()
