"""Which mlx versions a matrix runs: ``--mlx`` parsed, or the supported range's default.

The default is the newest patch of each minor in the supported range, read
from :data:`mlx_portable.versions.SUPPORTED_MLX_VERSIONS` (the versions
this project's own matrix tests), so no package index is queried: the list
moves when the project's supported range moves.  A minor given as ``0.30``
means that minor's newest supported patch, or, for a minor outside the range,
``mlx==0.30.*`` resolved by the installer against the index.
"""

from __future__ import annotations

import re

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

__all__ = ["MlxSelectionError", "default_versions", "parse_mlx_specs", "supported_versions"]

_MINOR = re.compile(r"^\d+\.\d+$")
_OPERATORS = ("==", "!=", "<", ">", "~=", "===")


class MlxSelectionError(ValueError):
    """``--mlx`` names no version it can build; the message says what is accepted."""


def supported_versions() -> tuple[str, ...]:
    """Every mlx version the project's matrix tests, oldest first."""
    from ..versions import SUPPORTED_MLX_VERSIONS

    return tuple(SUPPORTED_MLX_VERSIONS)


def default_versions(supported: tuple[str, ...] | None = None) -> list[str]:
    """The newest supported patch of each minor, oldest first."""
    newest: dict[tuple[int, ...], Version] = {}
    for text in supported_versions() if supported is None else supported:
        version = Version(text)
        key = version.release[:2]
        if key not in newest or version > newest[key]:
            newest[key] = version
    return [str(newest[k]) for k in sorted(newest)]


def _is_specifier(item: str) -> bool:
    return item.startswith(_OPERATORS)


def parse_mlx_specs(text: str | None, supported: tuple[str, ...] | None = None) -> list[str]:
    """``--mlx`` -> the versions (or ``X.Y.*`` wildcards) to build, in order, without repeats.

    Accepted: ``all`` (every supported version), a comma list of versions
    (``0.26.5``) and minors (``0.30``), or one specifier set (``>=0.30`` or
    ``>=0.28,<0.31``) that filters the default versions.
    """
    supported = supported_versions() if supported is None else supported
    defaults = default_versions(supported)
    if text is None or not text.strip():
        return defaults
    text = text.strip()
    if text == "all":
        return list(supported)
    items = [i.strip() for i in text.split(",") if i.strip()]
    if all(_is_specifier(i) for i in items):
        try:
            spec = SpecifierSet(",".join(items))
        except InvalidSpecifier:
            raise MlxSelectionError(f"--mlx {text!r} is not a valid version specifier") from None
        chosen = [v for v in defaults if Version(v) in spec]
        if not chosen:
            raise MlxSelectionError(
                f"--mlx {text!r} matches none of the default versions ({', '.join(defaults)}); "
                "name versions instead, e.g. --mlx 0.25.0,0.33.0"
            )
        return chosen
    if any(_is_specifier(i) for i in items):
        raise MlxSelectionError(
            f"--mlx {text!r} mixes versions and specifiers: give either a comma list of versions "
            "(0.26.5,0.30) or one specifier set (>=0.28,<0.31)"
        )
    chosen = []
    for item in items:
        version = _one_version(item, supported)
        if version not in chosen:
            chosen.append(version)
    return chosen


def _one_version(item: str, supported: tuple[str, ...]) -> str:
    if _MINOR.match(item):
        in_minor = [v for v in supported if Version(v).release[:2] == Version(item).release[:2]]
        return str(max(in_minor, key=Version)) if in_minor else f"{item}.*"
    try:
        return str(Version(item))
    except InvalidVersion:
        raise MlxSelectionError(
            f"--mlx: {item!r} is not an mlx version; use versions like 0.26.5, minors like 0.30, "
            "a specifier set like '>=0.30', or 'all'"
        ) from None


def outside_supported(version: str, supported: tuple[str, ...] | None = None) -> bool:
    """Whether ``version`` (or ``X.Y.*``) lies outside the supported range."""
    supported = supported_versions() if supported is None else supported
    low, high = Version(supported[0]), Version(supported[-1])
    if version.endswith(".*"):
        minor = Version(version[:-2]).release[:2]
        return not (low.release[:2] <= minor <= high.release[:2])
    return not (low <= Version(version) <= high)
