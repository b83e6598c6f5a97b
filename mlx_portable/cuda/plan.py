"""Which NVIDIA libraries the dynamic loader would not find for libmlx, in load order.

``libmlx.so`` finds NVIDIA's pip libraries only through its RPATH
(``$ORIGIN/../../nvidia/{cu13,cublas,cuda_nvrtc,cudnn,cufft,cusolver,nccl}/lib``),
that is, only when the ``nvidia-*`` wheels sit in the same site-packages as
mlx.  This module follows the loader's search for each NVIDIA library libmlx
(and, in turn, each of those libraries) needs:

1. the requesting object's ``DT_RPATH`` and those of the objects that loaded
   it, unless it has a ``DT_RUNPATH``;
2. ``LD_LIBRARY_PATH`` (as this process started with it);
3. its ``DT_RUNPATH``;
4. ``/etc/ld.so.cache``;
5. the default folders (``/lib``, ``/usr/lib`` and their 64-bit and
   multiarch variants);

and counts a library already loaded in this process as found.  What the
loader would not find is looked up in the ``nvidia/*/lib`` folders of every
site folder on ``sys.path`` (matching the CUDA major of the backend package)
and planned for preloading, dependencies first.  Libraries NVRTC opens at run
time (``libnvrtc-builtins``) follow NVRTC.
"""

from __future__ import annotations

import os

from .elf import DynamicInfo, NotAnElfFile, read_dynamic
from .layout import (
    BackendPackage,
    LibraryFolder,
    cuda_backend_package,
    libmlx_locations,
    listdir,
    mlx_core_dir,
    nvidia_library_folders,
)
from .packages import stem_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DRIVER_LIBRARY", "LoadPlan", "PreloadResult", "make_plan", "preload", "preloaded"]

_DEFAULT_DIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64")
#: The NVIDIA driver's own library: it comes with the driver, never from pip.
DRIVER_LIBRARY = "libcuda.so.1"


class LoadPlan:
    """What :func:`make_plan` found.

    ``preload``: ``(soname, path)`` to load with ``RTLD_GLOBAL``, in order;
    ``found``: soname -> where the loader finds it by itself; ``missing``:
    sonames found nowhere; ``needed_by``: soname -> the object that needs it;
    ``folders``: the NVIDIA library folders searched.
    """

    __slots__ = ("backend", "folders", "found", "libmlx", "missing", "needed_by", "preload", "problems")

    def __init__(
        self, backend: BackendPackage | None, libmlx: str | None, folders: list[LibraryFolder]
    ) -> None:
        self.backend = backend
        self.libmlx = libmlx
        self.folders = folders
        self.preload: list[tuple[str, str]] = []
        self.found: dict[str, str] = {}
        self.missing: list[str] = []
        self.needed_by: dict[str, str] = {}
        self.problems: list[str] = []

    @property
    def cuda_major(self) -> int | None:
        return self.backend.cuda_major if self.backend is not None else None

    def to_dict(self) -> dict[str, object]:
        return {
            "backend_package": self.backend.to_dict() if self.backend else None,
            "libmlx": self.libmlx,
            "library_folders": [f.path for f in self.folders],
            "preload": [path for _, path in self.preload],
            "found_by_loader": dict(self.found),
            "missing": list(self.missing),
            "problems": list(self.problems),
        }


