"""The import-time index: which mlx versions each import-time shim module is needed on.

``import mlx_portable`` after ``import mlx.core`` leaves out the shim modules
whose every import-time patch is outside its ``mlx_versions`` on the loaded
mlx (see :mod:`mlx_portable.registry.import_index`); to decide that without
importing them it reads this generated index.  The patches' own
``mlx_versions`` stay the one source: this tool writes the index from them,
and tests/test_core_import_index.py fails when it is stale (a new or changed
import-time shim: run it with ``--write``, beside the compatibility table)::

    python -m tools.import_index                     # print it
    python -m tools.import_index --write
    python -m tools.import_index --check
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from mlx_portable.registry.builtin import ON_IMPORT_MODULES

__all__ = ["INDEX_PATH", "check", "main", "render", "write"]

#: Where the generated index lives (a module of the package: read at import).
INDEX_PATH = Path(__file__).resolve().parents[1] / "mlx_portable" / "registry" / "import_index.py"

_HEAD = '''"""Which mlx versions each import-time shim module is needed on (generated).

Generated from the patches' ``mlx_versions`` by ``python -m tools.import_index
--write``; tests/test_core_import_index.py fails when it is stale.  Do not
edit by hand.

``import mlx_portable`` with ``mlx.core`` already loaded does not import a
module whose every import-time patch is outside its range on this mlx: the
compatibility test holds that such a patch is never applied there.  Each
of its patches is decided, with the same report line, when first looked at
(:mod:`.lazy`).  A module missing from here is imported, as before.
"""

from __future__ import annotations

__all__ = ["MLX_VERSIONS", "obsolete_modules"]

#: import-time shim module -> (name, ``mlx_versions``) of each of its patches
#: (``""``: needed on every mlx, or decided when ``activate()`` imports the module)
MLX_VERSIONS: dict[str, tuple[tuple[str, str], ...]] = {
'''

_TAIL = '''}


def obsolete_modules(version: str) -> dict[str, tuple[str, ...]]:
    """module -> its patches' names, for the modules whose every patch is outside its range on ``version``."""
    from ..versions import version_in

    return {
        module: tuple(name for name, _ in rows)
        for module, rows in MLX_VERSIONS.items()
        if all(spec and not version_in(version, spec) for _, spec in rows)
    }
'''


def render() -> str:
    """The index module's text, from the import-time patches of ``ON_IMPORT_MODULES``."""
    lines = []
    for name in ON_IMPORT_MODULES:
        __import__(name)
        # An activate-time patch in the module: it is imported by activate() anyway, so never left out.
        rows = [(p.name, p.mlx_versions if p.on_import else "") for p in sys.modules[name].PATCHES]
        shown = ", ".join(f"({json.dumps(n)}, {json.dumps(v)})" for n, v in rows)
        shown += "," if len(rows) == 1 else ""
        lines.append(f"    {json.dumps(name)}: ({shown}),\n")
    return _HEAD + "".join(lines) + _TAIL


def write(path: Path = INDEX_PATH) -> None:
    path.write_text(render(), encoding="utf-8")


def check(path: Path = INDEX_PATH) -> str | None:
    """``None`` when ``path`` holds the generated index, else what to run."""
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if current != render():
        return f"{path} is out of date: run python -m tools.import_index --write"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Print, write (``--write``) or check (``--check``) the index."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.import_index",
        description="Generate the import-time index from the import-time patches' mlx_versions.",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write it to {INDEX_PATH}")
    group.add_argument("--check", action="store_true", help="exit 1 if the checked-in index is stale")
    args = parser.parse_args(argv)
    if args.write:
        write()
        return 0
    if args.check:
        problem = check()
        if problem is not None:
            print(problem, file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
