"""Read the dynamic section of an ELF shared object: soname, needed libraries, RPATH.

Enough of the ELF format (32/64-bit, either byte order) to answer what the
dynamic loader will look for, reading a few kilobytes even from a 500 MB
library.  Written here rather than taken from ``pyelftools`` because it runs
on the ``import mlx_portable`` path of CUDA machines, where a dependency that
costs tens of milliseconds to import is not welcome, and these few fields
are all that is needed.
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = ["DynamicInfo", "NotAnElfFile", "read_dynamic"]

_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_STRSZ, _DT_SONAME, _DT_RPATH, _DT_RUNPATH = 0, 1, 5, 10, 14, 15, 29


class NotAnElfFile(ValueError):
    """The file is not an ELF shared object (or is truncated)."""


class DynamicInfo:
    """What the dynamic section says: ``soname``, ``needed``, ``rpath``, ``runpath``."""

    __slots__ = ("needed", "path", "rpath", "runpath", "soname")

    def __init__(
        self,
        path: str,
        soname: str | None,
        needed: tuple[str, ...],
        rpath: tuple[str, ...],
        runpath: tuple[str, ...],
    ) -> None:
        self.path = path
        self.soname = soname
        self.needed = needed
        self.rpath = rpath
        self.runpath = runpath

    def __repr__(self) -> str:
        return f"<DynamicInfo {self.soname or self.path} needs {list(self.needed)}>"


#: Upper bounds of what is read; a real libmlx.so's dynamic section and
#: string table are a few kilobytes, so these only stop a corrupt header from
#: asking for gigabytes.
_MAX_PROGRAM_HEADERS = 1 << 16
_MAX_TABLE_BYTES = 16 << 20


def read_dynamic(path: str) -> DynamicInfo:
    """Parse ``path``'s dynamic section; :class:`NotAnElfFile` if it has none or is malformed.

    Only a regular file is opened, without blocking (a FIFO in its place
    must not hang the import): anything else raises
    :class:`~mlx_portable.regular_files.NotARegularFile`, an ``OSError``.
    A file that cannot be opened raises the ``OSError``; any inconsistency
    inside (offsets past the end, absurd sizes, truncation) is a
    :class:`NotAnElfFile` naming the file, never a ``struct.error``,
    ``OverflowError`` or ``MemoryError`` from deep inside.
    """
    import os

    from ..regular_files import open_regular

    with os.fdopen(open_regular(path), "rb") as fh:
        try:
            return _parse(path, fh)
        except NotAnElfFile:
            raise
        except (struct.error, OverflowError, ValueError, MemoryError, IndexError) as exc:
            raise NotAnElfFile(f"{path} is a malformed ELF file ({type(exc).__name__}: {exc})") from None


def _read_at(fh: BinaryIO, size: int, offset: int, length: int, what: str, path: str) -> bytes:
    """``length`` bytes at ``offset``, which must lie inside the file of ``size`` bytes."""
    if offset < 0 or length < 0 or offset + length > size or length > _MAX_TABLE_BYTES:
        raise NotAnElfFile(f"{path}: the {what} ({length} bytes at offset {offset}) lies outside the file")
    fh.seek(offset)
    data = fh.read(length)
    if len(data) != length:
        raise NotAnElfFile(f"{path}: the {what} is truncated")
    return data


def _parse(path: str, fh: BinaryIO) -> DynamicInfo:
    import os

    size = os.fstat(fh.fileno()).st_size
    ident = fh.read(64)
    if len(ident) < 52 or ident[:4] != b"\x7fELF":
        raise NotAnElfFile(f"{path} is not an ELF file")
    if ident[4] not in (1, 2) or ident[5] not in (1, 2):
        raise NotAnElfFile(f"{path}: unknown ELF class {ident[4]} or byte order {ident[5]}")
    wide = ident[4] == 2
    order = "<" if ident[5] == 1 else ">"
    if wide:
        if len(ident) < 64:
            raise NotAnElfFile(f"{path}: the 64-bit ELF header is truncated")
        phoff = struct.unpack_from(order + "Q", ident, 0x20)[0]
        phentsize, phnum = struct.unpack_from(order + "HH", ident, 0x36)
        ph_fmt, dyn_fmt = order + "IIQQQQQQ", order + "qQ"
    else:
        phoff = struct.unpack_from(order + "I", ident, 0x1C)[0]
        phentsize, phnum = struct.unpack_from(order + "HH", ident, 0x2A)
        ph_fmt, dyn_fmt = order + "IIIIIIII", order + "iI"
    if phentsize < struct.calcsize(ph_fmt) or phnum > _MAX_PROGRAM_HEADERS:
        raise NotAnElfFile(f"{path}: program header entries of {phentsize} bytes cannot be read")
    table = _read_at(fh, size, phoff, phentsize * phnum, "program header table", path)
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: tuple[int, int] | None = None
    for i in range(phnum):
        fields = struct.unpack_from(ph_fmt, table, i * phentsize)
        if wide:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = fields[:6]
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz = fields[:5]
        if p_type == _PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == _PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        raise NotAnElfFile(f"{path} has no dynamic section (not a shared object)")
    raw = _read_at(fh, size, dynamic[0], dynamic[1], "dynamic section", path)
    step = struct.calcsize(dyn_fmt)
    entries: list[tuple[int, int]] = []
    for offset in range(0, len(raw) - step + 1, step):
        tag, value = struct.unpack_from(dyn_fmt, raw, offset)
        if tag == _DT_NULL:
            break
        entries.append((tag, value))
    strtab = next((v for t, v in entries if t == _DT_STRTAB), None)
    strsz = next((v for t, v in entries if t == _DT_STRSZ), 0)
    if strtab is None:
        raise NotAnElfFile(f"{path} has no dynamic string table")
    base = _file_offset(strtab, loads)
    if base is None:
        raise NotAnElfFile(f"{path}: the dynamic string table is outside every loaded segment")
    strings = _read_at(fh, size, base, min(strsz, max(size - base, 0)), "dynamic string table", path)

    def text(index: int) -> str:
        if not 0 <= index < len(strings):
            raise NotAnElfFile(f"{path}: a dynamic entry points past the string table")
        end = strings.find(b"\0", index)
        return strings[index : end if end >= 0 else None].decode("utf-8", "replace")

    def paths(tag: int) -> tuple[str, ...]:
        return tuple(p for t, v in entries if t == tag for p in text(v).split(":") if p)

    soname = next((text(v) for t, v in entries if t == _DT_SONAME), None)
    needed = tuple(text(v) for t, v in entries if t == _DT_NEEDED)
    return DynamicInfo(path, soname, needed, paths(_DT_RPATH), paths(_DT_RUNPATH))


def _file_offset(vaddr: int, loads: list[tuple[int, int, int]]) -> int | None:
    for seg_vaddr, seg_offset, seg_filesz in loads:
        if seg_vaddr <= vaddr < seg_vaddr + seg_filesz:
            return vaddr - seg_vaddr + seg_offset
    return None
