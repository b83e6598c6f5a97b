"""Installed distributions and their entry points, read from ``*.dist-info`` folders.

Why hand-written rather than ``importlib.metadata``: importing
``importlib.metadata`` alone (it pulls in ``email``, ``zipfile``, ``csv``,
``re`` and ``json``) costs about 36 ms on the 2-core CI machine, three times
what ``import mlx.core`` costs, and it was most of the first ``activate()``.
What activation needs is narrow: the versions of a handful of projects and
the ``mlx_portable.patches`` entry points.  Both are in the installed
``*.dist-info`` folders of ``sys.path`` (PEP 376/PEP 491 names
``<project>-<version>.dist-info``, entry points in ``entry_points.txt``, an
INI file), so one ``os.listdir`` per ``sys.path`` folder and one small read
per distribution answer them -- about 4 ms with 250 distributions
installed.  The scan is done once per process and cached
(:func:`refresh` forgets it); the entry points of each site folder are also
cached on disk, keyed by the folder's state (:func:`entry_points`), so an
unchanged environment reads one small file per folder.

Limits: distributions installed as ``.egg-info`` or inside zip files (eggs)
are not seen; :func:`mlx_portable.report` then lists their version as
``None``, and a plugin shipped that way is not loaded (install it as a
wheel).
"""

from __future__ import annotations

import os

from .regular_files import read_regular
from .versions import listdir, site_dirs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

__all__ = ["EntryPoint", "entry_points", "installed", "normalize", "refresh", "version"]

# normalized project name -> (version, dist-info folder); the first on sys.path wins.
_cache: dict[str, tuple[str, str]] | None = None


def normalize(name: str) -> str:
    """PEP 503 normalization, as dist-info folder names use it (``mlx_lm`` == ``mlx-lm``)."""
    out: list[str] = []
    dash = False
    for ch in name.lower():
        if ch in "-_.":
            dash = True
            continue
        if dash and out:
            out.append("-")
        dash = False
        out.append(ch)
    return "".join(out)


def installed() -> dict[str, tuple[str, str]]:
    """Normalized project name -> ``(version, dist-info folder)`` for everything on ``sys.path``."""
    global _cache
    if _cache is not None:
        return _cache
    found: dict[str, tuple[str, str]] = {}
    for site in site_dirs():
        for entry in listdir(site):
            if not entry.endswith(".dist-info") or "-" not in entry:
                continue
            project, _, rest = entry[: -len(".dist-info")].partition("-")
            found.setdefault(normalize(project), (rest, os.path.join(site, entry)))
    _cache = found
    return found


def refresh() -> None:
    """Forget the scan (after installing or removing distributions in this process)."""
    global _cache
    _cache = None


def version(project: str) -> str | None:
    """The installed version of ``project``, or ``None``."""
    entry = installed().get(normalize(project))
    return entry[0] if entry is not None else None


class EntryPoint:
    """One entry point: ``name = module:attr`` in ``group`` of distribution ``dist``."""

    __slots__ = ("dist", "group", "name", "value")

    def __init__(self, name: str, value: str, group: str, dist: str) -> None:
        self.name = name
        self.value = value
        self.group = group
        self.dist = dist

    def __repr__(self) -> str:
        return f"EntryPoint({self.name!r}, {self.value!r}, group={self.group!r}, dist={self.dist!r})"

    def load(self) -> Any:
        """Import the module and return the attribute (``importlib.metadata``'s semantics)."""
        import sys

        module_name, _, attrs = self.value.partition(":")
        module_name = module_name.strip()
        __import__(module_name)
        obj: Any = sys.modules[module_name]
        for attr in attrs.split("[", 1)[0].strip().split(".") if attrs.strip() else ():
            obj = getattr(obj, attr)
        return obj


def _parse(text: str, group: str) -> Iterator[tuple[str, str]]:
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
            continue
        if inside and "=" in line:
            name, _, value = line.partition("=")
            yield name.strip(), value.strip()


#: An ``entry_points.txt`` is a few hundred bytes; more than this is not one.
_MAX_ENTRY_POINTS_BYTES = 1 << 20


def _scan(dists: list[tuple[str, str]], group: str) -> list[tuple[str, str, str]]:
    """``(name, value, project)`` of ``group`` in each distribution's ``entry_points.txt``.

    Only a regular file is read, at most :data:`_MAX_ENTRY_POINTS_BYTES`
    (a FIFO or ``/dev/zero`` in its place must not hang or exhaust memory);
    bytes that are not UTF-8 are replaced, not fatal.
    """
    found: list[tuple[str, str, str]] = []
    marker = group.encode()
    for project, folder in dists:
        try:
            data = read_regular(os.path.join(folder, "entry_points.txt"), _MAX_ENTRY_POINTS_BYTES)
        except OSError:
            continue
        if marker in data:
            text = data.decode("utf-8", "replace")
            found.extend((name, value, project) for name, value in _parse(text, group))
    return found


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` across the installed distributions, in ``sys.path`` order.

    Read from the distributions' own ``entry_points.txt`` every time: no
    cache on disk, since a cache file is one more thing someone else can
    write (a planted line would name code for ``activate()`` to run).
    Reading costs about 20 us per installed distribution, once per process.
    """
    dists = [(project, folder) for project, (_, folder) in installed().items()]
    return [EntryPoint(name, value, group, project) for name, value, project in _scan(dists, group)]
