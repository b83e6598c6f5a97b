"""Which pip package provides each NVIDIA shared library libmlx needs.

Taken from the ``Requires-Dist`` of ``mlx-cuda`` (<= 0.30.0), ``mlx-cuda-12``
and ``mlx-cuda-13`` (0.30.1+) and from the file lists of the ``nvidia-*``
wheels themselves.  CUDA 13 wheels use unsuffixed package names
(``nvidia-cublas``) and install into ``nvidia/cu13/lib``, except cuDNN and
NCCL (``nvidia-cudnn-cu13``, ``nvidia-nccl-cu13``), which keep their own
``nvidia/cudnn/lib`` and ``nvidia/nccl/lib`` folders; CUDA 12 wheels use the
``-cu12`` names and one ``nvidia/<name>/lib`` folder per package.

A library's soname does not always say its CUDA version: cuFFT and cuSOLVER
are ``.so.11`` for CUDA 12 and ``.so.12`` for CUDA 13, cuSPARSE is ``.so.12``
for both, cuDNN ``.so.9`` and NCCL ``.so.2`` for both.  So the package is
picked by the CUDA major of the installed backend package when it is known.
"""

from __future__ import annotations

import re

__all__ = [
    "CUDA_RUNTIME_HEADERS_PACKAGE",
    "DEFAULT_REQUIREMENTS",
    "LIBRARY_PACKAGES",
    "cuda_major_of_soname",
    "install_command_for",
    "package_for_library",
    "requirement_for",
    "stem_of",
]

#: library stem -> (CUDA 12 package, CUDA 13 package)
LIBRARY_PACKAGES: dict[str, tuple[str, str]] = {
    "libcublas": ("nvidia-cublas-cu12", "nvidia-cublas"),
    "libcublasLt": ("nvidia-cublas-cu12", "nvidia-cublas"),
    "libnvblas": ("nvidia-cublas-cu12", "nvidia-cublas"),
    "libnvrtc": ("nvidia-cuda-nvrtc-cu12", "nvidia-cuda-nvrtc"),
    "libnvrtc-builtins": ("nvidia-cuda-nvrtc-cu12", "nvidia-cuda-nvrtc"),
    "libcudnn": ("nvidia-cudnn-cu12", "nvidia-cudnn-cu13"),
    "libnccl": ("nvidia-nccl-cu12", "nvidia-nccl-cu13"),
    "libcufft": ("nvidia-cufft-cu12", "nvidia-cufft"),
    "libcufftw": ("nvidia-cufft-cu12", "nvidia-cufft"),
    "libcusolver": ("nvidia-cusolver-cu12", "nvidia-cusolver"),
    "libcusolverMg": ("nvidia-cusolver-cu12", "nvidia-cusolver"),
    "libcusparse": ("nvidia-cusparse-cu12", "nvidia-cusparse"),
    "libnvJitLink": ("nvidia-nvjitlink-cu12", "nvidia-nvjitlink"),
    "libcudart": ("nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime"),
}

#: The package holding ``cuda_runtime.h`` (what mlx's run-time compiler needs).
CUDA_RUNTIME_HEADERS_PACKAGE: dict[int, str] = {12: "nvidia-cuda-runtime-cu12", 13: "nvidia-cuda-runtime"}

#: The version pins mlx's own backend packages use (``mlx-cuda-12`` /
#: ``mlx-cuda-13`` 0.32.x ``Requires-Dist``); used when the installed backend
#: package's metadata does not name the package.
DEFAULT_REQUIREMENTS: dict[str, str] = {
    "nvidia-cublas-cu12": "nvidia-cublas-cu12==12.9.*",
    "nvidia-cuda-nvrtc-cu12": "nvidia-cuda-nvrtc-cu12==12.9.*",
    "nvidia-cuda-runtime-cu12": "nvidia-cuda-runtime-cu12==12.9.*",
    "nvidia-cufft-cu12": "nvidia-cufft-cu12==11.4.*",
    "nvidia-cudnn-cu12": "nvidia-cudnn-cu12==9.*",
    "nvidia-cublas": "nvidia-cublas==13.*",
    "nvidia-cuda-nvrtc": "nvidia-cuda-nvrtc==13.*",
    "nvidia-cuda-runtime": "nvidia-cuda-runtime==13.*",
    "nvidia-cufft": "nvidia-cufft==12.*",
    "nvidia-cusolver": "nvidia-cusolver==12.*",
    "nvidia-cudnn-cu13": "nvidia-cudnn-cu13==9.*",
}

