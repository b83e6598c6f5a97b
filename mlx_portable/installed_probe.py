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
Nothing here imports mlx, ``importlib.metadata``, ``re``, ``typing`` or
``dataclasses``.
"""

from __future__ import annotations

import os
import sys

from .cuda.driver import proc_gpu_names
from .distributions import version

__all__ = ["InstalledProbe", "MachineFacts", "probe_installed"]

#: The oldest NVIDIA driver of each CUDA major that mlx's CUDA wheels need.
_MIN_DRIVER = {"mlx-cuda-13": 580, "mlx-cuda-12": 525, "mlx-cuda": 525}
_CUDA_PACKAGES = ("mlx-cuda-13", "mlx-cuda-12", "mlx-cuda")
_NVIDIA = "/proc/driver/nvidia"


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
        self.cpu = {"model": _cpu_model(), "cores": os.cpu_count()}
        self.driver = _driver_version()
        self.gpus = proc_gpu_names(os.path.join(_NVIDIA, "gpus")) if self.driver else []
        self.packages = {p: version(p) for p in ("mlx", "mlx-metal", *_CUDA_PACKAGES, "mlx-cpu", "mlx-lm")}
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


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _driver_version() -> str | None:
    """``"580.65.06"`` from ``NVRM version: NVIDIA UNIX ... Kernel Module  580.65.06 ...``, or ``None``."""
    try:
        with open(os.path.join(_NVIDIA, "version"), encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
    except OSError:
        return None
    words = first.split()
    for i, word in enumerate(words):
        if word == "Module":
            rest = [w for w in words[i + 1 :] if w != "for" and w[:1].isdigit()]
            return rest[0] if rest else None
    return None


def _metal(facts: MachineFacts) -> InstalledProbe:
    open_until = "that this macOS (14+) and its Metal run mlx's kernels: known when mlx.core loads"
    if facts.os != "darwin":
        return InstalledProbe("metal", False, f"Metal needs macOS (this is {facts.os})")
    if facts.machine != "arm64":
        return InstalledProbe(
            "metal", False, f"mlx's Metal backend needs Apple silicon (this is {facts.machine})"
        )
    if facts.packages["mlx"] is None:
        return InstalledProbe("metal", False, "mlx is not installed", 'pip install "mlx"')
    return InstalledProbe(
        "metal", True, f"Apple silicon with mlx {facts.packages['mlx']}", unconfirmed=open_until
    )


def _cuda(facts: MachineFacts) -> InstalledProbe:
    open_until = "that the CUDA libraries load and a CUDA context can be created: known when mlx.core loads"
    if not facts.os.startswith("linux"):
        return InstalledProbe("cuda", False, f"mlx's CUDA wheels are for Linux (this is {facts.os})")
    if facts.driver is None:
        return InstalledProbe(
            "cuda", False, "no NVIDIA kernel driver is loaded (/proc/driver/nvidia/version)"
        )
    if not facts.gpus:
        return InstalledProbe("cuda", False, f"NVIDIA driver {facts.driver} lists no GPU")
    package = next((p for p in _CUDA_PACKAGES if facts.packages[p] is not None), None)
    extra = "cuda13" if int(facts.driver.split(".")[0]) >= _MIN_DRIVER["mlx-cuda-13"] else "cuda12"
    if package is None:
        return InstalledProbe(
            "cuda",
            False,
            "no CUDA build of mlx is installed (mlx-cuda-13 / mlx-cuda-12)",
            f'pip install "mlx[{extra}]"',
        )
    major = int(facts.driver.split(".")[0])
    if major < _MIN_DRIVER[package]:
        return InstalledProbe(
            "cuda",
            False,
            f"{package} needs NVIDIA driver {_MIN_DRIVER[package]}+, this one is {facts.driver}",
            f'pip install "mlx[{extra}]"'
            if extra != package.rsplit("-", 1)[-1]
            else "update the NVIDIA driver",
        )
    gpus = ", ".join(facts.gpus)
    return InstalledProbe(
        "cuda",
        True,
        f"{package} {facts.packages[package]}, driver {facts.driver}, GPU: {gpus}",
        unconfirmed=open_until,
    )


def _cpu(facts: MachineFacts) -> InstalledProbe:
    open_until = (
        "that mlx.core imports (matching mlx and backend package versions): known when mlx.core loads"
    )
    if facts.packages["mlx"] is None:
        return InstalledProbe("cpu", False, "mlx is not installed", 'pip install "mlx[cpu]"')
    if facts.os.startswith("linux") and not any(facts.packages[p] for p in ("mlx-cpu", *_CUDA_PACKAGES)):
        return InstalledProbe(
            "cpu",
            False,
            "mlx is installed without a backend package (mlx-cpu)",
            f'pip install "mlx-cpu=={facts.packages["mlx"]}"',
        )
    return InstalledProbe("cpu", True, f"mlx {facts.packages['mlx']}", unconfirmed=open_until)


def probe_installed() -> MachineFacts:
    """Each backend's availability as far as it can be told without importing mlx (a few ms)."""
    facts = MachineFacts()
    facts.backends = [_metal(facts), _cuda(facts), _cpu(facts)]
    return facts
