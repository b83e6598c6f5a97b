"""``cpu_blas``: mlx's CPU BLAS/LAPACK calls go to an optimized library (Linux mlx-cpu wheels).

Real wheels, real libraries: the slots are read back from memory and their
owners asked of the dynamic loader; results are checked against NumPy in
float64.  Speed is not asserted here: ``benchmarks/cpu_blas.py`` prints it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
import pytest
from helpers.shim_helpers import run_script
from helpers.subproc import env_with_settings

import mlx_portable
from mlx_portable.cpu_blas import binding, current
from mlx_portable.cpu_blas.libraries import installed_folders, thread_setting
from mlx_portable.cpu_blas.process import address_owner, read_slot
from mlx_portable.registry.registry import OBSOLETE

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the binding is Linux's")


@pytest.fixture(autouse=True)
def _leave_inactive() -> Iterator[None]:
    yield None
    mlx_portable.deactivate()


def _owner(symbol: str) -> str:
    """The file the loaded mlx's ``symbol`` slot points into now."""
    for obj in binding.mlx_objects(mx):
        from mlx_portable.cuda.elf import read_relocations

        for relocation in read_relocations(obj.path).imports([symbol]):
            return os.path.basename(address_owner(read_slot(obj.base + relocation.offset)) or "?")
    raise AssertionError(f"mlx imports no {symbol}")


@pytest.mark.slow_every_mlx
def test_activated_mlx_calls_the_optimized_library_and_deactivate_restores_the_slots() -> None:
    mlx_portable.activate()
    bound = current()
    assert bound is not None, mlx_portable.report().details.get("cpu_blas")
    assert "cblas_sgemm" in {s.symbol for s in bound.slots}
    assert _owner("cblas_sgemm").startswith("libscipy_openblas")
    assert _owner("spotrf_").startswith("libscipy_openblas")
    detail = mlx_portable.report().details["cpu_blas"]
    assert detail["state"] == "bound" and detail["library"] == "OpenBLAS (scipy-openblas32)"
    assert detail["version"] and detail["threads"] >= 1
    saved = [(s.address, s.original) for s in bound.slots]
    mlx_portable.deactivate()
    assert current() is None
    assert [(a, read_slot(a)) for a, _ in saved] == saved  # the exact values the loader wrote
    assert _owner("cblas_sgemm").startswith("libblas")
    assert mlx_portable.report().details["cpu_blas"]["state"] == "reference"
    a, b = np.random.default_rng(1).standard_normal((2, 64, 64)).astype(np.float32)
    assert np.allclose(np.array(mx.array(a) @ mx.array(b)), a @ b, atol=1e-3)  # mlx still right
    mlx_portable.activate()
    assert _owner("cblas_sgemm").startswith("libscipy_openblas")  # and again


@pytest.mark.parametrize("shape", [(256, 1024, 2816), (1, 512, 384), (33, 17, 65)])
@pytest.mark.slow_every_mlx
def test_float32_gemm_within_float32_tolerance_of_float64(shape: tuple[int, int, int]) -> None:
    mlx_portable.activate()
    assert current() is not None
    m, k, n = shape
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    got = np.array(mx.matmul(mx.array(a), mx.array(b), stream=mx.cpu))
    exact = a.astype(np.float64) @ b.astype(np.float64)
    # float32 rounding of a length-k dot product: k * eps * |a||b| at most.
    bound = k * np.finfo(np.float32).eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    assert np.all(np.abs(got - exact) <= bound + 1e-6)
    bt = np.array(mx.matmul(mx.array(a), mx.array(b.T.copy()).T, stream=mx.cpu))  # a transposed operand
    assert np.allclose(bt, exact, atol=1e-3, rtol=1e-4)


