"""The optimized BLAS/LAPACK libraries the binding can use, found where they are installed.

In order of preference:

1. Intel MKL (``libmkl_rt``), already loaded in this process or installed
   (the ``mkl`` wheel's ``<prefix>/lib``, or the system library path): the
   fastest on Intel CPUs, and a user who installed it chose it.
2. ``scipy-openblas32``: the OpenBLAS wheel the NumPy and SciPy maintainers
   build and test on every platform, with 32-bit integers (the interface
   mlx's reference ``libblas``/``liblapack`` have) and every symbol
   prefixed ``scipy_``, so it never clashes with another BLAS in the
   process.  The ``cpu`` extra installs it.
3. A system OpenBLAS (``libopenblas.so.0``), then BLIS (``libblis.so.4``,
   BLAS only: LAPACK stays on the reference library), from the system
   library path.

NumPy's own OpenBLAS (``numpy.libs/libscipy_openblas64_*.so``) is no
candidate: it takes 64-bit integers where mlx passes 32-bit ones.

A library is loaded only from its installed package folder (a ``site``
folder of ``sys.path`` holding its ``.dist-info``, never the working
directory nor the running script's folder) or, by soname, from the dynamic
loader's system path: a planted ``./libscipy_openblas.so`` is never loaded,
since loading runs its constructors.
"""

from __future__ import annotations

import ctypes
import os
import sys

from ..versions import dist_infos, listdir, site_dirs
from .process import address_owner, loaded_objects, symbol_address

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["Library", "candidates", "installed_folders", "thread_setting"]


