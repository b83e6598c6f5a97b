"""Find mlx's CUDA pieces on ``sys.path`` by folder and file names alone.

This runs at ``import mlx_portable`` on Linux, so it uses ``os`` only and
reads directory listings, never package metadata through
``importlib.metadata`` (which costs milliseconds).  A wheel installs
``<name>-<version>.dist-info`` next to its files, and NVIDIA's wheels put
their libraries in fixed folders:

- CUDA 13: ``nvidia/cu13/lib`` (cuBLAS, NVRTC, cuFFT, cuSOLVER, cuSPARSE,
  nvJitLink, the runtime), ``nvidia/cudnn/lib``, ``nvidia/nccl/lib``; headers
  in ``nvidia/cu13/include``;
- CUDA 12: one ``nvidia/<name>/lib`` per package (``cublas``, ``cuda_nvrtc``,
  ``cuda_runtime``, ``cudnn``, ``nccl``, ``cufft``, ``cusolver``,
  ``cusparse``, ``nvjitlink``); headers in ``nvidia/cuda_runtime/include``.

``nvidia/cudnn`` and ``nvidia/nccl`` are shared by both CUDA versions; the
``nvidia_cudnn_cu13-*.dist-info`` beside them says which one they are.
"""

from __future__ import annotations

import os

from ..versions import BackendPackage, cuda_backend_package, dist_infos, listdir, site_dirs

__all__ = [
    "BackendPackage",
    "LibraryFolder",
    "cuda_backend_package",
    "dist_infos",
    "header_folders",
    "libmlx_locations",
    "listdir",
    "mlx_core_dir",
    "nvidia_library_folders",
    "site_dirs",
]


class LibraryFolder:
    """An ``nvidia/<name>/lib`` folder and the CUDA major of the wheel that made it."""

    __slots__ = ("cuda_major", "path", "site_dir")

    def __init__(self, path: str, cuda_major: int | None, site_dir: str) -> None:
        self.path = path
        self.cuda_major = cuda_major
        self.site_dir = site_dir

    def __repr__(self) -> str:
        return f"<LibraryFolder {self.path} (CUDA {self.cuda_major or '?'})>"


def _installed_by_wheel(site_names: list[str], sub: str) -> bool:
    """Whether ``site/nvidia/<sub>`` was installed by an NVIDIA wheel: a matching dist-info is beside it.

    ``cu13``/``cu12`` hold the libraries of several wheels without a CUDA
    suffix (``nvidia_cublas-13.*``, ``nvidia_cufft-12.*``, ...): one of those
    vouches for them; ``cudnn``, ``nccl``, ``cublas``... need
    ``nvidia_<sub>*`` (``nvidia_cudnn_cu13-9.*``).
    """
    for entry in site_names:
        lowered = entry.lower()
        if not (lowered.startswith("nvidia_") and lowered.endswith(".dist-info")):
            continue
        project = lowered.split("-", 1)[0]
        if sub.startswith("cu") and sub[2:].isdigit():
            suffix = project.rsplit("_", 1)[-1]
            if not (suffix.startswith("cu") and suffix[2:].isdigit()):
                return True
        elif project.startswith(f"nvidia_{sub.lower()}"):
            return True
    return False


def _folder_major(site_names: list[str], sub: str) -> int | None:
    """CUDA major of ``nvidia/<sub>``: from the folder name, else from the dist-info beside it."""
    if sub.startswith("cu") and sub[2:].isdigit():
        return int(sub[2:])
    prefix = f"nvidia_{sub}_cu".lower()
    for entry in site_names:
        lowered = entry.lower()
        if lowered.startswith(prefix) and lowered.endswith(".dist-info"):
            digits = lowered[len(prefix) :].split("-", 1)[0]
            if digits.isdigit():
                return int(digits)
    return None


def nvidia_library_folders(
    cuda_major: int | None = None, path: list[str] | None = None
) -> list[LibraryFolder]:
    """Every ``site/nvidia/*/lib`` folder on ``sys.path``, in ``sys.path`` order.

    With ``cuda_major``, folders known to belong to another CUDA major are
    left out (those whose major cannot be told are kept).
    """
    found: list[LibraryFolder] = []
    for site in site_dirs(path):
        root = os.path.join(site, "nvidia")
        subs = sorted(listdir(root))
        if not subs:
            continue
        site_names = listdir(site)
        # The CUDA-major folders first: they hold most libraries of a CUDA 13 install.
        subs.sort(key=lambda s: not (s.startswith("cu") and s[2:].isdigit()))
        for sub in subs:
            lib = os.path.join(root, sub, "lib")
            if not os.path.isdir(lib) or not _installed_by_wheel(site_names, sub):
                continue
            major = _folder_major(site_names, sub)
            if cuda_major is not None and major is not None and major != cuda_major:
                continue
            found.append(LibraryFolder(lib, major, site))
    return found


def header_folders(
    cuda_major: int | None = None, path: list[str] | None = None
) -> list[tuple[str, int | None]]:
    """Folders ``X`` with ``X/include/cuda_runtime.h`` from pip wheels, with their CUDA major.

    ``nvidia/cu13``, ``nvidia/cu12`` and ``nvidia/cuda_runtime`` of every
    site folder, in ``sys.path`` order; with ``cuda_major`` only the matching
    ones (and those whose major cannot be told).
    """
    found: list[tuple[str, int | None]] = []
    for site in site_dirs(path):
        root = os.path.join(site, "nvidia")
        names: list[str] | None = None
        for sub in ("cu13", "cu12", "cuda_runtime"):
            folder = os.path.join(root, sub)
            if not os.path.isfile(os.path.join(folder, "include", "cuda_runtime.h")):
                continue
            if names is None:
                names = listdir(site)
            if not _installed_by_wheel(names, sub):
                continue
            major = _folder_major(names, sub)
            if cuda_major is not None and major is not None and major != cuda_major:
                continue
            found.append((folder, major))
    return found


def mlx_core_dir(path: list[str] | None = None) -> str | None:
    """The ``mlx`` folder holding the ``mlx.core`` extension Python would import."""
    for site in site_dirs(path):
        folder = os.path.join(site, "mlx")
        for name in listdir(folder):
            if name.startswith("core.") and name.endswith(".so"):
                return folder
    return None


def libmlx_locations(path: list[str] | None = None) -> list[str]:
    """Every ``site/mlx/lib/libmlx.so`` on ``sys.path``, in order."""
    found = []
    for site in site_dirs(path):
        candidate = os.path.join(site, "mlx", "lib", "libmlx.so")
        if os.path.isfile(candidate):
            found.append(candidate)
    return found