class _Loader:
    """The dynamic loader's search, as far as it matters here."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.ld_library_path = [p for p in env.get("LD_LIBRARY_PATH", "").split(":") if p]
        self._cache: bytes | None = None
        self._loaded: set[str] | None = None
        self._defaults: list[str] | None = None

    def loaded(self) -> set[str]:
        """File names of the shared objects mapped into this process."""
        if self._loaded is None:
            names: set[str] = set()
            try:
                with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        path = line.rstrip("\n").split(maxsplit=5)[-1]
                        if path.startswith("/") and ".so" in path:
                            names.add(os.path.basename(path))
            except OSError:
                pass
            self._loaded = names
        return self._loaded

    def in_cache(self, soname: str) -> bool:
        # /etc/ld.so.cache holds each library's soname as a NUL-terminated
        # string; a match preceded by NUL is that key (paths begin with "/").
        if self._cache is None:
            try:
                with open("/etc/ld.so.cache", "rb") as fh:
                    self._cache = fh.read()
            except OSError:
                self._cache = b""
        return (b"\0" + soname.encode() + b"\0") in self._cache

    def default_dirs(self) -> list[str]:
        if self._defaults is None:
            multiarch = [
                os.path.join(base, name)
                for base in ("/lib", "/usr/lib")
                for name in listdir(base)
                if name.endswith("-linux-gnu")
            ]
            self._defaults = [*multiarch, *_DEFAULT_DIRS]
        return self._defaults

    def find(self, soname: str, chain: list[DynamicInfo]) -> str | None:
        """Where the loader finds ``soname`` requested by ``chain[0]`` (loaded by ``chain[1:]``)."""
        requester = chain[0]
        dirs: list[str] = []
        if not requester.runpath:
            for obj in chain:
                if not obj.runpath:
                    dirs += _expand(obj.rpath, obj.path)
        dirs += self.ld_library_path
        dirs += _expand(requester.runpath, requester.path)
        for folder in dirs:
            candidate = os.path.join(folder, soname)
            if os.path.isfile(candidate):
                return os.path.normpath(candidate)
        if self.in_cache(soname):
            return "ld.so.cache"
        for folder in self.default_dirs():
            candidate = os.path.join(folder, soname)
            if os.path.isfile(candidate):
                return candidate
        return None


def _expand(entries: tuple[str, ...], obj_path: str) -> list[str]:
    origin = os.path.dirname(os.path.abspath(obj_path))
    return [e.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for e in entries]


def _index(folders: list[LibraryFolder]) -> dict[str, str]:
    """soname (file name) -> first path among ``folders``.

    Regular files only: ``dlopen`` of a FIFO would hang.
    """
    from ..regular_files import is_regular

    found: dict[str, str] = {}
    for folder in folders:
        for name in listdir(folder.path):
            if ".so" in name and name not in found:
                path = os.path.join(folder.path, name)
                if is_regular(path):
                    found[name] = path
    return found


def make_plan(path: list[str] | None = None, env: Mapping[str, str] | None = None) -> LoadPlan:
    """Work out what to preload for the CUDA ``libmlx.so`` Python would load.

    ``path`` defaults to ``sys.path``, ``env`` to ``os.environ`` (note that
    the loader reads ``LD_LIBRARY_PATH`` once, when the process starts).
    """
    backend = cuda_backend_package(path)
    core_dir = mlx_core_dir(path)
    beside_core = os.path.join(core_dir, "lib", "libmlx.so") if core_dir else None
    libmlx = beside_core if beside_core and os.path.isfile(beside_core) else None
    plan_libmlx = False
    if libmlx is None:
        # mlx (the front end) and its backend package in different site
        # folders: core.so finds libmlx.so only beside itself.
        others = libmlx_locations(path)
        if backend is not None:
            others.sort(key=lambda p: not p.startswith(backend.site_dir + os.sep))
        libmlx = others[0] if others else None
        plan_libmlx = libmlx is not None
    folders = nvidia_library_folders(backend.cuda_major if backend else None, path)
    plan = LoadPlan(backend, libmlx, folders)
    if libmlx is None:
        plan.problems.append("no mlx/lib/libmlx.so on sys.path: mlx's backend package is not installed")
        return plan
    try:
        root = read_dynamic(libmlx)
    except (OSError, NotAnElfFile) as exc:
        plan.problems.append(f"cannot read {libmlx}: {exc}")
        return plan
    loader = _Loader(os.environ if env is None else env)
    index = _index(folders)
    planned: dict[str, str] = {}
    seen: set[str] = set()

    def visit(soname: str, chain: list[DynamicInfo]) -> None:
        if soname in seen or stem_of(soname) is None:
            return
        seen.add(soname)
        plan.needed_by.setdefault(soname, os.path.basename(chain[0].path))
        if soname in loader.loaded():
            plan.found[soname] = "already loaded"
            return
        where = loader.find(soname, chain)
        if where is not None:
            plan.found[soname] = where
            if os.path.isfile(where):
                _visit_needs(where, chain)
            return
        candidate = index.get(soname)
        if candidate is None:
            plan.missing.append(soname)
            return
        _visit_needs(candidate, [])
        planned[soname] = candidate
        if stem_of(soname) == "libnvrtc":
            # NVRTC opens its builtins by name at run time; loaded from a
            # folder the loader does not search, it would not find them.
            folder = os.path.dirname(candidate)
            for name in sorted(listdir(folder)):
                if name.startswith("libnvrtc-builtins.so."):
                    planned.setdefault(name, os.path.join(folder, name))

    def _visit_needs(lib_path: str, chain: list[DynamicInfo]) -> None:
        try:
            info = read_dynamic(lib_path)
        except (OSError, NotAnElfFile) as exc:
            plan.problems.append(f"cannot read {lib_path}: {exc}")
            return
        for dep in info.needed:
            visit(dep, [info, *chain])

    for soname in root.needed:
        visit(soname, [root])
    plan.preload = list(planned.items())
    if plan_libmlx:
        plan.preload.append(("libmlx.so", libmlx))
    return plan


# -- preloading ------------------------------------------------------------------
# Load planned NVIDIA libraries with ``RTLD_GLOBAL`` before ``mlx.core``.
#
# Once a library is loaded, the dynamic loader satisfies every later request
# for its soname with it, wherever the requester would have searched: that is
# how libmlx gets libraries from a folder its RPATH does not name.  Changing
# ``LD_LIBRARY_PATH`` inside a running process would not help (the loader
# reads it once, at start), and a loaded library cannot be unloaded safely, so
# ``deactivate()`` leaves them loaded.

# Handles are kept so the libraries stay referenced for the process lifetime.
_handles: list[object] = []
_preloaded: dict[str, str] = {}


class PreloadResult:
    """``loaded``: paths loaded now, in order; ``failed``: ``(path, error)``."""

    __slots__ = ("failed", "loaded")

    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.failed: list[tuple[str, str]] = []

    def to_dict(self) -> dict[str, object]:
        return {"loaded": list(self.loaded), "failed": [{"path": p, "error": e} for p, e in self.failed]}


def preload(plan: LoadPlan) -> PreloadResult:
    """Load ``plan.preload`` in order; a library that fails is recorded and the rest still load."""
    import ctypes

    from ..regular_files import is_regular

    result = PreloadResult()
    for soname, path in plan.preload:
        if _preloaded.get(soname) == path:
            continue
        if not is_regular(path):
            # dlopen of a FIFO blocks forever; of a device, who knows.
            result.failed.append((path, "not a regular file (a FIFO, socket, device or folder)"))
            continue
        try:
            _handles.append(ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL))
        except OSError as exc:
            result.failed.append((path, str(exc)))
            continue
        _preloaded[soname] = path
        result.loaded.append(path)
    return result


def preloaded() -> dict[str, str]:
    """soname -> path of every library this process preloaded."""
    return dict(_preloaded)
