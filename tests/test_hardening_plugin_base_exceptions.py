"""A patch's ``SystemExit``, ``GeneratorExit`` or ``KeyboardInterrupt`` in check, apply or revert.

Faults: such an exception from a plugin's ``check`` or ``apply`` escaped
``activate()`` (a plugin could end the program from it), and from ``revert``
it stopped ``deactivate()`` half way, leaving patched attributes in place.

The registry's rules now:

- ``check``/``apply`` raising ``SystemExit`` or ``GeneratorExit``: a failure
  of that patch like any exception (rolled back, a warning, the others
  apply; ``PatchError`` in strict mode).  ``KeyboardInterrupt`` is the
  user's Ctrl-C: the activation is rolled back and it propagates.
- a revert step (registered with ``ctx.on_revert``) raising any of them:
  every other patch is still reverted and every recorded change restored,
  then the first such exception is re-raised.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterator

import pytest

import mlx_portable
from mlx_portable import Patch, PatchContext, PatchError, PortabilityWarning
from mlx_portable.registry.registry import FAILED, registry

target = types.SimpleNamespace()
KINDS = [SystemExit, GeneratorExit, KeyboardInterrupt]


@pytest.fixture
def clean() -> Iterator[list[str]]:
    names: list[str] = []
    mlx_portable.deactivate()
    yield names
    for _ in range(3):
        try:
            mlx_portable.deactivate()
            break
        except BaseException:
            continue
    for name in names:
        registry.unregister(name)
    for attr in list(vars(target)):
        delattr(target, attr)


def _setter(attr: str, revert=None):  # type: ignore[no-untyped-def]
    def apply(ctx: PatchContext) -> None:
        ctx.set_attr(target, attr, "patched")
        if revert is not None:
            ctx.on_revert(revert)

    return apply


def _register(names: list[str], patch: Patch) -> None:
    names.append(patch.name)
    mlx_portable.register(patch)


def _raiser(kind: type[BaseException]):  # type: ignore[no-untyped-def]
    def fn(ctx: PatchContext) -> None:
        raise kind("from the plugin")

    return fn


@pytest.mark.parametrize("kind", [SystemExit, GeneratorExit])
@pytest.mark.parametrize("where", ["check", "apply"])
def test_exit_in_check_or_apply_is_that_patch_failing(
    clean: list[str], kind: type[BaseException], where: str
) -> None:
    _register(clean, Patch("bx_before", "s", "w", _setter("before")))
    if where == "check":
        bad = Patch("bx_bad", "s", "w", _setter("bad"), check=_raiser(kind))
    else:

        def apply(ctx: PatchContext) -> None:
            ctx.set_attr(target, "half", "half")
            raise kind("from the plugin")

        bad = Patch("bx_bad", "s", "w", apply)
    _register(clean, bad)
    _register(clean, Patch("bx_after", "s", "w", _setter("after")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mlx_portable.activate()
    assert mlx_portable.is_active()
    assert registry.record("bx_bad").status == FAILED
    assert kind.__name__ in registry.record("bx_bad").error
    assert target.before == "patched" and target.after == "patched"  # type: ignore[attr-defined]
    assert not hasattr(target, "half") and not hasattr(target, "bad")
    assert any("bx_bad" in str(w.message) for w in caught if w.category is PortabilityWarning)


@pytest.mark.parametrize("kind", [SystemExit, GeneratorExit])
def test_exit_in_apply_under_strict_is_a_patch_error(clean: list[str], kind: type[BaseException]) -> None:
    _register(clean, Patch("bx_before", "s", "w", _setter("before")))
    _register(clean, Patch("bx_bad", "s", "w", _raiser(kind)))
    with pytest.raises(PatchError, match="bx_bad"):
        mlx_portable.activate(strict=True)
    assert not mlx_portable.is_active() and not hasattr(target, "before")


@pytest.mark.parametrize("where", ["check", "apply"])
def test_ctrl_c_in_check_or_apply_rolls_back_and_propagates(clean: list[str], where: str) -> None:
    _register(clean, Patch("bx_before", "s", "w", _setter("before")))
    raiser = _raiser(KeyboardInterrupt)
    bad = (
        Patch("bx_bad", "s", "w", _setter("bad"), check=raiser)
        if where == "check"
        else Patch("bx_bad", "s", "w", raiser)
    )
    _register(clean, bad)
    with pytest.raises(KeyboardInterrupt):
        mlx_portable.activate()
    assert not mlx_portable.is_active()
    assert not hasattr(target, "before")
    assert not any(registry.is_patched(n) for n in registry.names())


@pytest.mark.parametrize("kind", KINDS)
def test_every_revert_runs_then_the_first_is_reraised(clean: list[str], kind: type[BaseException]) -> None:
    ran: list[str] = []

    def first_revert(ctx: PatchContext) -> None:
        ran.append("first")

    def bad_apply(ctx: PatchContext) -> None:
        ctx.set_attr(target, "bad", "patched")
        ctx.on_revert(_raiser(kind))

    def other_kind(ctx: PatchContext) -> None:
        raise RuntimeError("a later, ordinary failure")

    _register(clean, Patch("bx_first", "s", "w", _setter("first", first_revert)))
    _register(clean, Patch("bx_bad", "s", "w", bad_apply))
    _register(clean, Patch("bx_second_bad", "s", "w", _setter("second", _raiser(SystemExit))))
    _register(clean, Patch("bx_last", "s", "w", _setter("last", other_kind)))
    mlx_portable.activate()
    assert target.first and target.bad and target.second and target.last  # type: ignore[attr-defined]
    with pytest.raises(BaseException) as info:
        mlx_portable.deactivate()
    # Reverted in reverse order: bx_last (RuntimeError), bx_second_bad (SystemExit), bx_bad (kind), bx_first.
    assert type(info.value) is SystemExit  # the first such exception met
    assert ran == ["first"]  # the revert after the raising ones still ran
    assert not [a for a in ("first", "bad", "second", "last") if hasattr(target, a)]
    assert not mlx_portable.is_active()
    assert not any(registry.is_patched(n) for n in registry.names())
    mlx_portable.deactivate()  # clean now


@pytest.mark.parametrize("kind", KINDS)
def test_the_only_raising_revert_reraises_its_own(clean: list[str], kind: type[BaseException]) -> None:
    _register(clean, Patch("bx_first", "s", "w", _setter("first")))
    _register(clean, Patch("bx_bad", "s", "w", _setter("bad", _raiser(kind))))
    mlx_portable.activate()
    with pytest.raises(kind):
        mlx_portable.deactivate()
    assert not hasattr(target, "first") and not hasattr(target, "bad")