# "libcublasLt.so.13" -> ("libcublasLt", "13"); "libnvrtc-builtins.so.13.5" ->
# ("libnvrtc-builtins", "13").  Longest stem first, so libcublasLt is not libcublas.
_SONAME_RE = re.compile(r"^(lib[A-Za-z_+-]+?)(?:\.alt)?\.so(?:\.(\d+))?(?:\.\d+)*$")
#: Stems whose soname major is not the CUDA major: (CUDA 12 major, CUDA 13 major).
_OWN_MAJORS: dict[str, tuple[int, int]] = {
    "libcufft": (11, 12),
    "libcufftw": (11, 12),
    "libcusolver": (11, 12),
    "libcusolverMg": (11, 12),
}


def stem_of(soname: str) -> str | None:
    """``"libcublasLt.so.13"`` -> ``"libcublasLt"``; ``None`` for a library not in the table.

    cuDNN's sub-libraries (``libcudnn_graph.so.9``) map to ``libcudnn``.
    """
    match = _SONAME_RE.match(soname)
    if match is None:
        return None
    stem = match.group(1)
    if stem not in LIBRARY_PACKAGES:
        stem = stem.split("_", 1)[0]
    return stem if stem in LIBRARY_PACKAGES else None


def cuda_major_of_soname(soname: str) -> int | None:
    """The CUDA major a soname implies, where it implies one (``None`` for cuDNN, NCCL, cuSPARSE)."""
    match = _SONAME_RE.match(soname)
    if match is None or match.group(2) is None:
        return None
    stem, major = stem_of(soname), int(match.group(2))
    if stem in _OWN_MAJORS:
        pair = _OWN_MAJORS[stem]
        return 12 if major == pair[0] else 13 if major == pair[1] else None
    if stem is None or stem in ("libcudnn", "libnccl", "libcusparse"):
        return None
    return major


def package_for_library(soname: str, cuda_major: int | None = None) -> tuple[str, int | None] | None:
    """``("nvidia-cublas", 13)`` for ``"libcublasLt.so.13"``; ``None`` if unknown.

    The second item is the soname's own major.  ``cuda_major`` (the installed
    backend package's) picks between the CUDA 12 and 13 names; without it the
    soname decides, and CUDA 13 is assumed where it cannot (cuDNN, NCCL).
    """
    stem = stem_of(soname)
    if stem is None:
        return None
    match = _SONAME_RE.match(soname)
    own = int(match.group(2)) if match is not None and match.group(2) else None
    major = cuda_major or cuda_major_of_soname(soname) or 13
    pair = LIBRARY_PACKAGES[stem]
    return (pair[0] if major <= 12 else pair[1]), own


def requirement_for(package: str, requires: list[str] | tuple[str, ...] = ()) -> str:
    """The requirement to install ``package`` with: the backend package's own pin if it has one.

    ``requires`` is the backend package's ``Requires-Dist`` list, e.g.
    ``["nvidia-cublas==13.*", ...]``.
    """
    wanted = _normalize(package)
    for requirement in requires:
        spec = requirement.split(";", 1)[0].strip()
        name = re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0]
        if _normalize(name) == wanted:
            return spec.replace(" ", "")
    return DEFAULT_REQUIREMENTS.get(package, package)


def install_command_for(*requirements: str) -> str:
    """``pip install "nvidia-cublas==13.*"`` (each requirement quoted where the shell needs it)."""
    parts = [f'"{r}"' if any(c in r for c in "<>=!*~[ ") else r for r in requirements]
    return "pip install " + " ".join(parts)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