class Library:
    """One loaded optimized library: where it is, how its symbols are named, how its threads are set."""

    __slots__ = (
        "_get_threads",
        "_set_threads",
        "handle",
        "has_lapack",
        "kernels",
        "kind",
        "name",
        "path",
        "prefix",
        "thread_variables",
        "version",
    )

    def __init__(
        self,
        name: str,
        kind: str,
        path: str,
        handle: ctypes.CDLL,
        *,
        prefix: str,
        version: str,
        kernels: str = "",
        thread_variables: tuple[str, ...],
        get_threads: Callable[[], Any] | None,
        set_threads: Callable[[int], Any] | None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.path = path
        self.handle = handle
        self.prefix = prefix
        self.version = version
        self.kernels = kernels
        self.thread_variables = thread_variables
        self._get_threads = get_threads
        self._set_threads = set_threads
        self.has_lapack = self.address("sgetrf_") is not None

    def __repr__(self) -> str:
        return f"<Library {self.name} {self.version} at {self.path}>"

    def address(self, symbol: str) -> int | None:
        """The address of the library's implementation of the standard ``symbol``, or ``None``."""
        return symbol_address(self.handle, self.prefix + symbol)

    def threads(self) -> int | None:
        return None if self._get_threads is None else int(self._get_threads())

    def set_threads(self, count: int) -> None:
        if self._set_threads is not None:
            self._set_threads(count)


def installed_folders() -> list[str]:
    """The ``site`` folders of ``sys.path`` a library may be loaded from.

    ``site_dirs`` already leaves out relative entries (the working directory
    of ``python -c``/``-m``); this also leaves out the working directory and
    the running script's folder when they are on ``sys.path`` as absolute
    paths (``python script.py`` puts the script's folder first).
    """
    excluded = {os.path.normpath(os.getcwd())}
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if isinstance(script, str):
        excluded.add(os.path.normpath(os.path.dirname(os.path.abspath(script))))
    if sys.argv and sys.argv[0] and sys.argv[0] not in ("-c", "-m"):
        excluded.add(os.path.normpath(os.path.dirname(os.path.abspath(sys.argv[0]))))
    return [folder for folder in site_dirs() if folder not in excluded]


def thread_setting(variables: tuple[str, ...]) -> tuple[int | None, str]:
    """The thread count the user asked for through ``variables`` (first set wins), and where from.

    ``(None, note)`` when none is set or the value is not a positive
    integer; the note says which value was ignored.
    """
    for variable in variables:
        raw = os.environ.get(variable)
        if raw is None or not raw.strip():
            continue
        text = raw.split(",", 1)[0].strip()  # OMP_NUM_THREADS may list one count per nesting level
        if text.isdigit() and int(text) > 0:
            return int(text), f"{variable}={raw}"
        return None, f"{variable}={raw!r} ignored: not a positive integer"
    return None, ""


def _file_of(handle: ctypes.CDLL) -> str:
    """The file the loader opened for ``handle`` (a soname is searched for): where its cblas_sgemm lies."""
    address = symbol_address(handle, "cblas_sgemm") or symbol_address(handle, "scipy_cblas_sgemm")
    return (address_owner(address) if address else None) or str(handle._name)


def _load(path: str) -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(path)
    except OSError:
        return None


def _function(handle: ctypes.CDLL, name: str, restype: Any, *argtypes: Any) -> Callable[..., Any] | None:
    """``name`` from ``handle`` with its C types set, or ``None`` if the library has none."""
    try:
        function = handle[name]
    except AttributeError:
        return None
    function.restype = restype
    function.argtypes = list(argtypes)
    return function


def _scipy_openblas(folders: list[str]) -> tuple[Library | None, str]:
    for site in folders:
        infos = dist_infos(listdir(site), "scipy_openblas32-")
        if not infos:
            continue
        version = infos[0][1]
        lib = os.path.join(site, "scipy_openblas32", "lib")
        names = sorted(n for n in listdir(lib) if n.startswith("libscipy_openblas") and ".so" in n)
        if not names:
            return None, f"scipy-openblas32 {version} in {site} has no library in {lib}"
        path = os.path.join(lib, names[0])
        handle = _load(path)
        if handle is None:
            return None, f"{path} could not be loaded"
        core = _function(handle, "scipy_openblas_get_corename", ctypes.c_char_p)
        described = core() if core is not None else None
        detail = described.decode("utf-8", "replace") if isinstance(described, bytes) else ""
        return (
            Library(
                "OpenBLAS (scipy-openblas32)",
                "openblas",
                path,
                handle,
                prefix="scipy_",
                version=version,
                kernels=detail,
                thread_variables=("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"),
                get_threads=_function(handle, "scipy_openblas_get_num_threads", ctypes.c_int),
                set_threads=_function(handle, "scipy_openblas_set_num_threads", None, ctypes.c_int),
            ),
            "",
        )
    return None, "scipy-openblas32 is not installed"


#: ``libmkl_rt``'s sonames, newest first (2026 releases: ``.so.3``).
_MKL_SONAMES = ("libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so.1")


def _mkl_paths(folders: list[str]) -> list[str]:
    """``libmkl_rt`` already loaded, then the ``mkl`` wheel's, then the system's soname."""
    paths = [o.path for o in loaded_objects() if os.path.basename(o.path).startswith("libmkl_rt.so")]
    for site in folders:
        if dist_infos(listdir(site), "mkl-"):
            # The wheel puts its libraries in <prefix>/lib; site is <prefix>/lib/pythonX.Y/site-packages.
            lib = os.path.dirname(os.path.dirname(site))
            paths += [os.path.join(lib, n) for n in sorted(listdir(lib)) if n.startswith("libmkl_rt.so")]
    return [*paths, *_MKL_SONAMES]


def _mkl(folders: list[str]) -> tuple[Library | None, str]:
    if "ILP64" in os.environ.get("MKL_INTERFACE_LAYER", "").upper():
        return None, "MKL_INTERFACE_LAYER asks for 64-bit integers; mlx calls BLAS with 32-bit ones"
    for path in _mkl_paths(folders):
        handle = _load(path)
        if handle is None or symbol_address(handle, "cblas_sgemm") is None:
            continue
        version = ""
        get_version = _function(handle, "MKL_Get_Version_String", None, ctypes.c_char_p, ctypes.c_int)
        if get_version is not None:
            buffer = ctypes.create_string_buffer(256)
            get_version(buffer, 256)
            text = buffer.value.decode("utf-8", "replace").strip()
            # "Intel(R) oneAPI Math Kernel Library Version 2026.2-Product Build 20260915 for ...": 2026.2
            version = text.partition("Version ")[2].split("-", 1)[0].split(" ", 1)[0] or text
        return (
            Library(
                "Intel MKL",
                "mkl",
                _file_of(handle),
                handle,
                prefix="",
                version=version,
                thread_variables=("MKL_NUM_THREADS", "OMP_NUM_THREADS"),
                get_threads=_function(handle, "MKL_Get_Max_Threads", ctypes.c_int),
                set_threads=_function(handle, "MKL_Set_Num_Threads", None, ctypes.c_int),
            ),
            "",
        )
    return None, "MKL is not installed"


def _system_openblas() -> tuple[Library | None, str]:
    handle = _load("libopenblas.so.0")
    if handle is None or symbol_address(handle, "cblas_sgemm") is None:
        return None, "no libopenblas.so.0 on the system library path"
    config = _function(handle, "openblas_get_config", ctypes.c_char_p)
    described = config() if config is not None else None
    return (
        Library(
            "OpenBLAS (system)",
            "openblas",
            _file_of(handle),
            handle,
            prefix="",
            version=described.decode("utf-8", "replace") if isinstance(described, bytes) else "",
            thread_variables=("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"),
            get_threads=_function(handle, "openblas_get_num_threads", ctypes.c_int),
            set_threads=_function(handle, "openblas_set_num_threads", None, ctypes.c_int),
        ),
        "",
    )


def _system_blis() -> tuple[Library | None, str]:
    handle = _load("libblis.so.4")
    if handle is None or symbol_address(handle, "cblas_sgemm") is None:
        return None, "no libblis.so.4 (with its CBLAS interface) on the system library path"
    version = _function(handle, "bli_info_get_version_str", ctypes.c_char_p)
    described = version() if version is not None else None
    return (
        Library(
            "BLIS (system)",
            "blis",
            _file_of(handle),
            handle,
            prefix="",
            version=described.decode("utf-8", "replace") if isinstance(described, bytes) else "",
            thread_variables=("BLIS_NUM_THREADS", "OMP_NUM_THREADS"),
            get_threads=_function(handle, "bli_thread_get_num_threads", ctypes.c_long),
            set_threads=_function(handle, "bli_thread_set_num_threads", None, ctypes.c_long),
        ),
        "",
    )


def candidates() -> tuple[Library | None, list[str]]:
    """The preferred library found, and why each one before it was passed over."""
    folders = installed_folders()
    notes: list[str] = []
    for find in (_mkl, _scipy_openblas):
        library, note = find(folders)
        if library is not None:
            return library, notes
        notes.append(note)
    for system in (_system_openblas, _system_blis):
        library, note = system()
        if library is not None:
            return library, notes
        notes.append(note)
    return None, notes
