"""``probe_installed()``: what this machine can run, answered without importing mlx.

Why: a node that only announces its capabilities (a scheduler, exo's
discovery, a health check) should not pay for -- or risk -- loading libmlx
and creating a GPU context.  :func:`mlx_portable.probe_all` asks mlx itself
and is the authority; this answers in a few milliseconds from what can be
read without it:

* the installed distributions (``mlx``, ``mlx-metal``, ``mlx-cuda-12``/``-13``,
  ``mlx-cuda``, ``mlx-cpu``, ``mlx-lm``), from ``*.dist-info`` folder names;
* the OS and CPU (``os.uname()``, ``/proc/cpuinfo``, ``os.cpu_count()``);
* the NVIDIA kernel driver (``/proc/driver/nvidia/version``,
  ``/proc/driver/nvidia/gpus/*/information``): no NVML, no CUDA context.

Every backend answer carries ``confirmed=False`` and says what stays open
until mlx loads (``unconfirmed``): that the libraries load, that a CUDA
context can be created, that the macOS and Metal versions are supported.
Nothing here imports mlx, ``importlib.metadata``, ``typing`` or
``dataclasses`` (``re`` only where an NVIDIA driver is loaded).  Each backend
answers for itself (``predict``), from the facts read once here: the CPU model
and host memory (:func:`cpu_model`, :func:`host_memory`, which the CPU backend
reads too), the driver, the packages.
"""

from __future__ import annotations

import os
import sys

from .backend_table import backend_class, backend_distributions, backend_names
from .cuda.driver import nvidia_driver_release, proc_gpu_names
from .distributions import version

__all__ = ["InstalledProbe", "MachineFacts", "cpu_model", "host_memory", "probe_installed"]

_NVIDIA = "/proc/driver/nvidia"


def host_memory() -> int | None:
    """The machine's physical memory in bytes (the one reader of it), or ``None``."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def cpu_model() -> str | None:
    """The CPU's model name (the one reader of it: the CPU backend, ``probe_installed()``), or ``None``.

    ``model name`` on x86, ``Model``/``Hardware`` on ARM boards in ``/proc/cpuinfo``;
    elsewhere what ``platform.processor()`` says.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or None


class InstalledProbe:
    """One backend, judged from installed packages, OS and driver only."""

    __slots__ = ("available", "confirmed", "name", "reason", "remedy", "unconfirmed")

    def __init__(
        self, name: str, available: bool, reason: str, remedy: str = "", unconfirmed: str = ""
    ) -> None:
        self.name = name
        self.available = available
        self.reason = reason
        self.remedy = remedy
        self.unconfirmed = unconfirmed
        self.confirmed = False  # only mlx itself can confirm (probe_all)

    def __repr__(self) -> str:
        return f"InstalledProbe({self.name!r}, available={self.available}, reason={self.reason!r})"

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in sorted(self.__slots__)}


class MachineFacts:
    """What was read: OS, CPU, NVIDIA driver and GPUs, installed mlx packages, and the per-backend answers."""

    __slots__ = ("backends", "cpu", "driver", "gpus", "machine", "os", "packages")

    def __init__(self) -> None:
        self.os = sys.platform
        self.machine = os.uname().machine if hasattr(os, "uname") else ""
        self.cpu = {"model": cpu_model(), "cores": os.cpu_count()}
        self.driver = nvidia_driver_release(os.path.join(_NVIDIA, "version"))
        self.gpus = proc_gpu_names(os.path.join(_NVIDIA, "gpus")) if self.driver else []
        self.packages = {p: version(p) for p in ("mlx", *backend_distributions(), "mlx-lm")}
        self.backends: list[InstalledProbe] = []

    def __repr__(self) -> str:
        answers = ", ".join(f"{b.name}={'yes' if b.available else 'no'}" for b in self.backends)
        mlx = self.packages.get("mlx")
        return f"MachineFacts(os={self.os!r}, machine={self.machine!r}, mlx={mlx!r}, {answers})"

    def __str__(self) -> str:
        """What ``print(probe_installed())`` shows: the facts, then each backend's answer and remedy."""
        installed = ", ".join(f"{k} {v}" for k, v in self.packages.items() if v) or "no mlx package"
        driver = f"NVIDIA driver {self.driver}" + (f" ({', '.join(self.gpus)})" if self.gpus else "")
        lines = [
            f"machine   {self.os} {self.machine}, {self.cpu.get('cores')} cores"
            + (f", {self.cpu['model']}" if self.cpu.get("model") else ""),
            f"packages  {installed}",
            f"nvidia    {driver if self.driver else 'no NVIDIA driver'}",
        ]
        for b in self.backends:
            lines.append(f"{b.name:<9} {'yes' if b.available else 'no'}: {b.reason}")
            if b.remedy:
                lines.append(f"{'':<9}   remedy: {b.remedy}")
            if b.unconfirmed:
                what = b.unconfirmed.removesuffix(": known when mlx.core loads")
                lines.append(f"{'':<9}   known only when mlx loads: {what}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "os": self.os,
            "machine": self.machine,
            "cpu": dict(self.cpu),
            "nvidia_driver": self.driver,
            "gpus": list(self.gpus),
            "packages": dict(self.packages),
            "backends": [b.to_dict() for b in self.backends],
            "confirmed": False,
        }


def probe_installed() -> MachineFacts:
    """Each backend's availability as far as it can be told without importing mlx (a few ms).

    Every backend of the table answers for itself (:meth:`Backend.predict`),
    so a backend added with :func:`~mlx_portable.backend_table.add_backend` is
    predicted too.
    """
    facts = MachineFacts()
    facts.backends = [backend_class(name)().predict(facts) for name in backend_names()]
    return facts