def test_lapack_routines_correct_with_the_binding() -> None:
    mlx_portable.activate()
    assert current() is not None
    rng = np.random.default_rng(2)
    m = rng.standard_normal((48, 48)).astype(np.float32)
    spd = m @ m.T + 48 * np.eye(48, dtype=np.float32)
    s = mx.array(spd)
    chol = np.array(mx.linalg.cholesky(s, stream=mx.cpu))
    assert np.allclose(chol @ chol.T, spd, atol=1e-2)
    inv = np.array(mx.linalg.inv(s, stream=mx.cpu))
    assert np.allclose(inv @ spd, np.eye(48), atol=1e-4)
    q, r = (np.array(x) for x in mx.linalg.qr(mx.array(m), stream=mx.cpu))
    assert np.allclose(q @ r, m, atol=1e-3)
    u, sv, vt = (np.array(x) for x in mx.linalg.svd(mx.array(m), stream=mx.cpu))
    assert np.allclose(sv, np.linalg.svd(m.astype(np.float64), compute_uv=False), rtol=1e-4, atol=1e-3)
    assert np.allclose((u[:, :48] * sv) @ vt, m, atol=1e-3)
    if hasattr(mx.linalg, "eigh"):
        w, v = (np.array(x) for x in mx.linalg.eigh(s, stream=mx.cpu))
        assert np.allclose(w, np.linalg.eigvalsh(spd.astype(np.float64)), rtol=1e-4)
        assert np.allclose(spd @ v, v * w, atol=1e-2)
    d = rng.standard_normal((32, 32))  # float64: dgetrf_/dgetri_ (mlx 0.30+ computes float64 on the CPU)
    try:
        dinv = np.array(mx.linalg.inv(mx.array(d, dtype=mx.float64), stream=mx.cpu))
    except (ValueError, RuntimeError, AttributeError):
        return  # this mlx has no float64
    assert np.allclose(dinv @ d, np.eye(32), atol=1e-9)


_ORDER = """
import json, os, sys
order = sys.argv[1]
if order == "mlx-first":
    import mlx.core as mx
    import mlx_portable
elif order == "portable-first":
    import mlx_portable
    import mlx.core as mx
else:  # activate() first: it imports mlx.core itself
    import mlx_portable
    assert "mlx.core" not in sys.modules
    mlx_portable.activate()
    import mlx.core as mx
from mlx_portable.cpu_blas import current
from mlx_portable.cpu_blas.process import address_owner, read_slot
bound_by_import = current() is not None and not mlx_portable.is_active()
mlx_portable.activate()
bound = current()
owners = {}
if bound is not None:
    owners = {s.symbol: os.path.basename(address_owner(read_slot(s.address)) or "?") for s in bound.slots}
import numpy as np
a = np.random.default_rng(0).standard_normal((128, 96)).astype(np.float32)
exact = a.astype(np.float64) @ a.T.astype(np.float64)
err = float(np.abs(np.array(mx.array(a) @ mx.array(a.T)) - exact).max())
print(json.dumps({
    "owners": owners, "detail": mlx_portable.report().details.get("cpu_blas"), "err": err,
    "bound_by_import": bound_by_import,
}))
"""


@pytest.mark.parametrize("order", ["mlx-first", "portable-first", "activate-first"])
@pytest.mark.slow_every_mlx
def test_bound_by_activate_whichever_import_comes_first(order: str) -> None:
    """``import mlx_portable`` leaves the BLAS alone (it stays cheap); ``activate()`` binds it, any order."""
    result = run_script(_ORDER, env_with_settings(), order)
    assert result.returncode == 0, result.stdout
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["bound_by_import"] is False
    assert out["detail"]["state"] == "bound", out
    assert out["owners"]["cblas_sgemm"].startswith("libscipy_openblas")
    assert all(owner.startswith("libscipy_openblas") for owner in out["owners"].values()), out["owners"]
    assert out["err"] < 1e-3


def test_without_mlx_portable_mlx_calls_the_reference_blas() -> None:
    """The scenario the patch changes: plain mlx's sgemm slot points into the vendored netlib libblas."""
    code = (
        "import os, mlx.core as mx\n"
        "from mlx_portable.cpu_blas.binding import mlx_objects, is_reference\n"
        "from mlx_portable.cpu_blas.process import address_owner, read_slot\n"
        "from mlx_portable.cuda.elf import read_relocations\n"
        "for o in mlx_objects(mx):\n"
        "    for r in read_relocations(o.path).imports(['cblas_sgemm']):\n"
        "        owner = address_owner(read_slot(o.base + r.offset))\n"
        "        print(os.path.basename(owner), is_reference(owner))\n"
    )
    result = run_script(code, env_with_settings(MLX_PORTABLE="0"))
    assert result.returncode == 0, result.stdout
    name, reference = result.stdout.split()[-2:]
    assert name.startswith("libblas") and reference == "True"


