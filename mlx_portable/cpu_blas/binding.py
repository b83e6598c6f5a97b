"""Point mlx's BLAS/LAPACK import slots at an optimized library, and put them back.

``libmlx.so`` calls ``cblas_sgemm``, ``sgetrf_``, ... through pointer slots
(its GOT) that the dynamic loader filled, at load, with the addresses in the
vendored reference ``libblas``/``liblapack``.  :func:`bind` reads the slots'
relocations from the file (:func:`~mlx_portable.cuda.elf.read_relocations`),
finds them in memory (load base + offset), checks that each one points into
a reference library, saves it, and stores the address of the optimized
library's implementation; :func:`unbind` stores the saved values back.
"""

from __future__ import annotations

import _thread
import ctypes
import os

from ..cuda.elf import NotAnElfFile, Relocation, Relocations, read_relocations
from .libraries import Library, candidates, thread_setting
from .process import LoadedObject, address_owner, loaded_objects, read_slot, symbol_address, write_slots

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "BLAS_INITIALS",
    "BindError",
    "Binding",
    "Plan",
    "Slot",
    "bind",
    "blas_imports",
    "blas_symbol",
    "current",
    "is_reference",
    "mlx_objects",
    "prepare",
    "reference_name",
    "survey",
    "unbind",
]

_HEX = frozenset("0123456789abcdef")
_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_CBLAS_TAIL = _LOWER_ALNUM | {"_"}
#: Symbols only optimized libraries export: a ``libblas.so.3`` that has one
#: is OpenBLAS/MKL/BLIS behind the system's alternatives, not the reference.
_OPTIMIZED_MARKERS = ("openblas_get_config", "MKL_Get_Version", "bli_info_get_version_str", "FLA_Init")
_lock = _thread.RLock()  # not threading: import mlx_portable stays free of it


class BindError(RuntimeError):
    """The binding cannot apply here; the message says why and what to do."""


#: The first letter of every name :func:`blas_symbol` accepts (``c`` of ``cblas_``, the precisions).
BLAS_INITIALS = "sdcz"


def blas_symbol(name: str) -> bool:
    """Whether ``name`` is a BLAS/LAPACK entry point: ``cblas_*``, or a Fortran name (``sgetrf_``).

    A Fortran name is a precision letter, 2-6 lower-case letters or digits
    and a trailing underscore.
    """
    if not name or name[0] not in BLAS_INITIALS:  # most of libmlx's imports are C++ (_ZN...): out at once
        return False
    if name.startswith("cblas_"):
        return len(name) > 6 and set(name[6:]) <= _CBLAS_TAIL
    return 4 <= len(name) <= 8 and name[-1] == "_" and set(name[1:-1]) <= _LOWER_ALNUM


def reference_name(filename: str) -> bool:
    """Whether ``filename`` is named like a reference BLAS/LAPACK.

    ``libblas.so.3``, ``libcblas.so.3``, the wheels' ``liblapack-86b2c207.so.3.10.0``.
    """
    for stem in ("libblas", "libcblas", "liblapack"):
        if filename.startswith(stem):
            rest = filename[len(stem) :]
            if rest.startswith("-"):
                tag, _, rest = rest[1:].partition(".")
                if not tag or not set(tag) <= _HEX:
                    return False
                rest = "." + rest
            return rest == ".so" or rest.startswith(".so.")
    return False


class Slot:
    """One import slot: ``symbol`` in ``owner`` at ``address``, ``original`` and ``target`` values."""

    __slots__ = ("address", "kind", "original", "owner", "symbol", "target")

    def __init__(self, owner: str, symbol: str, kind: str, address: int, original: int, target: int) -> None:
        self.owner = owner
        self.symbol = symbol
        self.kind = kind
        self.address = address
        self.original = original
        self.target = target

    def __repr__(self) -> str:
        return f"<Slot {self.symbol} ({self.kind}) at {self.address:#x}>"


class Binding:
    """A binding in force: the library, its slots, and the thread count it runs with."""

    __slots__ = ("library", "slots", "thread_source", "threads", "unbound")

    def __init__(
        self,
        library: Library,
        slots: list[Slot],
        unbound: list[str],
        threads: int | None,
        thread_source: str,
    ) -> None:
        self.library = library
        self.slots = slots
        self.unbound = unbound
        self.threads = threads
        self.thread_source = thread_source

    def to_dict(self) -> dict[str, Any]:
        """The report's ``details["cpu_blas"]``; the library's file is ``library.path`` (in doctor's JSON)."""
        symbols = sorted({s.symbol for s in self.slots})
        return {
            "state": "bound",
            "library": self.library.name,
            "version": self.library.version,
            "kernels": self.library.kernels,
            "threads": self.threads,
            "thread_source": self.thread_source,
            "symbols": symbols,
            "slot_types": sorted({s.kind for s in self.slots}),
            "left_on_reference": sorted(set(self.unbound)),
        }


