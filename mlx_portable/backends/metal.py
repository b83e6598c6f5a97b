"""Apple Metal (macOS on Apple silicon)."""

from __future__ import annotations

import sys

from ..install_hint import install_command
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
    from typing import Any

    from ..installed_probe import InstalledProbe, MachineFacts

__all__ = ["MetalBackend"]


class MetalBackend(MlxBackendBase):
    """mlx's Metal backend; the only one with wired (resident) memory."""

    _name = "metal"
    _device_type = "gpu"

    @property
    def supports_wired_memory(self) -> bool:
        return True

    def predict(self, facts: MachineFacts) -> InstalledProbe:
        """Whether Metal can run here, told from the OS, the CPU and the packages (no mlx)."""
        from ..installed_probe import InstalledProbe

        open_until = "that this macOS (14+) and its Metal run mlx's kernels: known when mlx.core loads"
        if facts.os != "darwin":
            return InstalledProbe(self.name, False, f"Metal needs macOS (this is {facts.os})")
        if facts.machine != "arm64":
            return InstalledProbe(
                self.name, False, f"mlx's Metal backend needs Apple silicon (this is {facts.machine})"
            )
        if facts.packages["mlx"] is None:
            return InstalledProbe(self.name, False, "mlx is not installed", 'pip install "mlx"')
        return InstalledProbe(
            self.name, True, f"Apple silicon with mlx {facts.packages['mlx']}", unconfirmed=open_until
        )

    def probe(self) -> ProbeResult:
        def no(reason: str, remedy: str) -> ProbeResult:
            logger.debug("metal probe: %s", reason)
            return ProbeResult("metal", False, reason, remedy)

        other = "set MLX_PORTABLE_BACKEND=cuda or cpu, or unset it to choose automatically"
        if sys.platform != "darwin":
            # Nothing to do in automatic mode (the report shows this remedy too): a fact, not an order.
            return no(
                f"Metal needs macOS; this is {sys.platform}", "Metal runs only on macOS: use cuda or cpu"
            )
        try:
            mx = self.mx
            metal = getattr(mx, "metal", None)
            if metal is None or not metal.is_available():
                return no(
                    "mx.metal.is_available() is False: this mlx was built without Metal",
                    f"{install_command(extra=None)} (macOS 14+ on Apple silicon)",
                )
            count = gpu_count(mx)
        except Exception as exc:  # a probe never raises: the failure is the reason
            return no(f"probing Metal failed: {type(exc).__name__}: {exc}", other)
        if count == 0:
            return no("Metal is built in but no GPU device is usable (a VM without a GPU?)", other)
        return ProbeResult("metal", True, "mx.metal.is_available() and a GPU device is present")

    def _raw(self) -> dict[str, Any]:
        mx = self.mx
        raw = raw_device_info(mx, mx.gpu)
        if raw is None:
            # Before 0.30.4 only ``mx.metal.device_info()`` exists; it is
            # called here only on Metal, where it works.
            raw = dict(mx.metal.device_info())
        return raw

    def device_info(self) -> DeviceInfo:
        raw = self._raw()
        return DeviceInfo(
            backend="metal",
            device_name=str_or_none(raw.get("device_name")),
            architecture=str_or_none(raw.get("architecture")),
            memory_size=int_or_none(raw.get("memory_size")),
            recommended_working_set=int_or_none(raw.get("max_recommended_working_set_size")),
            raw=raw,
        )

    def set_memory_limit(self, limit: int | float | None = None) -> MemoryLimit:
        """Memory limit against the recommended working set; wired limit too.

        The wired limit is set only when the GPU is the default device and a
        recommended working set is known: ``mx.set_wired_limit`` above it
        raises ``ValueError: [metal::set_wired_limit] Setting a wired limit
        larger than the maximum working set size is not allowed.``
        """
        mx = self.mx
        info = self.device_info()
        rws = info.recommended_working_set
        nbytes = resolve_limit(
            limit, rws or info.memory_size, default_fraction=1.0, what="recommended working set"
        )
        if nbytes is None:
            return MemoryLimit("metal", None, None, "device memory unknown; no limit set")
        self._set_limit(nbytes)
        wired: int | None = None
        note = f"memory limit {nbytes} bytes"
        if rws and mx.default_device() == mx.gpu:
            wired = min(nbytes, rws)
            ns = mx if hasattr(mx, "set_wired_limit") else mx.metal
            ns.set_wired_limit(wired)
            note += f"; wired limit {wired} bytes"
        else:
            note += (
                "; wired limit left alone (the GPU is not the default device or its working set is unknown)"
            )
        return MemoryLimit("metal", nbytes, wired, note)