def test_disabled_by_mlx_portable_disable() -> None:
    code = (
        "import mlx_portable, mlx.core as mx\n"
        "from mlx_portable.cpu_blas import current\n"
        "mlx_portable.activate()\n"
        "p = [p for p in mlx_portable.report().patches if p.name == 'cpu_blas'][0]\n"
        "print(current(), p.status, '|', p.reason)\n"
    )
    result = run_script(code, env_with_settings(MLX_PORTABLE_DISABLE="cpu_blas"))
    assert result.returncode == 0, result.stdout
    assert (
        result.stdout.strip().splitlines()[-1]
        == "None skipped | disabled (MLX_PORTABLE_DISABLE or activate(disable=...))"
    )


@pytest.mark.slow_every_mlx
def test_thread_count_follows_affinity_and_environment() -> None:
    code = (
        "import os, sys; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "import mlx_portable, mlx.core as mx; mlx_portable.activate()\n"
        "d = mlx_portable.report().details['cpu_blas']; print(d['threads'], '|', d['thread_source'])\n"
    )
    result = run_script(code, env_with_settings())
    assert result.returncode == 0, result.stdout
    threads, source = result.stdout.strip().splitlines()[-1].split(" | ")
    assert threads == "1" and source == "1 CPUs in this process's affinity"
    result = run_script(code, env_with_settings(OPENBLAS_NUM_THREADS="3"))
    threads, source = result.stdout.strip().splitlines()[-1].split(" | ")
    assert threads == "3" and source == "OPENBLAS_NUM_THREADS=3"


def test_thread_setting_reads_the_first_variable_set(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    assert thread_setting(names) == (None, "")
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")
    assert thread_setting(names) == (4, "OMP_NUM_THREADS=4,2")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "many")
    count, note = thread_setting(names)
    assert count is None and "'many' ignored" in note


