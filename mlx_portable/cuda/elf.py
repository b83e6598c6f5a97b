"""Read the dynamic section of an ELF shared object: soname, needed libraries, RPATH, imports.

Enough of the ELF format (32/64-bit, either byte order) to answer what the
dynamic loader will look for, reading a few kilobytes even from a 500 MB
library.  Written here rather than taken from ``pyelftools`` because it runs
on the ``import mlx_portable`` path of CUDA machines, where a dependency that
costs tens of milliseconds to import is not welcome, and these few fields
are all that is needed.

:func:`read_relocations` lists the symbol relocations (the import slots a
library's calls go through: ``R_X86_64_JUMP_SLOT``, ``R_AARCH64_GLOB_DAT``
...), which the CPU BLAS binding (:mod:`mlx_portable.blas`) rewrites.
"""

from __future__ import annotations

import struct
import sys
from itertools import compress

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import BinaryIO

    NameTest = Callable[[str], bool] | None  # a filter on symbol or library names

__all__ = [
    "MACHINES",
    "RELOCATION_TYPES",
    "DynamicInfo",
    "NotAnElfFile",
    "Relocation",
    "Relocations",
    "read_dynamic",
    "read_relocations",
]

_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_STRSZ, _DT_SONAME, _DT_RPATH, _DT_RUNPATH = 0, 1, 5, 10, 14, 15, 29
_DT_PLTRELSZ, _DT_SYMTAB, _DT_RELA, _DT_RELASZ, _DT_RELAENT, _DT_SYMENT = 2, 6, 7, 8, 9, 11
_DT_REL, _DT_RELSZ, _DT_RELENT, _DT_PLTREL, _DT_JMPREL = 17, 18, 19, 20, 23

#: ``(e_machine, r_type)`` -> name, for the relocations that fill a pointer
#: slot with a symbol's address (what a call to an imported function reads).
RELOCATION_TYPES: dict[tuple[int, int], str] = {
    (62, 1): "R_X86_64_64",
    (62, 6): "R_X86_64_GLOB_DAT",
    (62, 7): "R_X86_64_JUMP_SLOT",
    (183, 257): "R_AARCH64_ABS64",
    (183, 1025): "R_AARCH64_GLOB_DAT",
    (183, 1026): "R_AARCH64_JUMP_SLOT",
}

#: ELF ``e_machine`` values by name (those :data:`RELOCATION_TYPES` covers).
MACHINES: dict[int, str] = {62: "x86_64", 183: "aarch64"}


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


class _Image:
    """The parsed headers of one ELF file: what the dynamic-section readers share."""

    __slots__ = ("entries", "fh", "loads", "machine", "order", "path", "size", "wide")

    def __init__(self, path: str, fh: BinaryIO) -> None:
        import os

        self.path, self.fh = path, fh
        self.size = os.fstat(fh.fileno()).st_size
        ident = fh.read(64)
        if len(ident) < 52 or ident[:4] != b"\x7fELF":
            raise NotAnElfFile(f"{path} is not an ELF file")
        if ident[4] not in (1, 2) or ident[5] not in (1, 2):
            raise NotAnElfFile(f"{path}: unknown ELF class {ident[4]} or byte order {ident[5]}")
        self.wide = wide = ident[4] == 2
        self.order = order = "<" if ident[5] == 1 else ">"
        self.machine = struct.unpack_from(order + "H", ident, 0x12)[0]
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
        table = self.read(phoff, phentsize * phnum, "program header table")
        self.loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
        dynamic: tuple[int, int] | None = None
        for i in range(phnum):
            fields = struct.unpack_from(ph_fmt, table, i * phentsize)
            if wide:
                p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = fields[:6]
            else:
                p_type, p_offset, p_vaddr, _paddr, p_filesz = fields[:5]
            if p_type == _PT_LOAD:
                self.loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == _PT_DYNAMIC:
                dynamic = (p_offset, p_filesz)
        if dynamic is None:
            raise NotAnElfFile(f"{path} has no dynamic section (not a shared object)")
        raw = self.read(dynamic[0], dynamic[1], "dynamic section")
        step = struct.calcsize(dyn_fmt)
        self.entries: list[tuple[int, int]] = []
        for offset in range(0, len(raw) - step + 1, step):
            tag, value = struct.unpack_from(dyn_fmt, raw, offset)
            if tag == _DT_NULL:
                break
            self.entries.append((tag, value))

    def read(self, offset: int, length: int, what: str) -> bytes:
        return _read_at(self.fh, self.size, offset, length, what, self.path)

    def value(self, tag: int) -> int | None:
        return next((v for t, v in self.entries if t == tag), None)

    def table(self, tag: int, size_tag: int, what: str) -> bytes:
        """The bytes of the table whose address is ``tag`` and size ``size_tag`` (empty if absent)."""
        address, size = self.value(tag), self.value(size_tag)
        if address is None or not size:
            return b""
        offset = _file_offset(address, self.loads)
        if offset is None:
            raise NotAnElfFile(f"{self.path}: the {what} is outside every loaded segment")
        return self.read(offset, size, what)

    def strings(self) -> bytes:
        strtab = self.value(_DT_STRTAB)
        if strtab is None:
            raise NotAnElfFile(f"{self.path} has no dynamic string table")
        base = _file_offset(strtab, self.loads)
        if base is None:
            raise NotAnElfFile(f"{self.path}: the dynamic string table is outside every loaded segment")
        strsz = self.value(_DT_STRSZ) or 0
        return self.read(base, min(strsz, max(self.size - base, 0)), "dynamic string table")

    def text(self, strings: bytes, index: int) -> str:
        if not 0 <= index < len(strings):
            raise NotAnElfFile(f"{self.path}: a dynamic entry points past the string table")
        end = strings.find(b"\0", index)
        return strings[index : end if end >= 0 else None].decode("utf-8", "replace")


