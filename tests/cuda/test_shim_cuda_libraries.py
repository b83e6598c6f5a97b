"""NVIDIA library discovery, load order, CUDA-major matching and error texts.

Simulated CUDA installs (see ``cuda_fake_site``): real folder and file names
of the wheels, real shared objects built with gcc, the system's own loader.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers.cuda_fake_site import (
    CU12_DIST_INFOS,
    CU12_LIBRARIES,
    MLX_CUDA_13_REQUIRES,
    FakeCudaInstall,
    build_nvidia_libraries,
    fake_cuda_env,
    require_toolchain,
    write_dist_info,
)
from helpers.subproc import run_python

from mlx_portable.cuda.elf import NotAnElfFile, read_dynamic
from mlx_portable.cuda.layout import cuda_backend_package, nvidia_library_folders
from mlx_portable.cuda.packages import (
    cuda_major_of_soname,
    install_command_for,
    package_for_library,
    requirement_for,
)
from mlx_portable.cuda.plan import make_plan
from mlx_portable.cuda.status import missing_library_entries

# -- package table ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("soname", "major", "package"),
    [
        ("libcublasLt.so.13", None, "nvidia-cublas"),
        ("libcublasLt.so.12", None, "nvidia-cublas-cu12"),
        ("libcufft.so.11", None, "nvidia-cufft-cu12"),
        ("libcufft.so.12", None, "nvidia-cufft"),
        ("libcusolver.so.12", 13, "nvidia-cusolver"),
        ("libcudnn.so.9", 12, "nvidia-cudnn-cu12"),
        ("libcudnn.so.9", 13, "nvidia-cudnn-cu13"),
        ("libcudnn_graph.so.9", 12, "nvidia-cudnn-cu12"),
        ("libnccl.so.2", 13, "nvidia-nccl-cu13"),
        ("libcusparse.so.12", 12, "nvidia-cusparse-cu12"),
        ("libcusparse.so.12", 13, "nvidia-cusparse"),
        ("libnvrtc-builtins.so.13.5", None, "nvidia-cuda-nvrtc"),
    ],
)
def test_package_for_library_follows_backend_cuda_major(soname: str, major: int | None, package: str) -> None:
    found = package_for_library(soname, major)
    assert found is not None and found[0] == package


def test_soname_majors_that_do_not_say_the_cuda_version() -> None:
    assert cuda_major_of_soname("libcufft.so.11") == 12
    assert cuda_major_of_soname("libcusolver.so.12") == 13
    assert cuda_major_of_soname("libcusparse.so.12") is None  # both CUDA 12 and 13
    assert cuda_major_of_soname("libnccl.so.2") is None
    assert package_for_library("libfoo.so.1") is None


def test_install_command_uses_the_backend_packages_own_pin() -> None:
    assert requirement_for("nvidia-cublas", MLX_CUDA_13_REQUIRES) == "nvidia-cublas==13.*"
    assert requirement_for("nvidia-nccl-cu13", MLX_CUDA_13_REQUIRES) == "nvidia-nccl-cu13"
    assert (
        requirement_for("nvidia-cusparse", MLX_CUDA_13_REQUIRES) == "nvidia-cusparse"
    )  # not a direct dependency
    assert requirement_for("nvidia-cufft-cu12", ()) == "nvidia-cufft-cu12==11.4.*"
    assert install_command_for("nvidia-cublas==13.*") == 'pip install "nvidia-cublas==13.*"'


# -- ELF reader ---------------------------------------------------------------------


def test_elf_reader_matches_the_fake_libmlx(fake_cuda: FakeCudaInstall) -> None:
    info = read_dynamic(str(fake_cuda.libmlx))
    assert info.soname == "libmlx.so"
    assert info.needed[:2] == ("libnccl.so.2", "libcublasLt.so.13")
    assert info.rpath[0] == "$ORIGIN/../../nvidia/cu13/lib" and info.runpath == ()
    core = next((fake_cuda.mlx_site / "mlx").glob("core*.so"))
    assert read_dynamic(str(core)).runpath == ("$ORIGIN/lib",)


def test_elf_reader_rejects_other_files(tmp_path: Path) -> None:
    text = tmp_path / "libnot.so.1"
    text.write_text("INPUT(-lfoo)\n")  # a linker script, as some distributions ship
    with pytest.raises(NotAnElfFile):
        read_dynamic(str(text))


# -- discovery -----------------------------------------------------------------------


def test_simulated_backend_package_found_from_dist_info_names(
    fake_cuda: FakeCudaInstall, tmp_path: Path
) -> None:
    backend = cuda_backend_package(fake_cuda.path)
    assert backend is not None
    assert (backend.name, backend.version, backend.cuda_major) == ("mlx-cuda-13", "0.32.4", 13)
    assert "nvidia-cublas==13.*" in backend.requires()
    assert cuda_backend_package([str(tmp_path)]) is None


def test_simulated_library_folders_keep_only_the_backends_cuda_major(
    fake_cuda: FakeCudaInstall, tmp_path: Path
) -> None:
    cu12 = tmp_path / "site-cu12"
    build_nvidia_libraries(cu12, CU12_LIBRARIES, CU12_DIST_INFOS)
    path = [str(cu12), *fake_cuda.path]
    for13 = [f.path for f in nvidia_library_folders(13, path)]
    assert for13 == [fake_cuda.folder("cu13"), fake_cuda.folder("cudnn"), fake_cuda.folder("nccl")]
    for12 = [f.path for f in nvidia_library_folders(12, path)]
    assert str(cu12 / "nvidia" / "cublas" / "lib") in for12
    assert str(cu12 / "nvidia" / "cudnn" / "lib") in for12  # nvidia_cudnn_cu12 dist-info beside it
    assert fake_cuda.folder("cudnn") not in for12  # nvidia_cudnn_cu13 beside that one


# -- the load plan -------------------------------------------------------------------


def test_simulated_plan_preloads_dependencies_first(fake_cuda: FakeCudaInstall) -> None:
    plan = make_plan(fake_cuda.path, env={})
    order = [name for name, _ in plan.preload]
    assert plan.missing == [] and plan.problems == []
    assert set(order) >= {"libcublasLt.so.13", "libcublas.so.13", "libcusolver.so.12", "libcudnn.so.9"}
    for dependency, dependent in [
        ("libcublasLt.so.13", "libcublas.so.13"),
        ("libcublas.so.13", "libcusolver.so.12"),
        ("libnvJitLink.so.13", "libcusparse.so.12"),
        ("libcusparse.so.12", "libcusolver.so.12"),
        ("libnvrtc.so.13", "libnvrtc-builtins.so.13.5"),
    ]:
        assert order.index(dependency) < order.index(dependent)
    assert "libcudart.so.13" not in order  # libmlx does not need it: nothing loaded needlessly


def test_simulated_plan_prefers_the_backends_cuda_major(fake_cuda: FakeCudaInstall, tmp_path: Path) -> None:
    cu12 = tmp_path / "site-cu12"
    build_nvidia_libraries(cu12, CU12_LIBRARIES, CU12_DIST_INFOS)
    plan = make_plan([*fake_cuda.path[:1], str(cu12), *fake_cuda.path[1:]], env={})
    paths = dict(plan.preload)
    # libcudnn.so.9 / libnccl.so.2 exist in both: the CUDA 13 wheels' copies are taken.
    assert paths["libcudnn.so.9"] == os.path.join(fake_cuda.folder("cudnn"), "libcudnn.so.9")
    assert paths["libnccl.so.2"] == os.path.join(fake_cuda.folder("nccl"), "libnccl.so.2")


def test_simulated_plan_is_empty_when_the_loader_finds_everything(
    fake_cuda: FakeCudaInstall, tmp_path: Path
) -> None:
    require_toolchain()
    # The happy path: the nvidia-* wheels in mlx's own site-packages (RPATH finds them).
    together = fake_cuda.copy(tmp_path / "together")
    for entry in together.nvidia_site.iterdir():
        entry.rename(together.mlx_site / entry.name)
    plan = make_plan([str(together.mlx_site)], env={})
    assert plan.preload == [] and plan.missing == []
    assert plan.found["libcublasLt.so.13"].endswith("site-mlx/nvidia/cu13/lib/libcublasLt.so.13")
    # And LD_LIBRARY_PATH set before the process started counts as found too.
    env = {"LD_LIBRARY_PATH": ":".join(f.path for f in nvidia_library_folders(13, fake_cuda.path))}
    assert make_plan(fake_cuda.path, env=env).preload == []


def test_simulated_missing_library_named_with_package_and_command(
    fake_cuda: FakeCudaInstall, tmp_path: Path
) -> None:
    broken = fake_cuda.copy(tmp_path / "broken")
    (broken.nvidia_site / "nvidia" / "cu13" / "lib" / "libcufft.so.12").unlink()
    plan = make_plan(broken.path, env={})
    assert plan.missing == ["libcufft.so.12"]
    (entry,) = missing_library_entries(plan)
    assert entry["package"] == "nvidia-cufft"
    assert entry["install"] == 'pip install "nvidia-cufft==12.*"'


# -- the real loader, in child processes --------------------------------------------


def test_simulated_wrong_preload_order_fails_as_the_loader_would(fake_cuda: FakeCudaInstall) -> None:
    # Why the order matters: cuBLAS needs cuBLASLt, which the loader cannot find by itself.
    code = f"import ctypes; ctypes.CDLL({os.path.join(fake_cuda.folder('cu13'), 'libcublas.so.13')!r})"
    done = run_python(code, env=fake_cuda_env())
    assert done.returncode != 0
    assert "libcublasLt.so.13: cannot open shared object file" in done.stderr


def test_simulated_plain_import_fails_with_libraries_in_another_site(fake_cuda: FakeCudaInstall) -> None:
    done = run_python("import mlx.core", env=fake_cuda_env(*fake_cuda.path))
    assert done.returncode != 0
    assert "cannot open shared object file" in done.stderr


def test_simulated_import_works_after_import_mlx_portable(fake_cuda: FakeCudaInstall) -> None:
    code = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "import mlx_portable\n"
        "import mlx.core as mx\n"
        "print(mx.__version__, mx.fake_entry)\n"
        "r = mlx_portable.report()\n"
        "print(r.patch('cuda_libraries').status)\n"
        "print('\\n'.join(r.details['cuda_libraries']['preloaded']))\n"
        "mlx_portable.deactivate()\n"
        "print('again:', mlx_portable.activate().patch('cuda_libraries').reason)\n"
    )
    done = run_python(code, env=fake_cuda_env(*fake_cuda.path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "0.32.4 42" and lines[1] == "applied"
    assert lines[-1].startswith("again: mlx.core is loaded, on the 10 NVIDIA libraries preloaded earlier")
    loaded = [os.path.basename(p) for p in lines[2:-1]]
    assert (
        loaded.index("libcublasLt.so.13")
        < loaded.index("libcublas.so.13")
        < loaded.index("libcusolver.so.12")
    )


def test_simulated_import_works_again_after_a_failed_first_import(fake_cuda: FakeCudaInstall) -> None:
    code = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "try:\n    import mlx.core\nexcept ImportError as e:\n    print('first:', e)\n"
        "import mlx_portable\n"
        "import mlx.core\n"
        "print('second:', mlx.core.__version__)\n"
    )
    done = run_python(code, env=fake_cuda_env(*fake_cuda.path))
    assert done.returncode == 0, done.stderr
    assert "cannot open shared object file" in done.stdout and "second: 0.32.4" in done.stdout


def test_simulated_missing_library_error_names_package_and_command(
    fake_cuda: FakeCudaInstall, tmp_path: Path
) -> None:
    broken = fake_cuda.copy(tmp_path / "broken")
    (broken.nvidia_site / "nvidia" / "cu13" / "lib" / "libcublasLt.so.13").unlink()
    code = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "import mlx_portable\n"
        "try:\n    import mlx.core\n"
        "except ImportError as e:\n    print(type(e).__name__); print(e); print('cause:', e.__cause__)\n"
    )
    done = run_python(code, env=fake_cuda_env(*broken.path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("MlxUnavailableError")
    assert "libcublasLt.so.13" in done.stdout and "nvidia-cublas" in done.stdout
    assert 'pip install "nvidia-cublas==13.*"' in done.stdout
    assert "cause: libcublasLt.so.13: cannot open shared object file" in done.stdout


def test_simulated_error_without_preload_says_how_to_import_in_order(fake_cuda: FakeCudaInstall) -> None:
    # MLX_PORTABLE=0: nothing preloaded; mlx_portable's own mlx access explains the fix.
    code = "import mlx_portable._mlx as m\ntry:\n    m.core()\nexcept ImportError as e:\n    print(e)\n"
    done = run_python(code, env=fake_cuda_env(*fake_cuda.path, MLX_PORTABLE="0"))
    assert done.returncode == 0, done.stderr
    assert "Import mlx_portable before mlx.core" in done.stdout
    assert "export LD_LIBRARY_PATH=" in done.stdout and fake_cuda.folder("cu13") in done.stdout


def test_no_backend_package_means_nothing_loaded_at_import(tmp_path: Path) -> None:
    write_dist_info(tmp_path, "mlx_cpu-0.32.4")
    code = (
        "import sys, mlx_portable\n"
        "cuda = ('mlx_portable.cu', 'mlx_portable.patches.cu')\n"
        "print(sorted(m for m in sys.modules if m.startswith(cuda)))"
    )
    done = run_python(code, env=fake_cuda_env(tmp_path))
    assert done.returncode == 0, done.stderr
    # Only the patch declarations and the dist-info scan (in versions) ran: nothing of cuda/, no
    # ELF reading, no ctypes, no runtime.
    assert done.stdout.strip() == "['mlx_portable.patches.cuda_libraries']"


@pytest.mark.slow_every_mlx
def test_simulated_cuda_status_for_the_cli(fake_cuda: FakeCudaInstall, tmp_path: Path) -> None:
    code = (
        "import json, warnings; warnings.simplefilter('ignore')\n"
        "from mlx_portable.cuda.runtime import cuda_status\n"
        "print(json.dumps(cuda_status()))\n"
    )
    done = run_python(code, env=fake_cuda_env(*fake_cuda.path))
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["backend_package"]["name"] == "mlx-cuda-13" and status["cuda_major"] == 13
    assert status["library_folders"][0] == fake_cuda.folder("cu13")
    assert "libcublasLt.so.13" in status["preloaded"] and status["missing_libraries"] == []
    assert status["ld_library_path"]["export"].startswith(
        f"export LD_LIBRARY_PATH={fake_cuda.folder('cu13')}:"
    )
    assert any("subprocess_env()" in step for step in status["next_steps"])

    broken = fake_cuda.copy(tmp_path / "broken")
    (broken.nvidia_site / "nvidia" / "cu13" / "lib" / "libcufft.so.12").unlink()
    done = run_python(code, env=fake_cuda_env(*broken.path))
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["missing_libraries"][0]["library"] == "libcufft.so.12"
    assert 'pip install "nvidia-cufft==12.*"' in status["next_steps"]
