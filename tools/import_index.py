"""The shim index: the mlx versions each shim module is needed on, and the modules its patches wait for.

``import mlx_portable`` after ``import mlx.core`` (for the import-time shim
modules) and the first ``activate()`` (for the others) leave out the shim
modules whose every patch is outside its ``mlx_versions`` on the loaded mlx
or waits for a module not imported yet (see
:mod:`mlx_portable.registry.import_index`); to decide that without importing
them they read this generated index.  The patches' own
``mlx_versions`` and ``when=`` stay the one source: this tool writes the
index from them, and tests/test_core_import_index.py fails when it is stale
(a new or changed shim: run it with ``--write``, beside the compatibility
table)::

    python -m tools.import_index                     # print it
    python -m tools.import_index --write
    python -m tools.import_index --check
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["INDEX_PATH", "check", "main", "render", "write"]

#: Where the generated index lives (a module of the package: read at import).
INDEX_PATH = Path(__file__).resolve().parents[1] / "mlx_portable" / "registry" / "import_index.py"

_HEAD = '''"""The mlx versions each shim module is needed on and the modules its patches wait for (generated).

Generated from the patches' ``mlx_versions`` and ``when=`` by ``python -m
tools.import_index --write``; tests/test_core_import_index.py fails when it
is stale.  Do not edit by hand.

``import mlx_portable`` (for the import-time shim modules) and the first
``activate()`` (for the others) do not import a shim module whose every
patch is outside its range on the loaded mlx (the compatibility test holds
that such a patch is never applied there) or waits for a module not
imported yet (mlx-lm's, in a program that has not imported mlx-lm).  Each
of its patches is decided, with the same report line, when first looked at
or when the module it waits for is imported (:mod:`.lazy`).  A module
missing from here is imported, as before.
"""

from __future__ import annotations

import sys

__all__ = ["SHIM_INDEX", "builtin_names", "modules_to_leave_out"]

#: shim module -> (name, ``mlx_versions``, module it waits for) of each of
#: its patches (``""``: any mlx / none), in the order of the registration list
SHIM_INDEX: dict[str, list[tuple[str, str, str]]] = {
'''

_TAIL = '''}


def modules_to_leave_out(
    version: str | None, modules: tuple[str, ...]
) -> dict[str, tuple[tuple[str, str], ...]]:
    """module -> (name, module it waits for or ``""``) of each patch, for the ``modules`` not to import now.

    Those whose every patch is outside its ``mlx_versions`` on mlx ``version``
    (``None``: not known yet) or waits for a module not imported yet.  A patch
    outside its range waits for nothing: it is decided when first read.
    """
    from ..versions import version_in

    def outside(spec: str) -> bool:
        return version is not None and bool(spec) and not version_in(version, spec)

    def later(spec: str, waits: str) -> bool:
        return outside(spec) or (bool(waits) and waits not in sys.modules)

    found = {}
    for module in modules:
        rows = SHIM_INDEX.get(module)
        if rows is not None and all(later(spec, waits) for _, spec, waits in rows):
            found[module] = tuple((name, "" if outside(spec) else waits) for name, spec, waits in rows)
    return found


def builtin_names() -> frozenset[str]:
    """Every built-in patch's name, without importing a shim module."""
    return frozenset(row[0] for rows in SHIM_INDEX.values() for row in rows)
'''


def render() -> str:
    """The index module's text, from the patches of every module of ``REGISTRATION``."""
    from mlx_portable.registry.builtin import REGISTRATION

    lines = []
    for name, on_import in REGISTRATION:
        __import__(name)
        rows = [
            # An activate-time patch in an import-time module (none today): activate() imports
            # that module anyway, so that patch never lets it be left out at import.
            (p.name, p.mlx_versions, p.module or "") if p.on_import == on_import else (p.name, "", "")
            for p in sys.modules[name].PATCHES
        ]
        lines.append(f"    {json.dumps(name)}: [\n")
        lines.extend("        (" + ", ".join(json.dumps(v) for v in row) + "),\n" for row in rows)
        lines.append("    ],\n")
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
    if "mlx_portable" not in sys.modules:
        # Without its import-time patches: a stale or broken index must not stop the tool that rewrites it.
        previous = os.environ.get("MLX_PORTABLE")
        os.environ["MLX_PORTABLE"] = "0"
        try:
            import mlx_portable  # noqa: F401
        finally:
            if previous is None:
                del os.environ["MLX_PORTABLE"]
            else:
                os.environ["MLX_PORTABLE"] = previous
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