def _parse(path: str, fh: BinaryIO) -> DynamicInfo:
    return _dynamic_info(_Image(path, fh))


def _dynamic_info(image: _Image) -> DynamicInfo:
    entries = image.entries
    strings = image.strings()

    def paths(tag: int) -> tuple[str, ...]:
        return tuple(p for t, v in entries if t == tag for p in image.text(strings, v).split(":") if p)

    soname = next((image.text(strings, v) for t, v in entries if t == _DT_SONAME), None)
    needed = tuple(image.text(strings, v) for t, v in entries if t == _DT_NEEDED)
    return DynamicInfo(image.path, soname, needed, paths(_DT_RPATH), paths(_DT_RUNPATH))


class Relocation:
    """One symbol relocation: the slot at ``offset`` (an address relative to the load base) gets ``symbol``.

    ``type`` is the machine's relocation number, ``type_name`` its name from
    :data:`RELOCATION_TYPES` (``""`` for one that does not fill a pointer
    slot), ``addend`` the explicit addend (``None`` in a ``REL`` table),
    ``defined`` whether the library defines the symbol itself.
    """

    __slots__ = ("addend", "defined", "offset", "symbol", "type", "type_name")

    def __init__(
        self, offset: int, type: int, type_name: str, symbol: str, addend: int | None, defined: bool
    ) -> None:
        self.offset = offset
        self.type = type
        self.type_name = type_name
        self.symbol = symbol
        self.addend = addend
        self.defined = defined

    def __repr__(self) -> str:
        return f"<Relocation {self.type_name or self.type} {self.symbol} at {self.offset:#x}>"


class Relocations:
    """What :func:`read_relocations` found: ``machine`` (``e_machine``), ``machine_name``, ``entries``.

    ``dynamic``: the file's :class:`DynamicInfo`, read in the same pass (so
    a caller that needs both parses the file once).
    """

    __slots__ = ("dynamic", "entries", "machine", "machine_name", "path")

    def __init__(
        self, path: str, machine: int, entries: list[Relocation], dynamic: DynamicInfo | None = None
    ) -> None:
        self.path = path
        self.machine = machine
        self.machine_name = MACHINES.get(machine, f"machine {machine}")
        self.entries = entries
        self.dynamic = dynamic if dynamic is not None else DynamicInfo(path, None, (), (), ())

    def imports(self, names: Iterable[str] | None = None) -> list[Relocation]:
        """The slot-filling relocations of undefined symbols (those in ``names`` if given)."""
        wanted = None if names is None else set(names)
        return [
            r
            for r in self.entries
            if r.type_name and not r.defined and (wanted is None or r.symbol in wanted)
        ]


def read_relocations(
    path: str, symbols: NameTest = None, *, needs: NameTest = None, initials: bytes | None = None
) -> Relocations:
    """Every relocation with a symbol in ``path``'s ``DT_RELA``/``DT_REL`` and ``DT_JMPREL`` tables.

    ``symbols``: keep only the relocations of the symbols it accepts (a
    library such as libmlx has thousands; reading a few is faster).
    ``initials``: the bytes every name ``symbols`` accepts starts with; a
    name starting otherwise is not even decoded (libmlx 0.32.4 relocates
    1,807 symbols, nearly all C++ ``_Z...`` names: 3.1 -> 1.1 ms for the
    BLAS ones).  ``needs``: read no relocation at all (``entries`` empty,
    ``dynamic`` read) unless one of the libraries the file needs is
    accepted by it: the mlx.core extension, which needs libmlx and no BLAS,
    costs its dynamic section only.

    Errors as for :func:`read_dynamic`: a malformed file is a
    :class:`NotAnElfFile` naming it.
    """
    with open(path, "rb") as fh:
        try:
            return _parse_relocations(path, fh, symbols, needs, initials)
        except NotAnElfFile:
            raise
        except (struct.error, OverflowError, ValueError, MemoryError, IndexError) as exc:
            raise NotAnElfFile(f"{path} is a malformed ELF file ({type(exc).__name__}: {exc})") from None