_current: Binding | None = None


def current() -> Binding | None:
    """The binding in force, or ``None``."""
    return _current


def mlx_objects(mx: Any) -> list[LoadedObject]:
    """The loaded objects of mlx: the ``mlx.core`` extension and ``libmlx*``.

    Judged by file name (a symlink's target name) and, for the extension,
    by file identity: a ``realpath`` of each of the ~20 loaded objects cost
    more than the rest of this (0.6 ms).
    """
    core = getattr(mx, "__file__", None)
    core_name = os.path.basename(core) if isinstance(core, str) else None
    found = []
    for obj in loaded_objects():
        path = obj.path
        name = os.path.basename(os.path.realpath(path) if os.path.islink(path) else path)
        core_here = isinstance(core, str) and core_name in (name, os.path.basename(path))
        if name.startswith("libmlx") or (core_here and _same_file(path, str(core))):
            found.append(obj)
    return found


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def is_reference(path: str) -> bool:
    """Whether the loaded library at ``path`` is a reference (netlib) BLAS/LAPACK."""
    if not reference_name(os.path.basename(os.path.realpath(path))):
        return False
    try:
        handle = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return True  # named like one and not loaded under that path: judge by the name
    return not any(symbol_address(handle, marker) is not None for marker in _OPTIMIZED_MARKERS)


def _self_test(library: Library) -> None:
    """Multiply 2x2 matrices through the library's ``cblas_sgemm`` before mlx relies on it."""
    address = library.address("cblas_sgemm")
    if address is None:
        raise BindError(f"{library.name} at {library.path} has no {library.prefix}cblas_sgemm")
    f = ctypes.c_float
    sgemm = ctypes.CFUNCTYPE(
        None,
        *(ctypes.c_int,) * 6,
        f,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int,
        f,
        ctypes.c_void_p,
        ctypes.c_int,
    )(address)
    a, b, c = (f * 4)(1, 2, 3, 4), (f * 4)(5, 6, 7, 8), (f * 4)()
    sgemm(101, 111, 111, 2, 2, 2, 1.0, a, 2, b, 2, 0.0, c, 2)  # row-major, no transposes
    if list(c) != [19.0, 22.0, 43.0, 50.0]:
        raise BindError(f"{library.name} at {library.path} computed a 2x2 product wrong ({list(c)})")


def _blas_library(filename: str) -> bool:
    """Whether a needed library's name says BLAS/LAPACK (reference or optimized): an object worth reading."""
    lowered = filename.lower()
    return any(word in lowered for word in ("blas", "lapack", "mkl", "blis", "flame"))


def blas_imports(relocations: Relocations) -> list[Relocation]:
    """The BLAS/LAPACK import slots among ``relocations`` (x86_64 or aarch64).

    ``JUMP_SLOT`` (calls through the PLT) and ``GLOB_DAT`` (the function's
    address taken) slots, and absolute pointers (``R_X86_64_64``,
    ``R_AARCH64_ABS64``) without an addend; one with an addend points past
    the function's start and is no call target.
    """
    found = []
    for relocation in relocations.imports():
        if not blas_symbol(relocation.symbol):
            continue
        if relocation.type_name.endswith(("_64", "_ABS64")) and relocation.addend:
            continue
        found.append(relocation)
    return found


def survey(mx: Any) -> list[tuple[LoadedObject, Relocations]]:
    """mlx's loaded objects, each with its BLAS/LAPACK relocations and needed libraries.

    Each file is parsed once (``Relocations.dynamic`` holds its needed
    list): the CUDA-build check and :func:`prepare` share the result.  The
    relocations of an object that needs no BLAS library (the mlx.core
    extension, which calls libmlx) are not read: :func:`_plan` skips it.
    """
    found = []
    for obj in mlx_objects(mx):
        try:
            relocations = read_relocations(
                obj.path, blas_symbol, needs=_blas_library, initials=BLAS_INITIALS.encode()
            )
            found.append((obj, relocations))
        except (OSError, NotAnElfFile) as exc:
            raise BindError(f"cannot read the relocations of {obj.path}: {exc}") from None
    return found


def _plan(
    surveyed: list[tuple[LoadedObject, Relocations]], library: Library
) -> tuple[list[Slot], list[str], list[str]]:
    """The slots to rewrite, and the symbols bound elsewhere or missing from ``library``."""
    slots: list[Slot] = []
    elsewhere: list[str] = []
    missing: list[str] = []
    reference: dict[str, bool] = {}
    real: dict[str, str] = {}
    for obj, relocations in surveyed:
        if not relocations.entries:
            continue  # mlx.core's extension: it needs no BLAS library, so survey() read none
        needed = relocations.dynamic.needed
        own = os.path.realpath(obj.path)
        lazy_reference = any(reference_name(n) for n in needed)
        for relocation in blas_imports(relocations):
            address = obj.base + relocation.offset
            value = read_slot(address)
            owner = address_owner(value)
            if owner and owner not in real:
                real[owner] = os.path.realpath(owner)  # one per library, not per slot: 1 ms less
            real_owner = real.get(owner) if owner else None
            unresolved = real_owner == own  # lazy binding: the slot still points at the PLT
            if owner and not unresolved and owner not in reference:
                reference[owner] = is_reference(owner)
            if not (reference[owner] if owner and not unresolved else lazy_reference):
                elsewhere.append(f"{relocation.symbol} -> {owner or hex(value)}")
                continue
            target = library.address(relocation.symbol)
            if target is None:
                missing.append(relocation.symbol)
                continue
            slots.append(Slot(obj.path, relocation.symbol, relocation.type_name, address, value, target))
    return slots, elsewhere, missing


