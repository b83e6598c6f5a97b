"""Which pip package provides each NVIDIA shared library libmlx needs.

Taken from the ``Requires-Dist`` of ``mlx-cuda`` (<= 0.30.0), ``mlx-cuda-12``
and ``mlx-cuda-13`` (0.30.1+): CUDA 13 wheels use the unsuffixed package names
(``nvidia-cublas``), CUDA 12 wheels the ``-cu12`` ones.
"""

from __future__ import annotations

import re

__all__ = ["LIBRARY_PACKAGES", "library_hint", "package_for_library"]

#: library stem -> (CUDA 12 package, CUDA 13 package)
LIBRARY_PACKAGES: dict[str, tuple[str, str]] = {
    "libcublas": ("nvidia-cublas-cu12", "nvidia-cublas"),
    "libcublasLt": ("nvidia-cublas-cu12", "nvidia-cublas"),
    "libnvrtc": ("nvidia-cuda-nvrtc-cu12", "nvidia-cuda-nvrtc"),
    "libnvrtc-builtins": ("nvidia-cuda-nvrtc-cu12", "nvidia-cuda-nvrtc"),
    "libcudnn": ("nvidia-cudnn-cu12", "nvidia-cudnn-cu13"),
    "libnccl": ("nvidia-nccl-cu12", "nvidia-nccl-cu13"),
    "libcufft": ("nvidia-cufft-cu12", "nvidia-cufft"),
    "libcusolver": ("nvidia-cusolver-cu12", "nvidia-cusolver"),
    "libcudart": ("nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime"),
}

_SONAME_RE = re.compile(r"^(lib[A-Za-z_+-]+?)(?:_\w+)?\.so(?:\.(\d+))?")


def package_for_library(soname: str) -> tuple[str, int | None] | None:
    """``"libcublasLt.so.13"`` -> ``("nvidia-cublas", 13)``; ``None`` if unknown."""
    match = _SONAME_RE.match(soname)
    if match is None:
        return None
    stem, major_text = match.group(1), match.group(2)
    pair = LIBRARY_PACKAGES.get(stem)
    if pair is None:
        return None
    major = int(major_text) if major_text else None
    # cufft and cusolver carry their own majors: 11 ships with CUDA 12, 12
    # with CUDA 13.  cudnn (9) and nccl (2) say nothing about CUDA: the CUDA 13
    # names are the default for those, as for an unversioned name.
    cuda12_major = 11 if stem in ("libcufft", "libcusolver") else 12
    if major == cuda12_major:
        return pair[0], major
    return pair[1], major

def library_hint(soname: str, error_text: str) -> str:
    """A message for ``<soname>: cannot open shared object file``."""
    found = package_for_library(soname)
    if found is None:
        return (
            f"mlx.core cannot load {soname} ({error_text}). Install the NVIDIA "
            "package that provides it, or put its folder on LD_LIBRARY_PATH."
        )
    package, _ = found
    return (
        f"mlx.core cannot load {soname}, which the pip package {package} provides "
        f"({error_text}). Install it with: pip install {package}  -- if it is "
        "installed already (for example in another site-packages), import "
        "mlx_portable before mlx.core so it can preload the NVIDIA libraries, or "
        "start the process with mlx_portable.subprocess_env()."
    )
