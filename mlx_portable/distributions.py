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


def _cache_dir() -> str | None:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mlx-portable") if os.path.isabs(base) else None


def _cache_file(site: str, dists: list[tuple[str, str]], group: str) -> str | None:
    """Where the entry points of ``group`` in ``site`` are cached, for exactly this state of ``site``.

    The key holds the folder's modification time and every dist-info name in
    it (project and version), so installing, removing or upgrading anything
    there makes a new key.  Only an in-place edit of an ``entry_points.txt``
    is not seen (then delete ``~/.cache/mlx-portable``).
    """
    import zlib

    folder = _cache_dir()
    if folder is None:
        return None
    try:
        mtime = os.stat(site).st_mtime_ns
    except OSError:
        return None
    key = "\0".join([group, site, str(mtime), *sorted(os.path.basename(f) for _, f in dists)])
    return os.path.join(folder, f"entry-points-{zlib.crc32(key.encode()):08x}-{len(dists)}.txt")


def _scan(dists: list[tuple[str, str]], group: str) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for project, folder in dists:
        try:
            with open(os.path.join(folder, "entry_points.txt"), encoding="utf-8") as handle:
                text = handle.read()
        except OSError:
            continue
        if group in text:
            found.extend((name, value, project) for name, value in _parse(text, group))
    return found


def _read(path: str) -> list[tuple[str, str, str]] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            rows = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    except OSError:
        return None
    if any(len(row) != 3 for row in rows):
        return None
    return [(row[0], row[1], row[2]) for row in rows]


def _write(path: str, rows: list[tuple[str, str, str]]) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.writelines("\t".join(row) + "\n" for row in rows)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written is only slower


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` across the installed distributions, in ``sys.path`` order.

    Reading every ``entry_points.txt`` costs about 16 us per distribution; the
    answer for each site folder is cached on disk under
    ``~/.cache/mlx-portable`` (``$XDG_CACHE_HOME``), keyed by the folder's
    state (see :func:`_cache_file`), so an unchanged environment reads one
    small file per folder.
    """
    by_site: dict[str, list[tuple[str, str]]] = {}
    for project, (_, folder) in installed().items():
        by_site.setdefault(os.path.dirname(folder), []).append((project, folder))
    found: list[EntryPoint] = []
    for site, dists in by_site.items():
        path = _cache_file(site, dists, group)
        rows = _read(path) if path is not None else None
        if rows is None:
            rows = _scan(dists, group)
            if path is not None:
                _write(path, rows)
        found.extend(EntryPoint(name, value, group, project) for name, value, project in rows)
    return found
