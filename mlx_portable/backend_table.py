"""The backend table: every backend declared once, every list derived from it.

A row names the backend, its device type (``"gpu"``/``"cpu"``), the pip
distributions that provide it (newest first), the scope its environment
variables carry in ``mlx-portable doctor``, and where its :class:`Backend`
class lives (imported only when first needed).  Priority order is row order.

Adding a backend is one module with its ``Backend`` class and one row here
(or :func:`add_backend` from a test or plugin); settings, selection, the
report, doctor, the patch registry and the compatibility table all read this
table, and callers ask the backend (``device_type``, ``built_into(mx)``)
rather than comparing names.

Why it sits at the top of the package rather than in ``backends/``: the
settings (on the ``import mlx_portable`` path) and the patch declarations
need the backend names, and importing anything under ``backends/`` runs its
``__init__``, which loads every backend module and the selection.  So: plain
tuples, no imports at run time.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "BackendRow",
    "add_backend",
    "backend_class",
    "backend_distributions",
    "backend_names",
    "backend_rows",
    "remove_backend",
    "row",
]


class BackendRow:
    """One backend, declared once."""

    __slots__ = ("cls", "device_type", "distributions", "label", "module", "name")

    def __init__(
        self,
        name: str,
        device_type: str,
        distributions: tuple[str, ...],
        module: str,
        cls: str,
        label: str = "",
    ) -> None:
        if device_type not in ("gpu", "cpu"):
            raise ValueError(f"backend {name!r}: device_type must be 'gpu' or 'cpu', not {device_type!r}")
        self.name = name
        self.device_type = device_type
        self.distributions = distributions
        self.module = module
        self.cls = cls
        self.label = label or name

    def __repr__(self) -> str:
        return f"<BackendRow {self.name}>"


_ROWS: list[BackendRow] = [
    BackendRow("metal", "gpu", ("mlx-metal",), "mlx_portable.backends.metal", "MetalBackend", "Metal"),
    BackendRow(
        "cuda",
        "gpu",
        ("mlx-cuda-13", "mlx-cuda-12", "mlx-cuda"),  # mlx-cuda up to 0.30.0
        "mlx_portable.backends.cuda",
        "CudaBackend",
        "CUDA",
    ),
    BackendRow("cpu", "cpu", ("mlx-cpu",), "mlx_portable.backends.cpu", "CpuBackend", "CPU"),
]


def backend_rows() -> tuple[BackendRow, ...]:
    """Every row, in default priority order."""
    return tuple(_ROWS)


def backend_names() -> tuple[str, ...]:
    """``("metal", "cuda", "cpu")`` plus any added backend, in priority order."""
    return tuple(r.name for r in _ROWS)


def row(name: str) -> BackendRow:
    for r in _ROWS:
        if r.name == name:
            return r
    raise KeyError(f"no backend named {name!r}; known: {', '.join(backend_names())}")


def backend_distributions() -> tuple[str, ...]:
    """Every backend package (``mlx-metal``, ``mlx-cuda-13``, ..., ``mlx-cpu``), in table order."""
    return tuple(d for r in _ROWS for d in r.distributions)


def backend_class(name: str) -> Any:
    """The :class:`Backend` class of ``name`` (its module is imported now)."""
    entry = row(name)
    __import__(entry.module)
    return getattr(sys.modules[entry.module], entry.cls)


def add_backend(new: BackendRow, *, before: str | None = None) -> None:
    """Add a row (a plugin's or a test's backend), before ``before`` or last."""
    if new.name in backend_names():
        raise ValueError(f"a backend named {new.name!r} is already in the table")
    index = backend_names().index(before) if before is not None else len(_ROWS)
    _ROWS.insert(index, new)


def remove_backend(name: str) -> None:
    """Take a row added with :func:`add_backend` out again."""
    _ROWS.remove(row(name))
