"""FIFOs and devices where mlx-portable expects a file: a clear answer at once, never a hang.

``open()`` on a FIFO waits for a writer: ``mlx_portable.cuda.elf.read_dynamic``
on a FIFO blocked forever, and so did ``import mlx_portable`` when an
``nvidia/*/lib/*.so*`` of a CUDA-looking site was a FIFO (the library search
read it, then ``dlopen`` would have).  Every reader of such files now opens
only regular files, without blocking, bounded.  Each case runs in a real
child with a time limit (a hang fails the test instead of stopping the run);
the simulated CUDA install is the one of ``cuda_fake_site`` (real shared
objects, the system's loader).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cuda_fake_site import FakeCudaInstall, fake_cuda_env, shared_fake_cuda
from helpers.subproc import child_env as plain_env

from mlx_portable.regular_files import NotARegularFile, read_regular


@pytest.fixture(scope="session")
def fake_cuda(tmp_path_factory: pytest.TempPathFactory) -> FakeCudaInstall:
    return shared_fake_cuda(tmp_path_factory)


def _child(code: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for {timeout} s")


SPECIAL = {
    "a FIFO": lambda p: os.mkfifo(p),
    "a link to /dev/zero": lambda p: os.symlink("/dev/zero", p),
    "a link to /dev/null": lambda p: os.symlink("/dev/null", p),
    "a folder": lambda p: p.mkdir(),
}


@pytest.mark.parametrize("kind", list(SPECIAL))
@pytest.mark.slow_every_mlx
def test_read_dynamic_refuses_at_once(kind: str, tmp_path: Path) -> None:
    target = tmp_path / "libx.so.1"
    SPECIAL[kind](target)
    code = (
        "from mlx_portable.cuda.elf import read_dynamic\n"
        f"try:\n    read_dynamic({str(target)!r})\nexcept OSError as exc:\n    print('refused', exc)\n"
    )
    done = _child(code, plain_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused") and "not a regular file" in done.stdout, done.stdout


@pytest.mark.parametrize("kind", list(SPECIAL))
def test_read_regular_refuses(kind: str, tmp_path: Path) -> None:
    target = tmp_path / "f"
    SPECIAL[kind](target)
    with pytest.raises(NotARegularFile, match="not a regular file"):
        read_regular(str(target), 100)


def test_read_regular_is_bounded(tmp_path: Path) -> None:
    target = tmp_path / "big"
    target.write_bytes(b"x" * 5000)
    assert read_regular(str(target), 1000) == b"x" * 1000


@pytest.mark.parametrize("kind", ["a FIFO", "a link to /dev/zero"])
@pytest.mark.parametrize(
    "where", ["cu13/lib/libcufft.so.12", "cu13/lib/libextra.so.1", "cudnn/lib/libcudnn.so.9"]
)
def test_simulated_import_with_a_special_file_among_the_libraries(
    fake_cuda: FakeCudaInstall, tmp_path: Path, kind: str, where: str
) -> None:
    install = fake_cuda.copy(tmp_path / "install")
    target = install.nvidia_site / "nvidia" / where
    if target.exists():
        target.unlink()
    SPECIAL[kind](target)
    code = (
        "import mlx_portable\n"
        "from mlx_portable.cuda.plan import make_plan\n"
        "plan = make_plan()\n"
        "print('missing', plan.missing)\n"
    )
    done = _child(code, fake_cuda_env(*install.path))
    assert done.returncode == 0, done.stderr[-2000:]
    if where.endswith("libcufft.so.12") or where.endswith("libcudnn.so.9"):
        # libmlx needs it and the only copy is not a file: reported missing, not loaded.
        assert os.path.basename(where) in done.stdout, done.stdout


@pytest.mark.parametrize("kind", ["a FIFO", "a link to /dev/zero"])
def test_simulated_special_metadata_and_header(fake_cuda: FakeCudaInstall, tmp_path: Path, kind: str) -> None:
    install = fake_cuda.copy(tmp_path / "install")
    metadata = install.mlx_site / "mlx_cuda_13-0.32.4.dist-info" / "METADATA"
    metadata.unlink()
    SPECIAL[kind](metadata)
    header = install.nvidia_site / "nvidia" / "cu13" / "include" / "cuda_runtime_api.h"
    header.unlink()
    SPECIAL[kind](header)
    code = (
        "from mlx_portable.cuda.layout import cuda_backend_package\n"
        "from mlx_portable.cuda.headers import _cuda_major_of_include\n"
        "print(cuda_backend_package().requires())\n"
        f"print(_cuda_major_of_include({str(header.parent)!r}))\n"
    )
    done = _child(code, fake_cuda_env(*install.path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["[]", "None"]
