"""The checked-in surface snapshots, one per matrix mlx version, and what each release added.

Why: the snapshots are the record the docs table and the consumer check are
computed from; a test re-records the running mlx's surface and compares, so a
snapshot that stops matching its wheel is caught.

Keys: a name is its qualified name (``mlx.core.from_fp8``); a keyword added
to an existing name is ``name(keyword)`` (``mlx.core.quantize(mode)``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from packaging.version import Version

__all__ = [
    "SNAPSHOT_DIR",
    "Addition",
    "additions",
    "dump_snapshot",
    "load_snapshots",
    "snapshot_path",
    "split_key",
]

SNAPSHOT_DIR = Path(__file__).resolve().parent / "snapshots"

Surface = dict[str, "list[str] | None"]


class Addition(NamedTuple):
    """A name or keyword absent from the oldest snapshot."""

    key: str
    first: str  # first mlx version that has it
    removed: str | None  # first later version without it again, if any


def snapshot_path(version: str, directory: Path = SNAPSHOT_DIR) -> Path:
    return directory / f"mlx-{version}.json"


def dump_snapshot(version: str, surface: Surface) -> str:
    """The snapshot file's text: one name per line, so diffs between versions stay readable."""
    lines = [f"{json.dumps(name)}: {json.dumps(params)}" for name, params in sorted(surface.items())]
    body = ",\n".join(lines)
    return f'{{"mlx": {json.dumps(version)},\n"surface": {{\n{body}\n}}}}\n'


def load_snapshots(directory: Path = SNAPSHOT_DIR) -> dict[str, Surface]:
    """Every snapshot in ``directory``, oldest mlx first."""
    found: dict[str, Surface] = {}
    for path in directory.glob("mlx-*.json"):
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        found[str(data["mlx"])] = data["surface"]
    if not found:
        raise FileNotFoundError(f"no mlx-*.json snapshots in {directory}")
    return {v: found[v] for v in sorted(found, key=Version)}


def split_key(key: str) -> tuple[str, str | None]:
    """``"mlx.core.quantize(mode)"`` -> ``("mlx.core.quantize", "mode")``; a bare name -> ``(name, None)``."""
    if key.endswith(")") and "(" in key:
        name, _, kw = key[:-1].partition("(")
        return name, kw
    return key, None


def _keywords(params: list[str] | None) -> list[str]:
    return [p for p in params or () if p not in ("/", "*") and not p.startswith("*")]


def _present(surface: Surface, key: str) -> bool:
    name, kw = split_key(key)
    if name not in surface:
        return False
    return kw is None or kw in _keywords(surface[name])


def additions(snapshots: dict[str, Surface]) -> list[Addition]:
    """Every name and keyword the oldest snapshot lacks, with the first version that has it.

    A keyword of a name that is itself new is not listed separately unless it
    arrived after the name did.
    """
    versions = list(snapshots)
    base = snapshots[versions[0]]
    keys: dict[str, str] = {}
    # The keywords seen so far per name; a name whose signature could not be
    # read (None) in a version contributes nothing, so a signature that first
    # becomes readable later does not count as new keywords.
    known: dict[str, set[str]] = {n: set(_keywords(p)) for n, p in base.items() if p is not None}
    for version in versions[1:]:
        surface = snapshots[version]
        for name, params in surface.items():
            if name not in base and name not in keys:
                keys[name] = version
            if params is None:
                continue
            if name in known:
                for kw in _keywords(params):
                    if kw not in known[name]:
                        keys.setdefault(f"{name}({kw})", version)
            known.setdefault(name, set()).update(_keywords(params))
    result: list[Addition] = []
    for key, first in keys.items():
        later = versions[versions.index(first) + 1 :]
        removed = next((v for v in later if not _present(snapshots[v], key)), None)
        result.append(Addition(key, first, removed))
    return sorted(result, key=lambda a: a.key)
