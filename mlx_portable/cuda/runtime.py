"""NVIDIA libraries, CUDA headers and child processes: the public entry points.

- :func:`subprocess_env`: the environment for a child process (a runner, a
  ``multiprocessing`` spawn, ``mlx.launch``) so that its ``import mlx.core``
  finds the NVIDIA libraries and its compiler the CUDA headers, with the
  ``MLX_PORTABLE_*`` settings, optionally coming up activated.
- :func:`cuda_status`: what is installed, found, missing, and what to do
  (``mlx-portable doctor`` shows it).

The work is done in the other :mod:`mlx_portable.cuda` modules; see ``docs/cuda.md``.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["AUTOACTIVATE_VARIABLE", "cuda_status", "subprocess_env"]

#: Set to ``1`` in a child's environment to activate mlx-portable at its start
#: (through the ``mlx_portable_autoactivate.pth`` file the wheel installs).
AUTOACTIVATE_VARIABLE = "MLX_PORTABLE_AUTOACTIVATE"


def cuda_status() -> dict[str, object]:
    """The CUDA set-up as JSON-able data.

    Keys: ``backend_package`` (name, version, CUDA major, site folder),
    ``cuda_major``, ``version_mismatch``, ``libmlx``, ``library_folders``,
    ``found_by_loader``, ``needs_preload``, ``preloaded``,
    ``missing_libraries`` (library, package, install command), ``headers``
    (where mlx finds them, the ``CUDA_HOME`` to set, or the package to
    install), ``ld_library_path`` (current, to add, an ``export`` line) and
    ``next_steps``.  Without a CUDA backend package, only the first keys and
    ``next_steps``.
    """
    from .status import cuda_status as gather

    return gather()


def subprocess_env(env: Mapping[str, str] | None = None, *, autoactivate: bool = False) -> dict[str, str]:
    """The environment for a child Python process that uses mlx.

    Starts from ``env`` (default ``os.environ``) and adds:

    - ``LD_LIBRARY_PATH``: the ``nvidia/*/lib`` folders of pip wheels on
      ``sys.path`` (of the installed CUDA backend's major), prepended, each
      once, existing entries kept after them.  The loader reads it only when
      a process starts, which is why a child needs it and this process could
      not use it;
    - ``CUDA_HOME``: where the CUDA headers are, if ``env`` sets neither
      ``CUDA_HOME`` nor ``CUDA_PATH`` and mlx's own search would fail;
    - the ``MLX_PORTABLE_*`` settings of this process that ``env`` lacks;
    - with ``autoactivate=True``, ``MLX_PORTABLE_AUTOACTIVATE=1``: the child
      runs ``mlx_portable.activate()`` at start without code changes (this
      needs mlx-portable installed from its wheel in the child's environment,
      which ships the ``.pth`` hook).
    """
    from ..validation import require_bool

    require_bool(autoactivate, "subprocess_env(autoactivate=...)")
    result = _checked_env(env)
    for key, value in os.environ.items():
        if key.startswith("MLX_PORTABLE") and key not in result:
            result[key] = value
    if autoactivate:
        result[AUTOACTIVATE_VARIABLE] = "1"
    from .layout import cuda_backend_package

    backend = cuda_backend_package()
    if backend is None:
        return result
    from .status import header_status, library_path_folders

    folders = library_path_folders()
    if folders:
        existing = [p for p in result.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
        merged: dict[str, None] = {}
        for entry in [*folders, *existing]:
            merged.setdefault(entry, None)
        result["LD_LIBRARY_PATH"] = os.pathsep.join(merged)
    if "CUDA_HOME" not in result and "CUDA_PATH" not in result:
        chosen = os.environ.get("CUDA_HOME") or header_status(backend)["chosen"]
        if isinstance(chosen, str) and chosen:
            result["CUDA_HOME"] = chosen
    return result


def _checked_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """A copy of ``env`` (default ``os.environ``); strings only, as ``subprocess`` needs."""
    if env is None:
        return dict(os.environ)
    from ..validation import require_env

    return require_env(env, "subprocess_env(env=...)")
