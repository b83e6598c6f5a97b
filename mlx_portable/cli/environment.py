"""The ``MLX_*`` and ``MLX_PORTABLE_*`` variables in effect, and which backend reads each.

Scopes come from mlx's sources (``mlx/utils.h`` ``env::`` getters and the
backends' ``get_var`` calls): a variable scoped to one backend does nothing
when another is active, which is worth a warning because users copy job
scripts between a Mac and a Linux box (``MLX_METAL_FAST_SYNCH=1`` on a CUDA
machine is silently ignored).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..redaction import SECRET_NAME_PARTS, displayed

__all__ = ["MLX_VARIABLES", "PORTABLE_VARIABLES", "EnvEntry", "variables_in_effect"]

METAL, CUDA, GPU, ALL, DISTRIBUTED, PORTABLE, UNKNOWN = (
    "metal",
    "cuda",
    "gpu",
    "all",
    "distributed",
    "mlx-portable",
    "unknown",
)

#: variable -> (scope, what it does).  ``gpu`` means Metal and CUDA.
MLX_VARIABLES: dict[str, tuple[str, str]] = {
    "MLX_METAL_FAST_SYNCH": (METAL, "fast CPU-GPU synchronisation (macOS 15+)"),
    "MLX_METAL_GPU_ARCH": (METAL, "overrides the Metal GPU architecture"),
    "MLX_RESIDENCY_SET_MAX_PCT": (METAL, "cap of a Metal residency set"),
    "MLX_SDPA_BLOCKS": (METAL, "blocks of the Metal attention kernel"),
    "MLX_USE_CUDA_GRAPHS": (CUDA, "CUDA graphs on/off"),
    "MLX_CUDA_GRAPH_CACHE_SIZE": (CUDA, "CUDA graph cache size"),
    "MLX_CUDA_CONV_CACHE_SIZE": (CUDA, "cuDNN convolution plan cache size"),
    "MLX_CUDA_FFT_CACHE_SIZE": (CUDA, "cuFFT plan cache size"),
    "MLX_CUDA_SDPA_CACHE_SIZE": (CUDA, "cuDNN attention plan cache size"),
    "MLX_CUDA_SDPA_BACKWARD_CACHE_SIZE": (CUDA, "cuDNN attention backward cache size"),
    "MLX_CUDA_USE_CUDNN_SDPA": (CUDA, "cuDNN attention on/off"),
    "MLX_PTX_CACHE_DIR": (CUDA, "folder of the compiled-kernel cache"),
    "MLX_NCCL_TIMEOUT": (CUDA, "NCCL timeout"),
    "MLX_SAVE_CUDA_GRAPHS_DOT_FILE": (CUDA, "writes CUDA graphs as a dot file"),
    "MLX_ENABLE_CACHE_THRASHING_CHECK": (CUDA, "warns when a CUDA plan cache thrashes"),
    "MLX_ENABLE_TF32": (GPU, "float32 matmuls in TF32-class precision (CUDA; Metal on M5); default 1"),
    "MLX_MAX_OPS_PER_BUFFER": (GPU, "operations per command buffer"),
    "MLX_MAX_MB_PER_BUFFER": (GPU, "megabytes per command buffer"),
    "MLX_DISABLE_COMPILE": (ALL, "turns mx.compile off"),
    "MLX_BFS_MAX_WIDTH": (ALL, "graph evaluation width"),
    "MLX_HOSTFILE": (DISTRIBUTED, "ring/jaccl host file"),
    "MLX_RANK": (DISTRIBUTED, "this process's rank"),
    "MLX_WORLD_SIZE": (DISTRIBUTED, "number of processes"),
    "MLX_RING_VERBOSE": (DISTRIBUTED, "ring backend logging"),
    "MLX_MPI_LIBNAME": (DISTRIBUTED, "path of libmpi"),
    "MLX_JACCL_COORDINATOR": (DISTRIBUTED, "jaccl coordinator address"),
    "MLX_JACCL_RING": (DISTRIBUTED, "jaccl ring mode"),
    "MLX_IBV_DEVICES": (DISTRIBUTED, "jaccl RDMA devices"),
}

#: Variables mlx-portable itself reads.
PORTABLE_VARIABLES: dict[str, str] = {
    "MLX_PORTABLE": "0 turns every patch off (kill switch)",
    "MLX_PORTABLE_BACKEND": "backend (or comma-separated order) to use",
    "MLX_PORTABLE_DISABLE": "patches to leave alone",
    "MLX_PORTABLE_STRICT": "1 makes a failing patch an error",
    "MLX_PORTABLE_AUTOACTIVATE": "1 activates mlx-portable at the first import of mlx, in every process",
    "MLX_PORTABLE_THREAD_FREE_STREAMS": "1 makes mx.new_stream streams usable from any thread (mlx >= 0.32)",
    "MLX_PORTABLE_DISTRIBUTED_BACKEND": "distributed backend to use",
    "MLX_PORTABLE_CLUSTER_BACKENDS": "every rank's device backend, in rank order",
    "MLX_PORTABLE_HOSTFILE": "hostfile with a device backend per host",
    "MLX_PORTABLE_DISTRIBUTED_TIMEOUT": "seconds a distributed evaluation may take",
    "MLX_PORTABLE_MATRIX_ENVS": "where mlx-portable matrix keeps its environments",
    "MLX_PORTABLE_MATRIX_MLX": "the mlx version of a matrix test environment",
    "MLX_PORTABLE_MATRIX_MLX_LM": "the mlx-lm version of a matrix test environment",
}

#: Not MLX_* but read by mlx's CUDA backend; shown where set.
_CUDA_RELATED: dict[str, str] = {
    "CUDA_HOME": "CUDA headers folder (run-time kernel compilation)",
    "CUDA_PATH": "CUDA headers folder (run-time kernel compilation)",
    "CUDA_VISIBLE_DEVICES": "GPUs this process may use",
}


@dataclass(frozen=True)
class EnvEntry:
    """One variable in effect."""

    name: str
    value: str
    scope: str
    meaning: str
    warning: str | None = None
    set_by: str | None = None  # the mlx-portable patch that set it, if one did

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "scope": self.scope,
            "meaning": self.meaning,
            "warning": self.warning,
            "set_by": self.set_by,
        }


#: Words in a variable's name that mark its value as a secret (doctor output is pasted into issues).
SECRET_WORDS: tuple[str, ...] = SECRET_NAME_PARTS


def displayed_value(name: str, value: str) -> str:
    """``value`` as doctor shows it: hidden for a secret-looking name, secret-looking parts redacted.

    See :mod:`mlx_portable.redaction` (by name and by value), then :func:`printable`.
    """
    return printable(displayed(name, value))


def printable(text: str, limit: int = 200) -> str:
    """``text`` with every non-printable character escaped (``\\x1b``), cut to ``limit`` characters."""
    out = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    if len(out) > limit:
        return f"{out[:limit]}... ({len(text)} characters)"
    return out


def _portable_variables() -> dict[str, str]:
    """Every variable of :data:`mlx_portable.settings.KNOWN_VARIABLES` (the one list), with its meaning."""
    from ..settings import KNOWN_VARIABLES

    return {name: PORTABLE_VARIABLES.get(name, "read by mlx-portable") for name in KNOWN_VARIABLES}


def _warning(scope: str, name: str, backend: str | None) -> str | None:
    if backend is None:
        return None
    from ..backend_table import backend_names, backend_rows, row

    if backend not in backend_names():
        return None
    if scope == GPU:
        if row(backend).device_type == "gpu":
            return None
        gpus = ", ".join(r.label for r in backend_rows() if r.device_type == "gpu")
        return f"{name} is read only by the GPU backends ({gpus}); the active backend is {backend}"
    if scope in backend_names() and backend != scope:
        return (
            f"{name} is read only by the {row(scope).label} backend; the active backend is {backend}, "
            "so it has no effect"
        )
    return None


def variables_in_effect(
    backend: str | None,
    env: Mapping[str, str] | None = None,
    set_by: Mapping[str, str] | None = None,
) -> list[EnvEntry]:
    """Every set ``MLX_*`` variable (and CUDA_HOME & co.), sorted, each with its scope and warning.

    ``set_by`` maps a variable to the patch that set it, so the report can
    tell the user's settings from mlx-portable's own.
    """
    from ..settings import near_miss

    env = os.environ if env is None else env
    portable = _portable_variables()
    entries: list[EnvEntry] = []
    for raw_name in sorted(env):
        # What reaches the terminal or the JSON: secrets redacted, control
        # characters (terminal escapes) escaped, long values cut.
        name, value = printable(raw_name), displayed_value(raw_name, env[raw_name])
        guess = None if name in portable else near_miss(raw_name)
        if name in portable:
            entries.append(EnvEntry(name, value, PORTABLE, portable[name]))
        elif guess or name.startswith("MLX_PORTABLE_"):
            warning = f"{name} is not a variable mlx-portable reads: did you mean {guess}?" if guess else None
            entries.append(EnvEntry(name, value, PORTABLE, "not a variable mlx-portable knows of", warning))
        elif name in MLX_VARIABLES:
            scope, meaning = MLX_VARIABLES[name]
            entries.append(EnvEntry(name, value, scope, meaning, _warning(scope, name, backend)))
        elif name in _CUDA_RELATED:
            entries.append(EnvEntry(name, value, CUDA, _CUDA_RELATED[name], None))
        elif name.startswith("MLX_"):
            entries.append(EnvEntry(name, value, UNKNOWN, "not a variable mlx-portable knows of"))
    if set_by:
        entries = [
            EnvEntry(e.name, e.value, e.scope, e.meaning, e.warning, set_by.get(e.name)) for e in entries
        ]
    return entries
