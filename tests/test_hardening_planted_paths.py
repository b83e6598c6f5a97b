"""No native library is loaded from the working directory or the script's folder, however spelled.

Security finding: ``python -m`` puts the absolute working directory first on
``sys.path``, ``python script.py`` the script's folder, and an empty or
relative ``PYTHONPATH`` entry names the working directory too.  A planted
``nvidia/cu13/lib/libcublasLt.so.13`` beside an ``nvidia_cublas-*.dist-info``
there was preloaded and its constructor ran.  Every spelling below runs a
real child interpreter against a simulated CUDA install (real shared
objects, the system's loader); the planted library's constructor writes a
marker file if it ever runs.  Every planted row fails on the code before
this fix (checked against it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cuda_fake_site import (
    FakeCudaInstall,
    fake_cuda_env,
    gcc_shared,
    shared_fake_cuda,
    write_dist_info,
)

from mlx_portable import versions

_CONSTRUCTOR = """
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) {
    const char *mark = getenv("PLANTED_MARK");
    if (mark) { FILE *f = fopen(mark, "w"); if (f) { fputs("ran", f); fclose(f); } }
}
int cublasLtCreate(void) { return 0; }
"""

_CHILD = (
    "import mlx_portable, mlx.core\n"
    "print('LDPATH=' + mlx_portable.subprocess_env().get('LD_LIBRARY_PATH', ''))\n"
)


@pytest.fixture(scope="session")
def fake_cuda(tmp_path_factory: pytest.TempPathFactory) -> FakeCudaInstall:
    return shared_fake_cuda(tmp_path_factory)


def plant(folder: Path) -> Path:
    """A cuBLASLt with a constructor and the dist-info that makes the folder look installed."""
    write_dist_info(folder, "nvidia_cublas-13.1.0.3")
    return gcc_shared(
        folder / "nvidia" / "cu13" / "lib" / "libcublasLt.so.13",
        soname="libcublasLt.so.13",
        source=_CONSTRUCTOR,
    )


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


# name -> how the child is started: (python arguments, extra PYTHONPATH entries before the sites,
# extra entries after them); "{work}" is the planted folder (the child's working directory unless
# the row says otherwise), "{link}" a symlink to it.
SPELLINGS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "python -m (absolute working directory first)": (["-m", "mlx_portable", "--version"], [], []),
    "python -m with the child code as a module": (["-m", "planted_probe"], [], []),
    "python script.py (the script's folder)": (["{work}/planted_probe.py"], [], []),
    "empty PYTHONPATH entry at the end": (["-c", _CHILD], [], [""]),
    "empty PYTHONPATH entry first": (["-c", _CHILD], [""], []),
    "relative PYTHONPATH entry .": (["-c", _CHILD], ["."], []),
    "relative PYTHONPATH entry ./": (["-c", _CHILD], ["./"], []),
    "PYTHONPATH entry with /./ and a trailing slash": (["-c", _CHILD], ["{work}/./"], []),
    "PYTHONPATH entry through a symlink to the working directory": (["-c", _CHILD], ["{link}"], []),
    "sys.path.insert(0, os.getcwd())": (
        ["-c", "import os, sys; sys.path.insert(0, os.getcwd())\n" + _CHILD],
        [],
        [],
    ),
}


@pytest.mark.parametrize("spelling", list(SPELLINGS))
@pytest.mark.slow_every_mlx
def test_simulated_planted_library_never_runs(
    fake_cuda: FakeCudaInstall, tmp_path: Path, spelling: str
) -> None:
    work = tmp_path / "work"
    plant(work)
    (work / "planted_probe.py").write_text(_CHILD)
    link = tmp_path / "link-to-work"
    link.symlink_to(work, target_is_directory=True)
    mark = tmp_path / "planted-ran"
    args, before, after = SPELLINGS[spelling]
    fill = {"work": str(work), "link": str(link)}
    env = fake_cuda_env(*fake_cuda.path, PLANTED_MARK=str(mark))
    parts = [p.format(**fill) for p in before] + env["PYTHONPATH"].split(os.pathsep)
    parts += [p.format(**fill) for p in after]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    done = _run([a.format(**fill) for a in args], env, work)
    assert done.returncode == 0, done.stderr
    assert not mark.exists(), f"{spelling}: the planted library's constructor ran"
    for line in done.stdout.splitlines():
        if line.startswith("LDPATH="):
            entries = line[len("LDPATH=") :].split(os.pathsep)
            assert not any(e.startswith((str(work), str(link))) for e in entries), entries
            assert fake_cuda.folder("cu13") in entries  # the real wheel's folder is still used


def test_simulated_script_folder_elsewhere_is_not_searched(
    fake_cuda: FakeCudaInstall, tmp_path: Path
) -> None:
    """``python /other/script.py`` from a clean working directory: the script's folder is the planted one."""
    scripts = tmp_path / "scripts"
    plant(scripts)
    (scripts / "probe.py").write_text(_CHILD)
    clean = tmp_path / "clean"
    clean.mkdir()
    mark = tmp_path / "planted-ran"
    done = _run([str(scripts / "probe.py")], fake_cuda_env(*fake_cuda.path, PLANTED_MARK=str(mark)), clean)
    assert done.returncode == 0, done.stderr
    assert not mark.exists(), "the library planted beside the script ran"


def test_working_directory_that_is_a_real_site_folder_is_still_searched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Running from inside site-packages must not hide what is installed there."""
    site = sorted(versions.real_site_folders())
    real = next(s for s in site if os.path.isdir(s))
    monkeypatch.chdir(real)
    assert os.path.normpath(real) in versions.site_dirs([real])


def test_working_directory_spellings_are_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    link = tmp_path / "link"
    link.symlink_to(work, target_is_directory=True)
    monkeypatch.chdir(work)
    spelled = ["", ".", "./", str(work), f"{work}/", f"{work}/.", f"{tmp_path}/other/../work", str(link)]
    assert versions.site_dirs([*spelled, str(other)]) == [str(other)]
