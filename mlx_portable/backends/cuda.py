"""NVIDIA CUDA on Linux (``mlx-cuda`` up to 0.30.0, ``mlx-cuda-12``/``-13`` after)."""

from __future__ import annotations

import os

from ..cuda.driver import nvidia_driver_version, proc_gpu_names
from ..install_hint import install_command, pip_extra_for_this_machine
from ..validation import shown
from ._common import (
    MlxBackendBase,
    gpu_count,
    int_or_none,
    logger,
    raw_device_info,
    resolve_limit,
    str_or_none,
)
from .results import DeviceInfo, MemoryLimit, ProbeResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..installed_probe import InstalledProbe, MachineFacts

__all__ = ["CudaBackend", "proc_gpu_names"]

#: mlx's own CUDA allocator defaults to 95% of total device memory.
DEFAULT_CUDA_FRACTION = 0.95


def _visible_devices_hidden() -> bool:
    from ..cuda.driver import visible_devices

    return visible_devices() == []


class CudaBackend(MlxBackendBase):
    """mlx's CUDA backend. There is no wired memory on CUDA."""

    _name = "cuda"
    _device_type = "gpu"

    @property
    def supports_wired_memory(self) -> bool:
        return False

    def predict(self, facts: MachineFacts) -> InstalledProbe:
        """Whether CUDA can run here, told from the NVIDIA driver, its GPUs and the packages (no mlx)."""
        from ..backend_table import row
        from ..install_hint import minimum_driver
        from ..installed_probe import InstalledProbe

        name = self.name
        open_until = (
            "that the CUDA libraries load and a CUDA context can be created: known when mlx.core loads"
        )
        if not facts.os.startswith("linux"):
            return InstalledProbe(name, False, f"mlx's CUDA wheels are for Linux (this is {facts.os})")
        if facts.driver is None:
            return InstalledProbe(
                name, False, "no NVIDIA kernel driver is loaded (/proc/driver/nvidia/version)"
            )
        if not facts.gpus:
            return InstalledProbe(name, False, f"NVIDIA driver {facts.driver} lists no GPU")
        packages = row(name).distributions
        package = next((p for p in packages if facts.packages.get(p) is not None), None)
        major = int(facts.driver.split(".")[0])
        extra = "cuda13" if major >= minimum_driver("mlx-cuda-13") else "cuda12"
        if package is None:
            return InstalledProbe(
                name,
                False,
                f"no CUDA build of mlx is installed ({' / '.join(packages[:2])})",
                f'pip install "mlx[{extra}]"',
            )
        if major < minimum_driver(package):
            return InstalledProbe(
                name,
                False,
                f"{package} needs NVIDIA driver {minimum_driver(package)}+, this one is {facts.driver}",
                f'pip install "mlx[{extra}]"'
                if extra != package.rsplit("-", 1)[-1]
                else "update the NVIDIA driver",
            )
        gpus = ", ".join(facts.gpus)
        return InstalledProbe(
            name,
            True,
            f"{package} {facts.packages[package]}, driver {facts.driver}, GPU: {gpus}",
            unconfirmed=open_until,
        )

    def probe(self) -> ProbeResult:
        def no(reason: str, remedy: str) -> ProbeResult:
            logger.debug("cuda probe: %s", reason)
            return ProbeResult("cuda", False, reason, remedy)

        extra = pip_extra_for_this_machine()
        cuda_install = install_command(extra=extra if extra in ("cuda12", "cuda13") else "cuda13")
        try:
            mx = self.mx
            version = str(getattr(mx, "__version__", "?"))
            cuda = getattr(mx, "cuda", None)
            if cuda is None:
                return no(
                    f"mlx {version} has no CUDA backend (mx.cuda first appeared in mlx 0.29.0)",
                    f"upgrade: {cuda_install}",
                )
            if not cuda.is_available():
                return no(
                    "mx.cuda.is_available() is False: this mlx wheel was built without CUDA",
                    _remedy_without_cuda_wheel(cuda_install),
                )
            if _visible_devices_hidden():
                return no(
                    f"CUDA_VISIBLE_DEVICES={shown(os.environ.get('CUDA_VISIBLE_DEVICES'))} hides every GPU",
                    "unset CUDA_VISIBLE_DEVICES or list a GPU index in it",
                )
            # mx.cuda.is_available() only says how the wheel was built: it is
            # True on a CUDA wheel with zero GPUs.  device_count (0.30.4+) is the
            # real check; before it, ask the kernel driver, which creates no
            # CUDA context.
            count = gpu_count(mx) if hasattr(mx, "device_count") else len(proc_gpu_names())
        except Exception as exc:  # a probe never raises: the failure is the reason
            return no(f"probing CUDA failed: {type(exc).__name__}: {exc}", cuda_install)
        if not count:
            driver = nvidia_driver_version()
            why = "no NVIDIA driver is loaded" if driver is None else "the NVIDIA driver lists no GPU"
            return no(
                f"CUDA wheel installed but no GPU is visible ({why})",
                "check nvidia-smi and the container's GPU access, or set MLX_PORTABLE_BACKEND=cpu",
            )
        return ProbeResult("cuda", True, f"mx.cuda.is_available() and {count} GPU(s) visible")

    def device_info(self) -> DeviceInfo:
        mx = self.mx
        raw = raw_device_info(mx, mx.gpu)
        if raw is None:
            # Before 0.30.4 mlx has no device query off Metal (and
            # mx.metal.device_info() raises there): ask the driver (NVML).
            return _driver_device_info()
        major = int_or_none(raw.get("compute_capability_major"))
        minor = int_or_none(raw.get("compute_capability_minor"))
        return DeviceInfo(
            backend="cuda",
            device_name=str_or_none(raw.get("device_name")),
            architecture=str_or_none(raw.get("architecture")),
            memory_size=int_or_none(raw.get("total_memory", raw.get("memory_size"))),
            free_memory=int_or_none(raw.get("free_memory")),
            compute_capability=(major, minor) if major is not None and minor is not None else None,
            raw=raw,
        )

    def set_memory_limit(self, limit: int | float | None = None) -> MemoryLimit:
        """``mx.set_memory_limit`` against total device memory (default 95%).

        CUDA has no wired memory; without a limit, oversubscription surfaces
        as ``cudaMallocAsync ... out of memory`` deep inside a kernel launch.
        """
        total = self.device_info().memory_size
        nbytes = resolve_limit(
            limit, total, default_fraction=DEFAULT_CUDA_FRACTION, what="total device memory"
        )
        if nbytes is None:
            return MemoryLimit(
                "cuda",
                None,
                None,
                "total device memory unknown (mlx < 0.30.4 has no mx.device_info and NVML did not answer); "
                "pass bytes instead",
            )
        self._set_limit(nbytes)
        share = f" ({nbytes / total:.0%} of {total} bytes)" if total else ""
        return MemoryLimit(
            "cuda", nbytes, None, f"memory limit {nbytes} bytes{share}; CUDA has no wired memory"
        )


def _driver_device_info() -> DeviceInfo:
    """Device facts from NVML (name, total and free memory), else the GPU name from /proc."""
    from ..cuda import nvml

    found = nvml.gpu_memory(library=nvml.NVML_LIBRARY)
    if found is not None:
        return DeviceInfo(
            backend="cuda",
            device_name=found.name,
            memory_size=found.total,
            free_memory=found.free,
            raw=found.to_dict(),
        )
    names = proc_gpu_names()
    raw = {"device_name": names[0]} if names else {}
    return DeviceInfo(backend="cuda", device_name=str_or_none(raw.get("device_name")), raw=raw)


def _remedy_without_cuda_wheel(cuda_install: str) -> str:
    if nvidia_driver_version() is None:
        from ..install_hint import driver_minimums

        return (
            f"no NVIDIA driver is loaded here; CUDA needs an NVIDIA GPU and driver >= {driver_minimums()[0]}"
        )
    return cuda_install
