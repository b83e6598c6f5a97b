"""Feature checks and routing shared by the kernel-fallback shims.

Those are ``bitlinear_fallback``, ``muse_spark_kernels_fallback``,
``gated_delta`` and ``tuner_divergence_losses``.

mlx-lm's Metal kernels are patched only where the function or method has
exactly the signature the fallback was written for; anything else is
skipped with the difference spelled out, so a changed mlx-lm is never fed
a fallback with the wrong contract.
"""

from __future__ import annotations

import sys
from types import CodeType

from ...registry.registry import PatchContext, Verdict, obsolete, skip

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any

__all__ = [
    "bind_consumers",
    "check_callable",
    "has_own_fallback",
    "kernels_usable",
    "metal_routed",
    "references",
    "route_functions",
]


def _parameters(func: Any) -> list[tuple[str, Any]] | None:
    try:
        import inspect  # only when a check runs: inspect costs milliseconds to import

        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    return [(p.name, p.kind) for p in sig.parameters.values()]


def check_callable(owner: Any, attr: str, expected: Callable[..., Any], where: str) -> Verdict | None:
    """``None`` when ``owner.attr`` exists with the parameters of ``expected``, else why not.

    ``expected`` is a stub with the same parameter names and kinds.
    """
    target = getattr(owner, attr, None)
    if target is None or not callable(target):
        return skip(f"{where}.{attr} does not exist in this mlx-lm")
    found, wanted = _parameters(target), _parameters(expected)
    if found != wanted:
        shown = "?" if found is None else ", ".join(n for n, _ in found)
        return skip(
            f"{where}.{attr} has parameters ({shown}), the fallback is written for "
            f"({', '.join(n for n, _ in wanted or [])})"
        )
    return None


def _code_objects(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _code_objects(const)


def references(func: Any, names: tuple[str, ...]) -> bool:
    """Whether the code of ``func`` (nested functions included) uses any of ``names``."""
    import inspect

    code = getattr(inspect.unwrap(func), "__code__", None)
    if code is None:
        return False
    return any(n in c.co_names for c in _code_objects(code) for n in names)


def has_own_fallback(func: Any, where: str) -> Verdict | None:
    """``obsolete`` when ``func`` already decides between Metal and something else."""
    if references(func, ("is_available", "can_run_metal", "default_device")):
        return obsolete(f"{where} already has a non-Metal path in this mlx-lm")
    return None


def metal_routed(
    original: Callable[..., Any], fallback: Callable[..., Any], usable: Callable[[], bool]
) -> Any:
    """A function that calls ``original`` where Metal kernels can run now, else ``fallback``."""

    import functools

    @functools.wraps(original)
    def routed(*args: Any, **kwargs: Any) -> Any:
        if usable():
            return original(*args, **kwargs)
        return fallback(*args, **kwargs)

    return routed


def kernels_usable(
    module: Any, kernel_names: Iterable[str], usable_now: Callable[[], bool]
) -> Callable[[], bool]:
    """``usable_now()`` and every kernel in ``kernel_names`` built on ``module``."""
    names = tuple(kernel_names)

    def usable() -> bool:
        # The kernels are built (or left None) once, when the module is imported.
        return bool(usable_now()) and all(getattr(module, kn, None) is not None for kn in names)

    return usable


def route_functions(
    ctx: PatchContext,
    module: Any,
    routes: Iterable[tuple[str, Callable[..., Any], Callable[[], bool]]],
) -> None:
    """Replace each ``module.<name>`` by a :func:`metal_routed` one, and rebind mlx-lm's copies.

    ``routes`` holds ``(name, fallback, usable)``.
    """
    replacements: dict[int, tuple[str, Any]] = {}
    for name, fallback, usable in routes:
        original = getattr(module, name)
        routed = metal_routed(original, fallback, usable)
        replacements[id(original)] = (name, routed)
        ctx.set_attr(module, name, routed)
    bind_consumers(ctx, "mlx_lm", replacements)


def bind_consumers(ctx: PatchContext, prefix: str, replacements: dict[int, tuple[str, Any]]) -> None:
    """Rebind names that already-imported modules under ``prefix`` hold to a replaced function.

    ``from ..kernels import qk_norm`` copies the function into the importing
    module; a module imported before the patch keeps the original unless its
    own binding is replaced too.  ``replacements`` maps ``id(original)`` to
    ``(name, replacement)``.
    """
    for mod_name, module in list(sys.modules.items()):
        if module is None or not (mod_name == prefix or mod_name.startswith(prefix + ".")):
            continue
        namespace = getattr(module, "__dict__", {})
        for attr, value in list(namespace.items()):
            hit = replacements.get(id(value))
            if hit is not None and callable(value):
                ctx.set_attr(module, attr, hit[1])
