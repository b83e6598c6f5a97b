"""The ELF reader answers every file with its dynamic section or its own ``NotAnElfFile``.

It runs on ``import mlx_portable`` on CUDA machines over whatever lies in
``nvidia/*/lib``; on 300 malformed files it used to raise 30 uncaught
``struct.error``/``OverflowError``/``OSError``/``MemoryError``.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest
from helpers import (
    fuzz_cases,
    fuzz_profile,  # noqa: F401  (loads the hypothesis profile)
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlx_portable.cuda.elf import DynamicInfo, NotAnElfFile, read_dynamic

if not sys.platform.startswith("linux"):
    pytest.skip("the sample shared object is an ELF file only on Linux", allow_module_level=True)

SAMPLE = fuzz_cases._sample_elf()


def _outcome(path: Path) -> DynamicInfo | NotAnElfFile:
    try:
        return read_dynamic(str(path))
    except NotAnElfFile as exc:
        assert str(path) in str(exc) and len(str(exc)) < 1000
        return exc


def test_a_real_library_parses(tmp_path: Path) -> None:
    path = tmp_path / "lib.so"
    path.write_bytes(SAMPLE)
    info = read_dynamic(str(path))
    assert "libc.so.6" in info.needed or info.needed == ()


def test_320_malformed_files(tmp_path: Path) -> None:
    # Truncations, corrupted headers, absurd offsets and sizes (fixed seed).
    outcomes = {"parsed": 0, "refused": 0}
    for n, (_, data) in enumerate(fuzz_cases.elf_inputs(count=320)):
        path = tmp_path / f"{n}.so"
        path.write_bytes(data)
        got = _outcome(path)
        outcomes["parsed" if isinstance(got, DynamicInfo) else "refused"] += 1
    assert outcomes["refused"] > 150 and sum(outcomes.values()) == 323


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=12),
    cut=st.one_of(st.none(), st.integers(0, 8192)),
)
def test_mutated_library(tmp_path: Path, edits: list[tuple[int, int]], cut: int | None) -> None:
    data = bytearray(SAMPLE)
    for offset, byte in edits:
        if offset < len(data):
            data[offset] = byte
    path = tmp_path / "mutant.so"
    path.write_bytes(bytes(data[:cut] if cut is not None else data))
    _outcome(path)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    wide=st.booleans(),
    little=st.booleans(),
    phoff=st.integers(0, 2**64 - 1),
    phentsize=st.integers(0, 2**16 - 1),
    phnum=st.integers(0, 2**16 - 1),
    tail=st.binary(max_size=256),
)
def test_any_header(
    tmp_path: Path, wide: bool, little: bool, phoff: int, phentsize: int, phnum: int, tail: bytes
) -> None:
    order = "<" if little else ">"
    header = bytearray(b"\x7fELF" + bytes([2 if wide else 1, 1 if little else 2]) + bytes(58))
    if wide:
        struct.pack_into(order + "Q", header, 0x20, phoff)
        struct.pack_into(order + "HH", header, 0x36, phentsize, phnum)
    else:
        struct.pack_into(order + "I", header, 0x1C, phoff % 2**32)
        struct.pack_into(order + "HH", header, 0x2A, phentsize, phnum)
    path = tmp_path / "header.so"
    path.write_bytes(bytes(header) + tail)
    _outcome(path)


def test_a_folder_and_a_missing_file_are_os_errors(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        read_dynamic(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        read_dynamic(str(tmp_path / "missing.so"))