def _infos(data: bytes, fmt: str, wide: bool) -> tuple[memoryview, int, list[int]]:
    """One relocation table's usable bytes, its entry size and its ``r_info`` column.

    In the machine's own byte order the column is read as one array (C speed:
    libmlx's RELA table holds about 10,000 entries); otherwise each entry is
    unpacked.
    """
    step = struct.calcsize(fmt)
    usable = memoryview(data)[: len(data) - len(data) % step]
    columns = len(fmt) - 1
    if (fmt[0] == "<") == (sys.byteorder == "little") and struct.calcsize(
        "Q" if wide else "I"
    ) * columns == step:
        return usable, step, (usable.cast("Q") if wide else usable.cast("I"))[1::columns].tolist()
    return usable, step, [row[1] for row in struct.iter_unpack(fmt, usable)]


def _parse_relocations(
    path: str, fh: BinaryIO, wanted: NameTest, needs: NameTest, initials: bytes | None
) -> Relocations:
    """The relocations of ``path``: each symbol named looked up once, then only the wanted rows read."""
    image = _Image(path, fh)
    dynamic = _dynamic_info(image)
    if needs is not None and not any(needs(name) for name in dynamic.needed):
        return Relocations(path, image.machine, [], dynamic)
    wide, order = image.wide, image.order
    rela_fmt = order + ("QQq" if wide else "IIi")
    rel_fmt = order + ("QQ" if wide else "II")
    plt_kind = image.value(_DT_PLTREL)
    shift, mask = (32, 0xFFFFFFFF) if wide else (8, 0xFF)
    tables = []  # (usable bytes, entry size, r_info column, format, has addend)
    for data, has_addend in (
        (image.table(_DT_RELA, _DT_RELASZ, "RELA table"), True),
        (image.table(_DT_REL, _DT_RELSZ, "REL table"), False),
        (image.table(_DT_JMPREL, _DT_PLTRELSZ, "PLT relocation table"), plt_kind != _DT_REL),
    ):
        if data:
            fmt = rela_fmt if has_addend else rel_fmt
            tables.append((*_infos(data, fmt, wide), fmt, has_addend))
    # Most entries are R_*_RELATIVE (symbol 0): the distinct r_info values (C speed) are far fewer.
    distinct = [set(infos) for _, _, infos, _, _ in tables]
    indices = {info >> shift for values in distinct for info in values if info > mask}
    if not indices:
        return Relocations(path, image.machine, [], dynamic)
    symtab = image.value(_DT_SYMTAB)
    if symtab is None:
        raise NotAnElfFile(f"{path} has relocations but no dynamic symbol table")
    syment = image.value(_DT_SYMENT) or (24 if wide else 16)
    sym_offset = _file_offset(symtab, image.loads)
    if sym_offset is None:
        raise NotAnElfFile(f"{path}: the dynamic symbol table is outside every loaded segment")
    table = image.read(sym_offset, (max(indices) + 1) * syment, "dynamic symbol table")
    strings = image.strings()
    size = len(strings)
    unpack_sym = struct.Struct(order + ("IBBH" if wide else "I8xBBH")).unpack_from  # st_name ... st_shndx
    # st_name is each entry's first word: in the machine's own byte order, read as one array.
    native = (order == "<") == (sys.byteorder == "little") and syment % 4 == 0 and len(table) % 4 == 0
    names_at = memoryview(table).cast("I")[:: syment // 4] if native else None
    found: dict[int, tuple[str, bool]] = {}  # symbol index -> (name, defined), the wanted ones
    for sym in indices:
        st_name = names_at[sym] if names_at is not None else unpack_sym(table, sym * syment)[0]
        if not 0 <= st_name < size:
            raise NotAnElfFile(f"{path}: a dynamic entry points past the string table")
        if initials is not None and strings[st_name] not in initials:
            continue
        end = strings.find(b"\0", st_name)
        name = strings[st_name : end if end >= 0 else None].decode("utf-8", "replace")
        if wanted is None or wanted(name):
            found[sym] = (name, unpack_sym(table, sym * syment)[3] != 0)
    types = {kind: name for (machine, kind), name in RELOCATION_TYPES.items() if machine == image.machine}
    entries = []
    for (usable, step, infos, fmt, has_addend), values in zip(tables, distinct, strict=True):
        unpack = struct.Struct(fmt).unpack_from
        hits = {info for info in values if info > mask and info >> shift in found}
        # compress/map test each entry in C (libmlx's 10,000 RELA entries hold no BLAS slot: not scanned).
        for i in compress(range(len(infos)), map(hits.__contains__, infos)) if hits else ():
            row = unpack(usable, i * step)
            name, defined = found[row[1] >> shift]
            kind = row[1] & mask
            entries.append(
                Relocation(row[0], kind, types.get(kind, ""), name, row[2] if has_addend else None, defined)
            )
    return Relocations(path, image.machine, entries, dynamic)


def _file_offset(vaddr: int, loads: list[tuple[int, int, int]]) -> int | None:
    for seg_vaddr, seg_offset, seg_filesz in loads:
        if seg_vaddr <= vaddr < seg_vaddr + seg_filesz:
            return vaddr - seg_vaddr + seg_offset
    return None
