"""The NVIDIA library search never trusts the working directory or a folder no wheel installed.

``python -c``/``python -m`` put ``''`` (the working directory) first on
``sys.path``; a ``./nvidia/cu13/lib/libcublasLt.so.13`` planted there used to
be preloaded into the process (its constructor ran) and put first on a
child's ``LD_LIBRARY_PATH``.  Simulated CUDA install (real shared objects,
real loader), real child processes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.cuda_fake_site import FakeCudaInstall, fake_cuda_env, gcc_shared
from helpers.subproc import run_python

from mlx_portable.cuda import layout

_CONSTRUCTOR = """
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) {
    const char *mark = getenv("PLANTED_MARK");
    if (mark) { FILE *f = fopen(mark, "w"); if (f) { fputs("ran", f); fclose(f); } }
}
int cublasLtCreate(void) { return 0; }
"""


def _plant(folder: Path) -> Path:
    """A library with a constructor, where a CUDA 13 wheel would put cuBLASLt."""
    return gcc_shared(
        folder / "nvidia" / "cu13" / "lib" / "libcublasLt.so.13",
        soname="libcublasLt.so.13",
        source=_CONSTRUCTOR,
    )


@pytest.mark.slow_every_mlx
def test_simulated_planted_library_in_working_directory_is_never_loaded(
    fake_cuda: FakeCudaInstall, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    _plant(workdir)
    mark = tmp_path / "planted-ran"
    env = fake_cuda_env(*fake_cuda.path, PLANTED_MARK=str(mark))
    code = (
        "import mlx_portable, mlx.core, os\nprint(mlx_portable.subprocess_env().get('LD_LIBRARY_PATH', ''))\n"
    )
    done = run_child_in(code, env, workdir)
    assert done.returncode == 0, done.stderr
    assert not mark.exists(), "the planted library's constructor ran"
    entries = done.stdout.strip().split(os.pathsep)
    assert not any(e.startswith(str(workdir)) for e in entries), entries
    assert fake_cuda.folder("cu13") in entries  # the real wheel's folder is still used


def run_child_in(code: str, env: dict[str, str], cwd: Path):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_relative_and_empty_path_entries_are_not_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    (site / "nvidia" / "cudnn" / "lib").mkdir(parents=True)
    (site / "nvidia_cudnn_cu13-9.13.0.50.dist-info").mkdir()
    monkeypatch.chdir(site)
    assert layout.site_dirs(["", ".", "site"]) == []
    assert [f.path for f in layout.nvidia_library_folders(path=["", "."])] == []
    # Spelled absolutely it is still the working directory (what ``python -m`` puts first).
    assert [f.path for f in layout.nvidia_library_folders(path=[str(site)])] == []
    monkeypatch.chdir(tmp_path)
    assert [f.path for f in layout.nvidia_library_folders(path=[str(site)])] == [
        str(site / "nvidia" / "cudnn" / "lib")
    ]


def test_library_folder_without_its_wheel_is_not_trusted(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for sub in ("cu13", "cudnn", "nccl"):
        (site / "nvidia" / sub / "lib").mkdir(parents=True)
        (site / "nvidia" / sub / "include").mkdir(parents=True)
        (site / "nvidia" / sub / "include" / "cuda_runtime.h").write_text("")
    assert layout.nvidia_library_folders(path=[str(site)]) == []
    assert layout.header_folders(path=[str(site)]) == []
    (site / "nvidia_nccl_cu13-2.27.7.dist-info").mkdir()
    assert [f.path for f in layout.nvidia_library_folders(path=[str(site)])] == [
        str(site / "nvidia" / "nccl" / "lib")
    ]


def test_simulated_child_env_of_a_fake_install_is_unchanged(fake_cuda: FakeCudaInstall) -> None:
    # The wheels' own folders still reach a child (what subprocess_env is for).
    done = run_python(
        "import mlx_portable; print(mlx_portable.subprocess_env()['LD_LIBRARY_PATH'])",
        env=fake_cuda_env(*fake_cuda.path),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().split(os.pathsep)[0] == fake_cuda.folder("cu13")
