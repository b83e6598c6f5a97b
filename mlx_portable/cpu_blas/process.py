"""This process's loaded libraries and memory, through the C library (Linux, glibc or musl).

What the BLAS binding needs from the dynamic loader and the kernel: every
loaded object with its load address (``dl_iterate_phdr``), which object a
code address lies in (``dladdr``), a symbol's address in one library
(``dlsym``), and an 8-byte write into a page that the loader made
read-only after relocation (RELRO), with ``mprotect`` around it.
"""

from __future__ import annotations

import _thread
import ctypes
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "LoadedObject",
    "address_owner",
    "loaded_objects",
    "read_slot",
    "symbol_address",
    "write_slot",
    "write_slots",
]

_PROT_READ, _PROT_WRITE, _PROT_EXEC = 1, 2, 4
_write_lock = _thread.allocate_lock()


class LoadedObject:
    """One object the loader mapped: its ``path`` as loaded and its load ``base`` address."""

    __slots__ = ("base", "path")

    def __init__(self, path: str, base: int) -> None:
        self.path = path
        self.base = base

    def __repr__(self) -> str:
        return f"<LoadedObject {self.path} at {self.base:#x}>"


class _PhdrInfo(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_size_t), ("name", ctypes.c_char_p), ("phdr", ctypes.c_void_p)]


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("fname", ctypes.c_char_p),
        ("fbase", ctypes.c_void_p),
        ("sname", ctypes.c_char_p),
        ("saddr", ctypes.c_void_p),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_PhdrInfo), ctypes.c_size_t, ctypes.c_void_p)
_libc: ctypes.CDLL | None = None
_libdl: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


_functions: dict[str, Any] = {}


def _dl_function(name: str, restype: Any, *argtypes: Any) -> Any:
    """``name`` from the C library, else from ``libdl.so.2`` (glibc before 2.34 kept it there); kept."""
    global _libdl
    function = _functions.get(name)
    if function is not None:
        return function
    try:
        function = getattr(_c(), name)
    except AttributeError:
        if _libdl is None:
            _libdl = ctypes.CDLL("libdl.so.2")
        function = getattr(_libdl, name)
    function.restype = restype
    function.argtypes = list(argtypes)
    _functions[name] = function
    return function


def loaded_objects() -> list[LoadedObject]:
    """Every object loaded in this process with a path, in the loader's order."""
    found: list[LoadedObject] = []

    def visit(info: ctypes._Pointer[_PhdrInfo], _size: int, _data: object) -> int:
        name = info.contents.name
        if name:
            found.append(LoadedObject(os.fsdecode(name), int(info.contents.addr)))
        return 0

    iterate = _dl_function("dl_iterate_phdr", ctypes.c_int, _CALLBACK, ctypes.c_void_p)
    iterate(_CALLBACK(visit), None)
    return found


def address_owner(address: int) -> str | None:
    """The path of the loaded object whose mapping holds ``address`` (``dladdr``), or ``None``."""
    dladdr = _dl_function("dladdr", ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_DlInfo))
    info = _DlInfo()
    if not dladdr(ctypes.c_void_p(address), ctypes.byref(info)) or not info.fname:
        return None
    return os.fsdecode(info.fname)


def symbol_address(library: ctypes.CDLL, name: str) -> int | None:
    """The address of ``name`` in ``library`` (and what it loaded), or ``None`` if it has none."""
    try:
        function = library[name]
    except AttributeError:
        return None
    return ctypes.cast(function, ctypes.c_void_p).value


def read_slot(address: int) -> int:
    """The pointer stored at ``address``."""
    return int(ctypes.c_size_t.from_address(address).value)


def _mappings(ranges: list[tuple[int, int]]) -> list[list[tuple[int, int, int]]]:
    """For each ``(address, length)``, the ``(start, end, prot)`` of the mappings that overlap it.

    ``/proc/self/maps`` is read once for all of them (it lists a few
    thousand mappings in a process with torch or CUDA loaded: reading it per
    slot cost about half a millisecond each).
    """
    found: list[list[tuple[int, int, int]]] = [[] for _ in ranges]
    if not ranges:
        return found
    with open("/proc/self/maps", "rb") as fh:  # bytes: no text codec to look up on the activate() path
        lines = fh.read().splitlines()
    first = min(address for address, _length in ranges)
    last = max(address + length for address, length in ranges)
    for line in lines:
        span, perms = line.split(b" ", 2)[:2]
        low_text, _, high_text = span.partition(b"-")
        low, high = int(low_text, 16), int(high_text, 16)
        if high <= first or low >= last:
            continue  # most mappings: nowhere near the slots
        prot = -1
        for i, (address, length) in enumerate(ranges):
            if low < address + length and address < high:
                if prot < 0:
                    prot = (_PROT_READ if perms[0:1] == b"r" else 0) | (
                        _PROT_WRITE if perms[1:2] == b"w" else 0
                    )
                    prot |= _PROT_EXEC if perms[2:3] == b"x" else 0
                found[i].append((low, high, prot))
    return found


def write_slot(address: int, value: int) -> None:
    """Store the pointer ``value`` at ``address``: :func:`write_slots` for one slot."""
    write_slots([(address, value)])


def write_slots(writes: list[tuple[int, int]]) -> None:
    """Store each ``(address, value)`` pointer, lifting a read-only (RELRO) protection for the write.

    The pointer-sized, aligned store is one instruction, so a thread calling
    through a slot meanwhile reads the old or the new address, never a mix.
    An ``OSError`` if a page cannot be made writable (a hardened kernel) or
    an address is not mapped; the slots before it are written, those after
    it not (the caller puts the written ones back).
    """
    size = ctypes.sizeof(ctypes.c_size_t)
    for address, _value in writes:
        if address % size:
            raise ValueError(f"slot address {address:#x} is not {size}-byte aligned")
    page = os.sysconf("SC_PAGE_SIZE")
    mprotect = _c().mprotect
    mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    mprotect.restype = ctypes.c_int
    with _write_lock:
        all_spans = _mappings([(address, size) for address, _value in writes])
        for (address, value), spans in zip(writes, all_spans, strict=True):
            if not spans:
                raise OSError(f"address {address:#x} is not mapped in this process")
            read_only = [(low, high, prot) for low, high, prot in spans if not prot & _PROT_WRITE]
            start = address - address % page
            for _low, _high, prot in read_only:
                if mprotect(ctypes.c_void_p(start), page, prot | _PROT_WRITE) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"mprotect of the page at {start:#x} failed: {os.strerror(errno)}")
            try:
                ctypes.c_size_t.from_address(address).value = value
            finally:
                for _low, _high, prot in read_only:
                    mprotect(ctypes.c_void_p(start), page, prot)