def _threads(library: Library) -> tuple[int | None, str]:
    requested, source = thread_setting(library.thread_variables)
    if requested is None:
        count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        ignored = f"; {source}" if source else ""
        requested, source = count, f"{count} CPUs in this process's affinity{ignored}"
    library.set_threads(requested)
    return library.threads() or requested, source


class Plan:
    """What :func:`prepare` found: the library and the slots to rewrite (nothing changed yet)."""

    __slots__ = ("elsewhere", "library", "missing", "slots")

    def __init__(self, library: Library, slots: list[Slot], elsewhere: list[str], missing: list[str]) -> None:
        self.library = library
        self.slots = slots
        self.elsewhere = elsewhere
        self.missing = missing


def prepare(mx: Any, surveyed: list[tuple[LoadedObject, Relocations]] | None = None) -> Plan:
    """Find the library and mlx's slots; :class:`BindError` saying why and what to do if it cannot apply.

    ``surveyed``: what :func:`survey` returned for ``mx``, if already read.
    """
    surveyed = survey(mx) if surveyed is None else surveyed
    objects = [obj for obj, _relocations in surveyed]
    if not objects:
        raise BindError(
            "no loaded libmlx*.so or mlx.core extension found in this process (an unknown layout): "
            "mlx keeps its own BLAS; please report the mlx version and how it was installed"
        )
    library, notes = candidates()
    if library is None:
        raise BindError(
            "no optimized BLAS found (" + "; ".join(notes) + "): mlx keeps its reference BLAS. "
            "Fix: pip install scipy-openblas32 (or 'mlx-portable[cpu]')"
        )
    _self_test(library)
    slots, elsewhere, missing = _plan(surveyed, library)
    if not slots:
        if elsewhere:
            shown = next((e for e in elsewhere if e.startswith("cblas_sgemm ")), elsewhere[0])
            owner = shown.partition(" -> ")[2]
            if os.path.realpath(owner) == os.path.realpath(library.path):
                raise BindError(
                    f"mlx already calls {library.name} ({shown}, loaded before mlx): nothing to do"
                )
            raise BindError(
                f"mlx already calls an optimized BLAS ({shown}): left as it is. To use "
                f"{library.name} instead, remove the other library from LD_PRELOAD"
            )
        raise BindError(
            f"no BLAS/LAPACK import slot in {', '.join(o.path for o in objects)} (an unknown layout): "
            "mlx keeps its own BLAS; please report the mlx version and how it was installed"
        )
    return Plan(library, slots, elsewhere, missing)


def bind(mx: Any, plan: Plan | None = None) -> Binding:
    """Bind mlx's BLAS/LAPACK slots to the preferred optimized library; :class:`BindError` if it cannot."""
    global _current
    with _lock:
        if _current is not None:
            return _current
        plan = prepare(mx) if plan is None else plan
        threads, source = _threads(plan.library)
        try:
            for slot in plan.slots:
                if read_slot(slot.address) != slot.original:
                    raise OSError(f"{slot.symbol}'s slot changed since it was read")
            write_slots([(slot.address, slot.target) for slot in plan.slots])
        except OSError as exc:
            written = [s for s in plan.slots if s.target != s.original and read_slot(s.address) == s.target]
            if written:
                write_slots([(slot.address, slot.original) for slot in reversed(written)])
            raise BindError(
                f"cannot rewrite mlx's import slots ({exc}): mlx keeps its reference BLAS; preload an "
                "optimized one instead: LD_PRELOAD=/path/to/libopenblas.so.0 python ..."
            ) from None
        _current = Binding(plan.library, plan.slots, plan.elsewhere + plan.missing, threads, source)
        return _current


def unbind() -> list[str]:
    """Restore every slot :func:`bind` changed; the symbols someone else changed since (left as they are)."""
    global _current
    with _lock:
        binding, _current = _current, None
        if binding is None:
            return []
        changed_since: list[str] = []
        restore: list[tuple[int, int]] = []
        for slot in reversed(binding.slots):
            if read_slot(slot.address) != slot.target:
                changed_since.append(slot.symbol)
                continue
            restore.append((slot.address, slot.original))
        write_slots(restore)
        return changed_since
