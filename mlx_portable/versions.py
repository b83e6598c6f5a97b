"""``mlx`` and its backend package at different versions: find it before the crash.

The ``mlx`` wheel is only the front end (``mlx/core.*.so``); ``libmlx.so``
comes from ``mlx-cpu``, ``mlx-cuda-12``/``-13`` (``mlx-cuda`` up to 0.30.0)
or ``mlx-metal``.  Both must be the same version, else ``import mlx.core``
fails with ``ImportError: ...core...so: undefined symbol: _ZN3mlx4core...``
(mlx-compat B3).  pip allows it easily: ``pip install -U mlx`` upgrades the
front end alone.  The versions are read from the ``*.dist-info`` folder
names on ``sys.path`` (no import of mlx, no ``importlib.metadata``).
"""

from __future__ import annotations

import os

from .cuda.layout import dist_infos, listdir, site_dirs

__all__ = ["BACKEND_PACKAGES", "backend_package_mismatch", "installed_mlx_packages"]

#: dist-info prefix -> project name of mlx's backend packages
BACKEND_PACKAGES: dict[str, str] = {
    "mlx_cpu": "mlx-cpu",
    "mlx_cuda_13": "mlx-cuda-13",
    "mlx_cuda_12": "mlx-cuda-12",
    "mlx_cuda": "mlx-cuda",
    "mlx_metal": "mlx-metal",
}


def installed_mlx_packages(path: list[str] | None = None) -> dict[str, tuple[str, str]]:
    """project -> ``(version, site folder)`` for ``mlx`` and each backend package.

    The first on ``sys.path`` wins, as for imports.
    """
    found: dict[str, tuple[str, str]] = {}
    for site in site_dirs(path):
        for project, version, _ in dist_infos(listdir(site), "mlx"):
            key = project.lower()
            name = "mlx" if key == "mlx" else BACKEND_PACKAGES.get(key)
            if name is not None and name not in found:
                found[name] = (version, site)
    return found


def _fix_command(backend: str, version: str) -> str:
    if backend == "mlx-cuda" and _tuple(version) > (0, 30, 0):
        # mlx-cuda stopped at 0.30.0; from 0.30.1 the CUDA 12 build is mlx-cuda-12.
        return f'pip uninstall -y mlx-cuda && pip install "mlx=={version}" "mlx-cuda-12=={version}"'
    return f'pip install "mlx=={version}" "{backend}=={version}"'


def _tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split(".")[:3])


def backend_package_mismatch(path: list[str] | None = None) -> str | None:
    """A message with the exact ``pip`` command when mlx and its backend package differ, else ``None``.

    Also reports two backend packages installed in one site folder: they
    overwrite each other's ``mlx/lib/libmlx.so``.
    """
    found = installed_mlx_packages(path)
    front = found.get("mlx")
    if front is None:
        return None
    version, site = front
    problems = []
    for name, (other, other_site) in found.items():
        if name != "mlx" and other != version:
            where = "" if other_site == site else f" (in {other_site}; mlx is in {site})"
            problems.append(
                f"mlx {version} and {name} {other} are installed at different versions{where}: "
                f"import mlx.core fails with 'undefined symbol'. Fix: {_fix_command(name, version)}"
            )
    backends_here = [n for n, (_, s) in found.items() if n != "mlx" and s == site]
    if len(backends_here) > 1:
        keep = next((n for n in backends_here if n.startswith("mlx-cuda")), backends_here[0])
        drop = " ".join(n for n in backends_here if n != keep)
        problems.append(
            f"{' and '.join(backends_here)} are all installed in {site}; they overwrite each other's "
            f"{os.path.join('mlx', 'lib', 'libmlx.so')}. Keep one: pip uninstall -y {drop} && "
            f'pip install --force-reinstall --no-deps "{keep}=={found[keep][0]}"'
        )
    return "\n".join(problems) if problems else None
