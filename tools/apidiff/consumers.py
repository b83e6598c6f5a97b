"""Which mlx names and keywords a consumer package (mlx-lm, mlx-vlm) uses, read from its source.

Why: the API diff says what each mlx release added; this says which of those
additions real code calls, so that a test can insist that every one of them
is either present, shimmed, or documented as impossible on every mlx.

The scan is static (:mod:`ast`), so it reads any installed copy of a package,
whatever interpreter or mlx it was installed for.  It follows the names a
module binds to mlx (``import mlx.core as mx``, ``import mlx.nn as nn``,
``from mlx import nn``, ``from mlx.core import fast``, ``from mlx.utils
import tree_flatten``) and records each attribute chain through them
(``mlx.core.fast.rope``) with the keywords of calls to it.  Methods reached
through a value (``x.astype(...)``, ``layer.to_quantized(...)``) cannot be
resolved statically and are not recorded.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

__all__ = ["CONSUMERS_PATH", "load_consumers", "merge", "scan_package", "scan_source"]

CONSUMERS_PATH = Path(__file__).resolve().parent / "consumers.json"

Uses = dict[str, set[str]]


def _bindings(tree: ast.Module) -> dict[str, str]:
    """Local name -> mlx qualified name, from the module's imports (at any depth)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "mlx" or alias.name.startswith("mlx."):
                    if alias.asname:
                        names[alias.asname] = alias.name
                    else:
                        names["mlx"] = "mlx"
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and (node.module == "mlx" or node.module.startswith("mlx."))
        ):
            for alias in node.names:
                if alias.name != "*":
                    names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _chain(node: ast.expr, bindings: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in bindings:
        return None
    return ".".join([bindings[node.id], *reversed(parts)])


def _add(uses: Uses, name: str, keywords: set[str]) -> None:
    # Only names inside mlx's packages ("mlx.core.x", "mlx.nn"), not "mlx" itself.
    if "." not in name:
        return
    uses.setdefault(name, set()).update(keywords)


def scan_source(source: str, filename: str = "<source>") -> Uses:
    """The mlx names ``source`` uses, each with the keywords passed when calling it."""
    tree = ast.parse(source, filename)
    bindings = _bindings(tree)
    if not bindings:
        return {}
    uses: Uses = {}
    called: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _chain(node.func, bindings)
            if name is not None:
                called.add(id(node.func))
                _add(uses, name, {k.arg for k in node.keywords if k.arg is not None})
    for node in ast.walk(tree):
        if isinstance(node, (ast.Attribute, ast.Name)) and id(node) not in called:
            if isinstance(node, ast.Name) and node.id in ("mx", "nn", "mlx"):
                continue  # a bare module alias is not a use of a name
            name = _chain(node, bindings)
            if name is not None and not isinstance(getattr(node, "ctx", None), ast.Store):
                _add(uses, name, set())
    return uses


def scan_package(directory: str | Path) -> Uses:
    """Every ``*.py`` file under ``directory``, merged."""
    uses: Uses = {}
    for path in sorted(Path(directory).rglob("*.py")):
        try:
            found = scan_source(path.read_text(encoding="utf-8"), str(path))
        except (SyntaxError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot scan {path}: {exc}") from exc
        for name, kws in found.items():
            uses.setdefault(name, set()).update(kws)
    return uses


def merge(into: dict[str, list[str]], label: str, uses: Uses) -> None:
    """Add ``uses`` of consumer ``label`` (``"mlx-lm 0.24.1"``) to the checked-in record.

    The record maps ``name`` and ``name(keyword)`` keys to the sorted consumers using them.
    """
    for name, kws in uses.items():
        for key in (name, *(f"{name}({kw})" for kw in kws)):
            users = set(into.get(key, ()))
            users.add(label)
            into[key] = sorted(users)


def load_consumers(path: Path = CONSUMERS_PATH) -> dict[str, list[str]]:
    """The checked-in record: key -> consumers (``{"mlx.core.quantize(mode)": ["mlx-lm 0.32.2"]}``)."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): [str(u) for u in v] for k, v in data["uses"].items()}
