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


def read_dynamic(path: str) -> DynamicInfo:
    """Parse ``path``'s dynamic section; :class:`NotAnElfFile` if it has none."""
    with open(path, "rb") as fh:
        ident = fh.read(64)
        if len(ident) < 52 or ident[:4] != b"\x7fELF":
            raise NotAnElfFile(f"{path} is not an ELF file")
        wide = ident[4] == 2
        order = "<" if ident[5] == 1 else ">"
        if wide:
            phoff, phentsize, phnum = (
                struct.unpack_from(order + "Q", ident, 0x20)[0],
                *struct.unpack_from(order + "HH", ident, 0x36),
            )
            ph_fmt, dyn_fmt = order + "IIQQQQQQ", order + "qQ"
        else:
            phoff, phentsize, phnum = (
                struct.unpack_from(order + "I", ident, 0x1C)[0],
                *struct.unpack_from(order + "HH", ident, 0x2A),
            )
            ph_fmt, dyn_fmt = order + "IIIIIIII", order + "iI"
        fh.seek(phoff)
        table = fh.read(phentsize * phnum)
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
        fh.seek(dynamic[0])
        raw = fh.read(dynamic[1])
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
        fh.seek(base)
        strings = fh.read(strsz)

    def text(index: int) -> str:
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
