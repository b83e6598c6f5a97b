"""Record the public surface of the installed mlx: every name and its parameters.

Why: which names and keywords each mlx release added is what decides whether
MLX code written for a newer mlx runs on an older one.  Reading it from the
wheels themselves, rather than from release notes, makes the diff complete.

A surface is a flat mapping from a qualified name (``mlx.core.quantize``,
``mlx.nn.QuantizedLinear``, ``mlx.core.array.view``) to its parameter list
(``["w", "/", "group_size", "bits", "mode", "*", "global_scale", "stream"]``)
or ``None`` for a name that is not callable or whose signature cannot be
read.  The markers ``/`` and ``*`` keep positional-only and keyword-only
boundaries; ``*args`` and ``**kwargs`` keep their stars.  Overloads are
merged: the parameters of every overload, in first-seen order.

nanobind functions (all of ``mlx.core``) carry their signature text in
``__nb_signature__`` (``def quantize(w: array, /, group_size: int | None =
None, ...) -> ...``); Python functions and classes (``mlx.nn``,
``mlx.optimizers``, ``mlx.utils``) are read with :func:`inspect.signature`.
"""

from __future__ import annotations

import importlib
import inspect
import types
from typing import Any

__all__ = ["MODULES", "collect_surface", "parse_nb_params"]

#: The modules whose public names are recorded.  A module missing from an
#: older mlx (``mlx.core.cuda`` before 0.29) is simply absent from its surface.
MODULES: tuple[str, ...] = (
    "mlx.core",
    "mlx.core.fast",
    "mlx.core.random",
    "mlx.core.linalg",
    "mlx.core.fft",
    "mlx.core.distributed",
    "mlx.core.metal",
    "mlx.core.cuda",
    "mlx.nn",
    "mlx.nn.losses",
    "mlx.nn.init",
    "mlx.nn.utils",
    "mlx.optimizers",
    "mlx.utils",
)

_OPEN = "([{"
_CLOSE = ")]}"


def _split_top_level(text: str) -> list[str]:
    """Split ``text`` at commas outside brackets and string literals."""
    parts: list[str] = []
    depth = 0
    quote = ""
    start = 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_nb_params(signature: str) -> list[str]:
    """The parameter names of one nanobind signature text (``def f(a: int, /, *, b=1) -> x``).

    ``self`` is dropped.  Raises ``ValueError`` for text without a parameter list.
    """
    open_at = signature.find("(")
    if open_at < 0:
        raise ValueError(f"not a signature (no parameter list): {signature!r}")
    depth = 0
    close_at = -1
    for i in range(open_at, len(signature)):
        if signature[i] in _OPEN:
            depth += 1
        elif signature[i] in _CLOSE:
            depth -= 1
            if depth == 0:
                close_at = i
                break
    if close_at < 0:
        raise ValueError(f"unbalanced parameter list in signature {signature!r}")
    params: list[str] = []
    for part in _split_top_level(signature[open_at + 1 : close_at]):
        name = part.split(":", 1)[0].split("=", 1)[0].strip()
        if name and name != "self":
            params.append(name)
    return params


def _merge(lists: list[list[str]]) -> list[str]:
    merged: list[str] = []
    for params in lists:
        for p in params:
            if p not in merged:
                merged.append(p)
    return merged


def _nb_params(obj: Any) -> list[str] | None:
    sigs = getattr(obj, "__nb_signature__", None)
    if not sigs:
        return None
    return _merge([parse_nb_params(entry[0]) for entry in sigs])


def _py_params(obj: Any) -> list[str] | None:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params: list[str] = []
    seen_kw_only = False
    last_pos_only = False
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.POSITIONAL_ONLY:
            last_pos_only = True
        elif last_pos_only:
            params.append("/")
            last_pos_only = False
        if p.kind is p.KEYWORD_ONLY and not seen_kw_only:
            params.append("*")
            seen_kw_only = True
        if p.kind is p.VAR_POSITIONAL:
            params.append("*" + p.name)
            seen_kw_only = True
        elif p.kind is p.VAR_KEYWORD:
            params.append("**" + p.name)
        else:
            params.append(p.name)
    if last_pos_only:
        params.append("/")
    return params


def _params(obj: Any) -> list[str] | None:
    nb = _nb_params(obj)
    if nb is not None:
        return nb
    if callable(obj):
        return _py_params(obj)
    return None


def _is_nanobind_type(obj: Any) -> bool:
    return type(obj).__name__.startswith("nb_type")


def _class_entries(qual: str, cls: type, out: dict[str, list[str] | None]) -> None:
    """The constructor's parameters under ``qual``, the class's own members under ``qual.member``."""
    if _is_nanobind_type(cls):
        init = cls.__dict__.get("__init__")
        out[qual] = _nb_params(init) if init is not None else None
    else:
        out[qual] = _py_params(vars(cls)["__init__"]) if "__init__" in vars(cls) else _py_params(cls)
    for name, member in sorted(vars(cls).items()):
        if name.startswith("_") and name != "__call__":
            continue
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if isinstance(member, property) or type(member).__name__ == "nb_property":
            out[f"{qual}.{name}"] = None
        elif callable(member):
            out[f"{qual}.{name}"] = _params(member)
        else:
            out[f"{qual}.{name}"] = None


def _belongs_to_mlx(module_name: str, obj: Any) -> bool:
    """Whether ``obj`` is defined by ``module_name`` or a submodule (not re-exported from elsewhere)."""
    if module_name.startswith("mlx.core"):
        return True  # the compiled module: everything public in it is mlx's own
    owner = getattr(obj, "__module__", None)
    if owner is None:
        # mx.compile'd functions (nn.relu and the other activations) carry no
        # __module__ before mlx 0.28.
        return type(obj).__name__ == "gc_func"
    return isinstance(owner, str) and (owner == module_name or owner.startswith(module_name + "."))


def collect_surface(modules: tuple[str, ...] = MODULES) -> dict[str, list[str] | None]:
    """The public surface of the installed mlx (see the module docstring), sorted by name."""
    out: dict[str, list[str] | None] = {}
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in dir(module):
            if name.startswith("_"):
                continue
            obj = getattr(module, name)
            qual = f"{module_name}.{name}"
            if isinstance(obj, types.ModuleType):
                if obj.__name__.startswith("mlx."):
                    out[qual] = None
                continue
            if not _belongs_to_mlx(module_name, obj):
                continue
            if isinstance(obj, type):
                _class_entries(qual, obj, out)
            else:
                out[qual] = _params(obj)
    return dict(sorted(out.items()))
