"""Which mlx-portable a matrix installs into each environment: the one running the command.

A matrix must test the mlx-portable the user has, however it came: from a
source checkout, a local folder, a wheel file, a git URL or the package
registry.  Asking the registry for ``mlx-portable==X`` fails for every
install that did not come from it (an unpublished version, a fork, a local
build), so the source is read from the running distribution's
``direct_url.json`` (PEP 610), which pip and uv write for every install that
did not come from an index:

=====================================  ==========================================
``direct_url.json``                    installed into each environment
=====================================  ==========================================
``dir_info.editable``                  ``-e FOLDER`` (the code at hand, live)
``dir_info`` (a local folder)          ``FOLDER``
``archive_info`` (a wheel or sdist)    that file (or URL)
``vcs_info``                           ``mlx-portable @ git+URL@COMMIT``
none (installed from an index)         ``mlx-portable==VERSION``
=====================================  ==========================================

Running from a checkout that is not installed at all (``PYTHONPATH``), the
checkout itself is installed editable.  ``--mlx-portable SPEC`` overrides all
of this.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

__all__ = ["MlxPortableSource", "SourceError", "given_source", "running_source"]

DISTRIBUTION = "mlx-portable"


class SourceError(ValueError):
    """The running mlx-portable cannot be installed again; the message says what to do."""


@dataclass(frozen=True)
class MlxPortableSource:
    """What to install, and how the table and ``--json`` describe it."""

    kind: str  #: editable, folder, wheel, archive, vcs, registry, given
    args: tuple[str, ...]  #: the installer arguments (``("-e", "/src")``, ``("/x.whl",)``)
    shown: str  #: one line for people: ``0.1.0 from the wheel /tmp/x.whl``
    #: what decides the content beyond ``args`` (a file's hash): part of the environment's stamp
    fingerprint: str = ""

    @property
    def editable(self) -> str | None:
        return self.args[1] if self.kind == "editable" else None

    @property
    def requirement(self) -> str | None:
        return None if self.kind == "editable" else self.args[0]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "install": list(self.args), "shown": self.shown}


def given_source(spec: str) -> MlxPortableSource:
    """``--mlx-portable SPEC``: a folder (installed editable), a file, a URL or a requirement."""
    spec = spec.strip()
    if not spec:
        raise SourceError("--mlx-portable: give a folder, a wheel, a URL or a requirement, not ''")
    if "://" in spec or "@" in spec:  # a URL or a direct reference (``name @ URL``)
        return MlxPortableSource("given", (spec,), spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        folder = str(path.resolve())
        if not any((path / name).is_file() for name in ("pyproject.toml", "setup.py")):
            raise SourceError(f"--mlx-portable {spec}: {folder} holds no Python project")
        return MlxPortableSource("editable", ("-e", folder), f"editable {folder}")
    if path.suffix in (".whl", ".gz", ".zip") or os.sep in spec:
        if not path.is_file():
            raise SourceError(f"--mlx-portable {spec}: no such file")
        wheel = str(path.resolve())
        return MlxPortableSource("wheel", (wheel,), f"the file {wheel}", _file_hash(path))
    return MlxPortableSource("given", (spec,), spec)


def running_source() -> MlxPortableSource:
    """The mlx-portable running this command, as an installable source (module docstring)."""
    from .. import __version__

    package = Path(__file__).resolve().parents[1]
    checkout = package.parent
    dist = _distribution()
    if dist is not None and _runs_from(dist, package, checkout):
        info = _direct_url(dist)
        if info is not None:
            return _from_direct_url(info, dist.version)
        return MlxPortableSource(
            "registry", (f"{DISTRIBUTION}=={dist.version}",), f"{dist.version} from the package index"
        )
    if (checkout / "pyproject.toml").is_file():
        return MlxPortableSource("editable", ("-e", str(checkout)), f"editable {checkout}")
    return MlxPortableSource(
        "registry", (f"{DISTRIBUTION}=={__version__}",), f"{__version__} from the package index"
    )


def _distribution() -> Any:
    from importlib import metadata

    try:
        return metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def _direct_url(dist: Any) -> dict[str, Any] | None:
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("url"), str) else None


def _runs_from(dist: Any, package: Path, checkout: Path) -> bool:
    """Whether the running ``mlx_portable`` package is this distribution's (not a PYTHONPATH copy)."""
    installed = Path(dist.locate_file("mlx_portable/__init__.py"))
    if installed.is_file():
        return installed.resolve() == (package / "__init__.py")
    info = _direct_url(dist) or {}
    editable = bool((info.get("dir_info") or {}).get("editable"))
    return editable and _local_path(info["url"]) == checkout


def _local_path(url: str) -> Path | None:
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    return Path(url2pathname(unquote(parts.path))).resolve()


def _from_direct_url(info: dict[str, Any], version: str) -> MlxPortableSource:
    url: str = info["url"]
    path = _local_path(url)
    subdirectory = info.get("subdirectory")
    if "vcs_info" in info:
        vcs = info["vcs_info"]
        commit = vcs.get("commit_id") or vcs.get("requested_revision")
        target = f"{vcs.get('vcs', 'git')}+{url}" + (f"@{commit}" if commit else "")
        if subdirectory:
            target += f"#subdirectory={subdirectory}"
        return MlxPortableSource("vcs", (f"{DISTRIBUTION} @ {target}",), f"{version} from {target}")
    if "archive_info" in info:
        if path is None:
            return MlxPortableSource("archive", (f"{DISTRIBUTION} @ {url}",), f"{version} from {url}")
        if not path.is_file():
            raise SourceError(
                f"mlx-portable {version} was installed from {path}, which no longer exists: "
                "give what to install with --mlx-portable WHEEL|FOLDER|URL"
            )
        return MlxPortableSource("wheel", (str(path),), f"{version} from {path}", _file_hash(path))
    if path is None:
        return MlxPortableSource("archive", (f"{DISTRIBUTION} @ {url}",), f"{version} from {url}")
    folder = path / subdirectory if subdirectory else path
    if not folder.is_dir():
        raise SourceError(
            f"mlx-portable {version} was installed from {folder}, which no longer exists: "
            "give what to install with --mlx-portable WHEEL|FOLDER|URL"
        )
    if (info.get("dir_info") or {}).get("editable"):
        return MlxPortableSource("editable", ("-e", str(folder)), f"editable {folder}")
    return MlxPortableSource("folder", (str(folder),), f"{version} from {folder}")


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