@pytest.mark.slow_every_mlx
def test_never_loads_from_the_working_directory_or_script_folder(tmp_path: Path) -> None:
    planted = tmp_path / "scipy_openblas32" / "lib"
    planted.mkdir(parents=True)
    (planted / "libscipy_openblas.so").write_bytes(b"not a library")
    (tmp_path / "scipy_openblas32-9.9.9.dist-info").mkdir()
    script = tmp_path / "job.py"
    script.write_text(
        "import sys, mlx_portable, mlx.core as mx\n"
        "from mlx_portable.cpu_blas.libraries import installed_folders\n"
        "from mlx_portable.cpu_blas import current\n"
        "mlx_portable.activate()\n"
        "print(sys.path[0] in installed_folders(), current().library.path)\n"
    )
    for command in ([sys.executable, str(script)], [sys.executable, "-c", script.read_text()]):
        result = subprocess.run(
            command,
            env=env_with_settings(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        listed, path = result.stdout.strip().splitlines()[-1].split(" ", 1)
        assert listed == "False" and os.path.isfile(path) and not path.startswith(str(tmp_path))
    assert str(tmp_path) not in installed_folders()


_BOUND_BEFORE = """
import sys
import mlx_portable, mlx.core as mx
from mlx_portable.cpu_blas import binding, libraries
mlx_portable.activate()
assert binding.current() is not None
binding._current = None  # as if another copy of mlx-portable, or the loader, had bound it
if sys.argv[1] == "other":  # the preferred library is another one than the one mlx calls
    library, notes = libraries.candidates()
    library.path = "/opt/other/libother_blas.so"
    binding.candidates = lambda: (library, notes)
try:
    binding.prepare(mx)
except binding.BindError as exc:
    print("refused:", exc)
"""


@pytest.mark.slow_every_mlx
def test_an_optimized_blas_already_bound_is_left_alone() -> None:
    result = run_script(_BOUND_BEFORE, env_with_settings(), "same")
    assert result.returncode == 0, result.stdout
    assert "refused: mlx already calls OpenBLAS (scipy-openblas32) (cblas_sgemm -> " in result.stdout
    assert "nothing to do" in result.stdout
    result = run_script(_BOUND_BEFORE, env_with_settings(), "other")
    assert result.returncode == 0, result.stdout
    assert "refused: mlx already calls an optimized BLAS (cblas_sgemm -> " in result.stdout
    assert (
        "libscipy_openblas" in result.stdout and "remove the other library from LD_PRELOAD" in result.stdout
    )


def test_no_mlx_loaded_is_an_unknown_layout_with_advice() -> None:
    code = (
        "import types\n"
        "from mlx_portable.cpu_blas import binding\n"
        "try:\n"
        "    binding.prepare(types.SimpleNamespace(__file__='/nowhere/core.so'))\n"
        "except binding.BindError as exc:\n"
        "    print('refused:', exc)\n"
    )
    result = run_script(code, env_with_settings(MLX_PORTABLE="0"))
    assert "refused: no loaded libmlx" in result.stdout and "please report" in result.stdout


def test_no_library_installed_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlx_portable.cpu_blas import libraries

    monkeypatch.setattr(libraries, "installed_folders", list)
    monkeypatch.setattr(libraries, "_system_openblas", lambda: (None, "no libopenblas.so.0"))
    monkeypatch.setattr(libraries, "_system_blis", lambda: (None, "no libblis.so.4"))
    monkeypatch.setattr(libraries, "_mkl_paths", lambda folders: [])
    with pytest.raises(binding.BindError, match=r"pip install scipy-openblas32"):
        binding.prepare(mx)


def test_macos_accelerate_nothing_to_do_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlx_portable.patches import cpu_blas
    from mlx_portable.registry.context import PatchContext, PatchRecord

    monkeypatch.setattr(sys, "platform", "darwin")
    verdict = cpu_blas._check(PatchContext(PatchRecord(cpu_blas.cpu_blas), None))
    assert verdict is not None and verdict.status == OBSOLETE and "Accelerate" in verdict.reason


_AARCH64 = Path(__file__).parent / "fixtures" / "libmlx-0.32.4-aarch64-headers.so.gz"


def test_aarch64_wheel_slots_read_statically(tmp_path: Path) -> None:
    """mlx-cpu 0.32.4's manylinux aarch64 libmlx.so (Graviton, Grace): its BLAS slots and their types."""
    import gzip

    from mlx_portable.cuda.elf import read_dynamic, read_relocations

    library = tmp_path / "libmlx.so"
    library.write_bytes(gzip.decompress(_AARCH64.read_bytes()))
    relocations = read_relocations(str(library))
    assert relocations.machine_name == "aarch64"
    slots = binding.blas_imports(relocations)
    assert {r.symbol for r in slots} >= {
        "cblas_sgemm",
        "cblas_dgemm",
        "cblas_cgemm",
        "sgetrf_",
        "spotrf_",
        "ssyevd_",
    }
    assert len(slots) == 24 and {r.type_name for r in slots} == {"R_AARCH64_JUMP_SLOT"}
    assert all(r.offset % 8 == 0 and r.addend == 0 for r in slots)
    # The same relocation table holds GLOB_DAT and ABS64 imports (C++ runtime symbols): named, not confused.
    kinds = {r.type_name for r in relocations.imports()}
    assert {"R_AARCH64_GLOB_DAT", "R_AARCH64_ABS64", "R_AARCH64_JUMP_SLOT"} <= kinds
    needed = read_dynamic(str(library)).needed
    assert [n for n in needed if binding.reference_name(n)] == [
        "liblapack-a87cd5b5.so.3.10.0",
        "libblas-87cf96dc.so.3.10.0",
    ]


def test_glob_dat_and_absolute_slots_are_bound_too() -> None:
    """A function whose address mlx takes (GLOB_DAT) is rebound like a PLT slot; one with an addend is not."""
    from mlx_portable.cuda.elf import Relocation, Relocations

    entries = [
        Relocation(0x10, 1025, "R_AARCH64_GLOB_DAT", "sgemv_", 0, False),
        Relocation(0x18, 1026, "R_AARCH64_JUMP_SLOT", "cblas_sgemm", 0, False),
        Relocation(0x20, 257, "R_AARCH64_ABS64", "cblas_dgemm", 0, False),
        Relocation(0x28, 257, "R_AARCH64_ABS64", "cblas_cgemm", 8, False),
        Relocation(0x30, 6, "R_X86_64_GLOB_DAT", "spotrf_", 0, True),  # defined here: not an import
        Relocation(0x38, 1026, "R_AARCH64_JUMP_SLOT", "memcpy", 0, False),
        Relocation(0x40, 1027, "", "sgetrf_", 0, False),  # R_AARCH64_RELATIVE-like: no slot
    ]
    chosen = binding.blas_imports(Relocations("x", 183, entries))
    assert [r.symbol for r in chosen] == ["sgemv_", "cblas_sgemm", "cblas_dgemm"]


def test_x86_64_wheel_slots_match_what_the_loader_filled() -> None:
    """Each slot read from the file, at load base + offset, holds the address the loader resolved."""
    objects = binding.mlx_objects(mx)
    assert objects, "mlx's libraries are not in the loader's list"
    from mlx_portable.cuda.elf import read_relocations

    found = {}
    for obj in objects:
        for relocation in binding.blas_imports(read_relocations(obj.path)):
            owner = address_owner(read_slot(obj.base + relocation.offset))
            found[relocation.symbol] = (relocation.type_name, os.path.basename(owner or "?"))
    assert "cblas_sgemm" in found and "spotrf_" in found
    assert {t for t, _ in found.values()} <= {"R_X86_64_JUMP_SLOT", "R_X86_64_GLOB_DAT", "R_X86_64_64"}
    if current() is None:
        assert {o.split("-")[0] for _, o in found.values()} <= {"libblas", "liblapack"}


def test_cuda_build_left_alone_with_a_report_line_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    """mlx-cuda's libmlx needs libcublasLt and libcuda: the patch leaves its CPU BLAS alone and says so."""
    from mlx_portable.cpu_blas import binding
    from mlx_portable.cuda import elf
    from mlx_portable.patches import cpu_blas
    from mlx_portable.registry.context import PatchContext, PatchRecord
    from mlx_portable.registry.registry import SKIPPED

    real = elf.read_relocations

    def as_cuda_build(
        path: str, symbols: Callable[[str], bool] | None = None, **how: Callable[[str], bool] | None
    ) -> elf.Relocations:
        found = real(path, symbols, **how)
        if os.path.basename(path).startswith("libmlx"):  # mlx-cuda-13 0.32.4's needed list, in part
            info = found.dynamic
            found.dynamic = elf.DynamicInfo(
                path, info.soname, ("libcublasLt.so.13", "libcuda.so.1", *info.needed), (), ()
            )
        return found

    monkeypatch.setattr(binding, "read_relocations", as_cuda_build)
    record = PatchRecord(cpu_blas.cpu_blas)
    verdict = cpu_blas._check(PatchContext(record, None))
    assert verdict is not None and verdict.status == SKIPPED and "CUDA build" in verdict.reason
    assert "plan" not in record.state  # nothing was prepared, no library loaded for it


def test_cuda_libraries_loaded_beside_a_cpu_mlx_do_not_stop_the_binding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PyTorch or CuPy load libcublas into the process; mlx-cpu still gets its BLAS."""
    from mlx_portable.cpu_blas import process
    from mlx_portable.patches import cpu_blas
    from mlx_portable.registry.context import PatchContext, PatchRecord

    real = process.loaded_objects()
    fake = process.LoadedObject("/site/nvidia/cublas/lib/libcublasLt.so.12", 0x7F0000000000)
    monkeypatch.setattr(process, "loaded_objects", lambda: [*real, fake])
    monkeypatch.setattr(binding, "loaded_objects", lambda: [*real, fake])
    record = PatchRecord(cpu_blas.cpu_blas)
    assert cpu_blas._check(PatchContext(record, None)) is None
    assert record.state["plan"].slots


def test_mkl_installed_is_preferred_and_a_broken_one_falls_through(tmp_path: Path) -> None:
    """The mkl wheel's layout (<prefix>/lib/libmkl_rt.so.2 beside lib/pythonX.Y/site-packages) is found;
    a file there that does not load leaves the choice to scipy-openblas32."""
    from mlx_portable.cpu_blas import libraries

    site = tmp_path / "lib" / "python3.11" / "site-packages"
    (site / "mkl-2025.2.0.dist-info").mkdir(parents=True)
    (tmp_path / "lib" / "libmkl_rt.so.2").write_bytes(b"not a library")
    paths = libraries._mkl_paths([str(site)])
    assert str(tmp_path / "lib" / "libmkl_rt.so.2") in paths
    assert paths[-3:] == ["libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so.1"]
    library, note = libraries._mkl([str(site)])
    assert library is None and note == "MKL is not installed"
    chosen, notes = libraries.candidates()
    assert (
        chosen is not None
        and chosen.name == "OpenBLAS (scipy-openblas32)"
        and notes == ["MKL is not installed"]
    )


def test_mkl_with_64_bit_integers_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlx_portable.cpu_blas import libraries

    monkeypatch.setenv("MKL_INTERFACE_LAYER", "ILP64")
    library, note = libraries._mkl([])
    assert library is None and "64-bit integers" in note


def test_relocation_reader_answers_malformed_files_with_its_own_error(tmp_path: Path) -> None:
    """The binding reads the relocations of the loaded libmlx*: a corrupt file is a NotAnElfFile naming it."""
    from helpers import fuzz_cases

    from mlx_portable.cpu_blas import binding
    from mlx_portable.cuda.elf import NotAnElfFile, Relocations, read_relocations

    outcomes = {"parsed": 0, "refused": 0}
    for n, (_, data) in enumerate(fuzz_cases.elf_inputs(count=320)):
        path = tmp_path / f"{n}.so"
        path.write_bytes(data)
        try:
            got = read_relocations(str(path))
        except NotAnElfFile as exc:
            assert str(path) in str(exc) and len(str(exc)) < 1000
            outcomes["refused"] += 1
            continue
        assert isinstance(got, Relocations)
        outcomes["parsed"] += 1
        # The binding's own read (names filtered by their first byte): the same answer filtered, or refused.
        try:
            some = read_relocations(str(path), binding.blas_symbol, initials=binding.BLAS_INITIALS.encode())
        except NotAnElfFile:
            continue
        assert [r.symbol for r in some.entries] == [
            r.symbol for r in got.entries if binding.blas_symbol(r.symbol)
        ]
    assert outcomes["refused"] > 150 and sum(outcomes.values()) == 323


def test_the_filtered_relocation_read_is_the_full_read_filtered() -> None:
    """``read_relocations(path, symbols, needs=..., initials=...)`` reads less, never something else.

    The binding reads only libmlx's BLAS/LAPACK relocations (decoding only
    the names that start with a BLAS initial), and none of an object that
    needs no BLAS library (the mlx.core extension): each the full read's
    entries, in order, with the same offsets, types and addends.  An
    ``initials`` that leaves out a letter the names start with drops
    exactly those names.
    """
    from mlx_portable.cpu_blas import binding
    from mlx_portable.cuda.elf import read_dynamic, read_relocations

    def rows(entries: list[Any]) -> list[tuple[object, ...]]:
        return [(r.offset, r.type, r.type_name, r.symbol, r.addend, r.defined) for r in entries]

    read_some = 0
    for obj in binding.mlx_objects(mx):
        full = read_relocations(obj.path)
        initials = binding.BLAS_INITIALS.encode()
        fast = read_relocations(obj.path, binding.blas_symbol, needs=binding._blas_library, initials=initials)
        assert fast.dynamic.needed == full.dynamic.needed == read_dynamic(obj.path).needed
        if any(binding._blas_library(n) for n in full.dynamic.needed):
            assert rows(fast.entries) == rows([r for r in full.entries if binding.blas_symbol(r.symbol)])
            assert binding.blas_imports(fast)
            no_c = read_relocations(obj.path, binding.blas_symbol, initials=b"sdz")
            kept = [r for r in full.entries if binding.blas_symbol(r.symbol) and r.symbol[0] != "c"]
            assert rows(no_c.entries) == rows(kept) and len(kept) < len(fast.entries)
            read_some += 1
        else:
            assert fast.entries == [] and full.entries  # skipped, though it has relocations
    assert read_some == 1
