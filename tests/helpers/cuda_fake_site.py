"""Simulated CUDA installs: site-packages trees with the real folder and file names.

Folder and file names are those of the real wheels (``mlx-cuda-13`` 0.32.4,
``nvidia-cublas`` 13.x, ``nvidia-cudnn-cu13`` 9.x, ... and their CUDA 12
counterparts), read from the wheels' file lists.  The shared objects are
compiled here with ``gcc -shared``, with the real sonames and the real
``DT_NEEDED`` links between them (cuSOLVER needs cuBLAS, cuBLASLt, cuSPARSE
and nvJitLink; cuBLAS needs cuBLASLt; cuSPARSE needs nvJitLink), so the
system's dynamic loader behaves as it does with the real libraries.  The
fake ``libmlx.so`` has the ``DT_NEEDED`` list and ``DT_RPATH`` of the real
``mlx-cuda-13`` 0.32.4 one (less ``libcuda.so.1``, the driver, absent on a
CPU machine), and ``mlx/core*.so`` is a real Python extension that needs
``libmlx.so`` through ``RUNPATH $ORIGIN/lib`` as the real one does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .subproc import child_env

#: libmlx.so of mlx-cuda-13 0.32.4: DT_RPATH, and the NVIDIA part of DT_NEEDED.
LIBMLX_RPATH_CU13 = ":".join(
    f"$ORIGIN/../../{p}"
    for p in (
        "nvidia/cu13/lib",
        "nvidia/cublas/lib",
        "nvidia/cuda_nvrtc/lib",
        "nvidia/cudnn/lib",
        "nvidia/cufft/lib",
        "nvidia/cusolver/lib",
        "nvidia/nccl/lib",
        "mlx_cuda_13.libs",
    )
)
LIBMLX_NEEDED_CU13 = (
    "libnccl.so.2",
    "libcublasLt.so.13",
    "libcufft.so.12",
    "libcusolver.so.12",
    "libnvrtc.so.13",
    "libcudnn.so.9",
)
#: Requires-Dist of mlx-cuda-13 0.32.4.
MLX_CUDA_13_REQUIRES = (
    "nvidia-cudnn-cu13==9.*",
    "nvidia-nccl-cu13",
    "nvidia-cublas==13.*",
    "nvidia-cufft==12.*",
    "nvidia-cuda-nvrtc==13.*",
    "nvidia-cuda-runtime==13.*",
    "nvidia-cusolver==12.*",
)

# folder (under nvidia/) -> [(file, needed files in load order)], CUDA 13 wheels.
CU13_LIBRARIES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "cu13/lib": [
        ("libnvJitLink.so.13", ()),
        ("libcublasLt.so.13", ()),
        ("libcublas.so.13", ("libcublasLt.so.13",)),
        ("libcusparse.so.12", ("libnvJitLink.so.13",)),
        (
            "libcusolver.so.12",
            ("libcublas.so.13", "libcublasLt.so.13", "libcusparse.so.12", "libnvJitLink.so.13"),
        ),
        ("libcufft.so.12", ()),
        ("libnvrtc.so.13", ()),
        ("libnvrtc-builtins.so.13.5", ()),
        ("libcudart.so.13", ()),
    ],
    "cudnn/lib": [("libcudnn.so.9", ())],
    "nccl/lib": [("libnccl.so.2", ())],
}
CU13_DIST_INFOS = (
    "nvidia_cublas-13.1.0.3",
    "nvidia_cuda_nvrtc-13.0.48",
    "nvidia_cuda_runtime-13.0.48",
    "nvidia_cufft-12.0.0.15",
    "nvidia_cusolver-12.0.3.29",
    "nvidia_cusparse-12.6.2.49",
    "nvidia_nvjitlink-13.0.39",
    "nvidia_cudnn_cu13-9.13.0.50",
    "nvidia_nccl_cu13-2.27.7",
)
# The CUDA 12 wheels: one folder per package.
CU12_LIBRARIES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "cublas/lib": [("libcublasLt.so.12", ()), ("libcublas.so.12", ("libcublasLt.so.12",))],
    "cudnn/lib": [("libcudnn.so.9", ())],
    "nccl/lib": [("libnccl.so.2", ())],
    "cuda_nvrtc/lib": [("libnvrtc.so.12", ())],
}
CU12_DIST_INFOS = (
    "nvidia_cublas_cu12-12.9.1.4",
    "nvidia_cudnn_cu12-9.12.0.46",
    "nvidia_nccl_cu12-2.27.7",
    "nvidia_cuda_nvrtc_cu12-12.9.86",
)

_EXTENSION = """
#include <Python.h>
extern int mlx_fake_entry(void);
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "core", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_core(void) {
    PyObject *m = PyModule_Create(&def);
    if (m == NULL) return NULL;
    PyModule_AddStringConstant(m, "__version__", "%(version)s");
    PyModule_AddIntConstant(m, "fake_entry", mlx_fake_entry());
    return m;
}
"""


def require_toolchain() -> None:
    """Skip unless this is Linux with gcc and the Python headers (to build the fakes)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("simulated CUDA libraries are Linux shared objects")
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the simulated NVIDIA libraries")
    include = sysconfig.get_paths().get("include")
    if not include or not os.path.isfile(os.path.join(include, "Python.h")):
        pytest.skip("the Python headers are needed to build the simulated mlx.core extension")


