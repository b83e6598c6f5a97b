"""mlx's own CUDA header search, and the ``CUDA_HOME`` to set when it would fail.

mlx compiles kernels at run time (``mx.compile``, fused ops, quantized
matmul from 0.32.0) with NVRTC, which needs ``cuda_runtime.h``.  Where mlx
looks (``mlx/backend/cuda/jit_module.cpp``; ``<site>`` is the folder holding
the ``mlx`` package of the loaded ``libmlx.so``):

- up to 0.30.0: ``$CUDA_HOME``, else ``$CUDA_PATH``, else ``/usr/local/cuda``
  if it exists; else ``Environment variable CUDA_HOME or CUDA_PATH is not set.``
- 0.30.1 to 0.31.x: ``<site>/nvidia/cuda_runtime/include`` if it exists, else
  ``$CUDA_HOME``/``$CUDA_PATH``/``/usr/local/cuda`` if that folder exists;
- 0.32.0: the same, but ``<home>/include`` must exist;
- from 0.32.1: ``<site>/nvidia/cu13/include`` for a CUDA 13 build
  (``cuda_runtime`` for CUDA 12), then as in 0.32.0.

Otherwise: ``Can not find locations of CUDA headers, please set environment
variable CUDA_HOME or CUDA_PATH.``  Only the folder's existence is checked,
so a ``/usr/local/cuda`` without headers (CUDA "runtime" container images)
passes the search and fails in the compiler instead; both count as failing
here.  The search runs at the first compiled kernel, so ``CUDA_HOME`` set
before then (or after a failed attempt: mlx retries) takes effect.
"""

from __future__ import annotations

import os
import re

from ..versions import parse_version
from .layout import BackendPackage, header_folders, listdir
from .packages import CUDA_RUNTIME_HEADERS_PACKAGE, install_command_for, requirement_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["HeaderSearch", "cuda_home_candidates", "headers_install_command", "mlx_header_search"]

SYSTEM_CUDA = "/usr/local/cuda"
#: Where versioned toolkits (``cuda-13.0``) are looked for.
SYSTEM_CUDA_ROOT = "/usr/local"
_CUDART_VERSION_RE = re.compile(rb"#define\s+CUDART_VERSION\s+(\d+)")


class HeaderSearch:
    """What mlx's own search would pass to NVRTC, and whether that works."""

    __slots__ = ("include", "source", "usable")

    def __init__(self, include: str | None, source: str, usable: bool) -> None:
        self.include = include
        self.source = source
        self.usable = usable

    def to_dict(self) -> dict[str, object]:
        return {"include": self.include, "source": self.source, "usable": self.usable}


def _has_headers(include: str) -> bool:
    return os.path.isfile(os.path.join(include, "cuda_runtime.h"))


def mlx_header_search(
    backend: BackendPackage, libmlx: str | None, env: Mapping[str, str] | None = None
) -> HeaderSearch:
    """Follow mlx's search (for ``backend.version``) for the headers of ``libmlx``."""
    env = os.environ if env is None else env
    version = parse_version(backend.version)
    if version >= parse_version("0.30.1") and libmlx:
        site = os.path.dirname(os.path.dirname(os.path.dirname(libmlx)))
        dirname = (
            "cu13" if version >= parse_version("0.32.1") and backend.cuda_major >= 13 else "cuda_runtime"
        )
        include = os.path.join(site, "nvidia", dirname, "include")
        if os.path.exists(include):
            return HeaderSearch(include, f"nvidia/{dirname} beside mlx", _has_headers(include))
    source = "CUDA_HOME" if "CUDA_HOME" in env else "CUDA_PATH" if "CUDA_PATH" in env else SYSTEM_CUDA
    home = env.get(source, SYSTEM_CUDA) if source != SYSTEM_CUDA else SYSTEM_CUDA
    include = os.path.join(home, "include")
    if version < parse_version("0.30.1"):
        accepted = source != SYSTEM_CUDA or os.path.exists(home)
    elif version < parse_version("0.32.0"):
        accepted = os.path.exists(home)
    else:
        accepted = os.path.exists(include)
    if not accepted:
        return HeaderSearch(None, source, False)
    return HeaderSearch(include, source, _has_headers(include))


def _cuda_major_of_include(include: str) -> int | None:
    from ..regular_files import read_regular

    try:
        match = _CUDART_VERSION_RE.search(read_regular(os.path.join(include, "cuda_runtime_api.h"), 1 << 16))
    except OSError:
        return None
    return int(match.group(1)) // 1000 if match else None


def cuda_home_candidates(cuda_major: int | None, path: list[str] | None = None) -> list[str]:
    """Folders ``X`` with ``X/include/cuda_runtime.h`` of this CUDA major, best first.

    Pip wheels' ``nvidia/cu13``, ``nvidia/cu12``, ``nvidia/cuda_runtime`` on
    ``sys.path``, then ``/usr/local/cuda`` and ``/usr/local/cuda-*``.
    """
    found = [folder for folder, _ in header_folders(cuda_major, path)]
    versioned = [
        os.path.join(SYSTEM_CUDA_ROOT, n) for n in listdir(SYSTEM_CUDA_ROOT) if n.startswith("cuda-")
    ]
    system = [SYSTEM_CUDA, *sorted(versioned, reverse=True)]
    for home in system:
        include = os.path.join(home, "include")
        if not _has_headers(include):
            continue
        major = _cuda_major_of_include(include)
        if cuda_major is None or major is None or major == cuda_major:
            found.append(home)
    unique: dict[str, str] = {}
    for folder in found:
        unique.setdefault(os.path.realpath(folder), folder)
    return list(unique.values())


def headers_install_command(backend: BackendPackage) -> str:
    """``pip install "nvidia-cuda-runtime==13.*"`` (the backend package's own pin where it has one)."""
    package = CUDA_RUNTIME_HEADERS_PACKAGE[13 if backend.cuda_major >= 13 else 12]
    return install_command_for(requirement_for(package, backend.requires()))
