"""All of mlx-portable's CUDA support, behind this one facade.

NVIDIA library and header discovery, preload, subprocess environment and
diagnosis; the ``cuda`` Backend lives in :mod:`mlx_portable.backends.cuda`, the
``cuda_libraries``/``cuda_home`` shims in :mod:`mlx_portable.patches.cuda_libraries`.
Code outside this package asks CUDA questions here rather than in the
modules below:

- :func:`subprocess_env`, :func:`cuda_status`: the public entry points
  (:mod:`.runtime`);
- :func:`visible_devices`: ``CUDA_VISIBLE_DEVICES`` as CUDA reads it, the one
  parser of that variable;
- :func:`gpu_names`, :func:`built_into`, :func:`missing_library_message`.

The modules behind it:

- :mod:`.layout`: installed backend package, ``nvidia/*/lib`` folders and CUDA
  header folders of pip wheels anywhere on ``sys.path`` (cheap: ``os`` only,
  it runs at ``import mlx_portable``);
- :mod:`.packages`: which pip package provides each NVIDIA library;
- :mod:`.elf`: the dynamic section of a shared object (needed libraries, RPATH);
- :mod:`.plan`: which NVIDIA libraries the dynamic loader would not find, in
  dependency order, and loading them with ``RTLD_GLOBAL`` before ``mlx.core``;
- :mod:`.driver`: the NVIDIA kernel driver's version and GPUs from ``/proc``,
  and ``CUDA_VISIBLE_DEVICES`` as CUDA reads it;
- :mod:`.headers`: mlx's own CUDA header search, and the ``CUDA_HOME`` to set;
- :mod:`.diagnose`, :mod:`.status`: error texts and the status doctor shows;
- :mod:`.nvml`: free and total GPU memory without a CUDA context.

The facade's functions import their module when called: this package is on
the ``import mlx_portable`` path.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = [
    "built_into",
    "cuda_status",
    "gpu_names",
    "missing_library_message",
    "subprocess_env",
    "visible_devices",
]


def visible_devices(env: Mapping[str, str] | None = None) -> list[str] | None:
    """The GPUs ``CUDA_VISIBLE_DEVICES`` leaves visible (``None``: unset, all); see :mod:`.driver`."""
    from .driver import visible_devices as read

    return read(env)


def subprocess_env(env: Mapping[str, str] | None = None, *, autoactivate: bool = False) -> dict[str, str]:
    """See :func:`mlx_portable.cuda.runtime.subprocess_env`."""
    from .runtime import subprocess_env as build

    return build(env, autoactivate=autoactivate)


def cuda_status() -> dict[str, object]:
    """See :func:`mlx_portable.cuda.runtime.cuda_status`."""
    from .runtime import cuda_status as gather

    return gather()


def gpu_names() -> list[str]:
    """The GPUs the NVIDIA kernel driver lists (no CUDA context is created)."""
    from ..backends.cuda import proc_gpu_names

    return proc_gpu_names()


def built_into(mx: Any) -> bool:
    """Whether this ``mlx.core`` was built with CUDA."""
    from ..backends.cuda import CudaBackend

    return CudaBackend.built_into(mx)


def missing_library_message(soname: str, error_text: str) -> str:
    """What to install when ``<soname>: cannot open shared object file``."""
    from .diagnose import missing_library_message as message

    return message(soname, error_text)