def gcc_shared(
    out: Path,
    *,
    soname: str | None = None,
    needed: tuple[Path, ...] = (),
    rpath: str | None = None,
    runpath: str | None = None,
    source: str | None = None,
    python: bool = False,
) -> Path:
    """Compile a shared object at ``out`` with this soname, ``DT_NEEDED`` entries and search paths."""
    out.parent.mkdir(parents=True, exist_ok=True)
    ident = "".join(c if c.isalnum() else "_" for c in out.name)
    src = out.with_name(out.name + ".c")
    src.write_text(source if source is not None else f"int {ident}(void) {{ return 1; }}\n")
    cmd = ["gcc", "-shared", "-fPIC", "-o", str(out), str(src)]
    if python:
        cmd[1:1] = ["-I", sysconfig.get_paths()["include"]]
    if soname:
        cmd.append(f"-Wl,-soname,{soname}")
    if needed:
        cmd.append("-Wl,--no-as-needed")
        cmd += [f"-Wl,-rpath-link,{p.parent}" for p in needed]
        cmd += [str(p) for p in needed]
    if rpath:
        cmd += ["-Wl,--disable-new-dtags", f"-Wl,-rpath,{rpath}"]
    if runpath:
        cmd += ["-Wl,--enable-new-dtags", f"-Wl,-rpath,{runpath}"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    src.unlink()
    return out


def write_dist_info(site: Path, name_version: str, requires: tuple[str, ...] = ()) -> Path:
    folder = site / f"{name_version}.dist-info"
    folder.mkdir(parents=True, exist_ok=True)
    name, version = name_version.split("-", 1)
    lines = ["Metadata-Version: 2.1", f"Name: {name.replace('_', '-')}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (folder / "METADATA").write_text("\n".join(lines) + "\n\n")
    return folder


def build_nvidia_libraries(
    site: Path, libraries: dict[str, list[tuple[str, tuple[str, ...]]]], dist_infos: tuple[str, ...]
) -> dict[str, Path]:
    """The ``nvidia/...`` folders of these wheels in ``site``; file name -> path."""
    built: dict[str, Path] = {}
    for folder, files in libraries.items():
        for name, needs in files:
            rpath = "$ORIGIN" if folder.startswith("cudnn") else None  # as the real libcudnn.so.9
            built[name] = gcc_shared(
                site / "nvidia" / folder / name,
                soname=name,
                needed=tuple(built[n] for n in needs),
                rpath=rpath,
            )
    for entry in dist_infos:
        write_dist_info(site, entry)
    return built


def build_mlx_cuda13(site: Path, libraries: dict[str, Path], version: str = "0.32.4") -> Path:
    """``mlx`` + ``mlx-cuda-13`` in ``site``: libmlx.so (real RPATH) and a real mlx.core extension."""
    needed = tuple(libraries[name] for name in LIBMLX_NEEDED_CU13)
    libmlx = gcc_shared(
        site / "mlx" / "lib" / "libmlx.so",
        soname="libmlx.so",
        needed=needed,
        rpath=LIBMLX_RPATH_CU13,
        source="int mlx_fake_entry(void) { return 42; }\n",
    )
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    gcc_shared(
        site / "mlx" / f"core{suffix}",
        needed=(libmlx,),
        runpath="$ORIGIN/lib",
        source=_EXTENSION % {"version": version},
        python=True,
    )
    write_dist_info(site, f"mlx-{version}")
    write_dist_info(site, f"mlx_cuda_13-{version}", MLX_CUDA_13_REQUIRES)
    return libmlx


class FakeCudaInstall:
    """``mlx_site``: mlx + mlx-cuda-13; ``nvidia_site``: the nvidia-* wheels (another site-packages)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mlx_site = root / "site-mlx"
        self.nvidia_site = root / "site-nvidia"
        self.libraries = build_nvidia_libraries(self.nvidia_site, CU13_LIBRARIES, CU13_DIST_INFOS)
        headers = self.nvidia_site / "nvidia" / "cu13" / "include"
        headers.mkdir(parents=True, exist_ok=True)
        (headers / "cuda_runtime.h").write_text("/* simulated */\n")
        (headers / "cuda_runtime_api.h").write_text("#define CUDART_VERSION 13000\n")
        self.libmlx = build_mlx_cuda13(self.mlx_site, self.libraries)

    @property
    def path(self) -> list[str]:
        return [str(self.mlx_site), str(self.nvidia_site)]

    def folder(self, sub: str) -> str:
        return str(self.nvidia_site / "nvidia" / sub / "lib")

    def copy(self, dest: Path) -> FakeCudaInstall:
        """A writable copy (for tests that delete a library)."""
        shutil.copytree(self.root, dest, symlinks=True)
        clone = object.__new__(FakeCudaInstall)
        clone.root = dest
        clone.mlx_site = dest / "site-mlx"
        clone.nvidia_site = dest / "site-nvidia"
        clone.libraries = {k: dest / v.relative_to(self.root) for k, v in self.libraries.items()}
        clone.libmlx = dest / self.libmlx.relative_to(self.root)
        return clone


def fake_cuda_env(*site_dirs: str | Path, **extra: str) -> dict[str, str]:
    """A child's environment that sees only these site folders, then this checkout, on PYTHONPATH.

    Unlike :func:`helpers.subproc.child_env` it drops the inherited PYTHONPATH,
    CUDA_HOME, CUDA_PATH and LD_LIBRARY_PATH, so the machine's own CUDA cannot
    stand in for the simulated install.
    """
    env = child_env(*site_dirs, clear=("MLX_PORTABLE", "CUDA_HOME", "CUDA_PATH"), inherit_path=False, **extra)
    if "LD_LIBRARY_PATH" not in extra:
        env.pop("LD_LIBRARY_PATH", None)
    return env


_BUILT: list[FakeCudaInstall] = []


def shared_fake_cuda(factory: pytest.TempPathFactory) -> FakeCudaInstall:
    """mlx + mlx-cuda-13 0.32.4 in one site folder, the nvidia-* CUDA 13 wheels in another.

    Built once per test session; the ``fake_cuda`` fixture of ``tests/conftest.py`` hands it out.
    """
    require_toolchain()
    if not _BUILT:
        _BUILT.append(FakeCudaInstall(factory.mktemp("fake-cuda")))
    return _BUILT[0]
