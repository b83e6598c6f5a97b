"""Faults inside patches leave a clean state: every patch reverted or none applied, one clear error.

Each scenario used to leave a half state: a plugin whose ``revert`` raised
made ``deactivate()`` raise forever with every patch still in place; a
``check`` returning a non-verdict raised ``AttributeError`` half-way through
``activate()`` with the built-ins applied and ``is_active()`` False; Ctrl-C
inside ``apply`` skipped the rollback; a plugin raising ``SystemExit`` when
loaded ended interpreter start under ``MLX_PORTABLE_AUTOACTIVATE=1``.
"""

from __future__ import annotations

import subprocess
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.subproc import child_env, env_with_settings

import mlx_portable
from mlx_portable import Patch, PatchContext, PatchError, PortabilityWarning
from mlx_portable.registry.registry import FAILED, registry

target = types.SimpleNamespace(original="original")


def _set(name: str) -> object:
    def apply(ctx: PatchContext) -> None:
        ctx.set_attr(target, name, f"patched by {ctx.name}")

    return apply


@pytest.fixture
def clean() -> Iterator[list[str]]:
    """Names registered by the test; unregistered, and mlx-portable deactivated, afterwards."""
    names: list[str] = []
    mlx_portable.deactivate()
    yield names
    try:
        mlx_portable.deactivate()
    except PatchError:
        pass
    for name in names:
        registry.unregister(name)
    for attr in list(vars(target)):
        if attr != "original":
            delattr(target, attr)


def _register(names: list[str], patch: Patch) -> None:
    names.append(patch.name)
    mlx_portable.register(patch)


def test_a_revert_that_raises_does_not_stop_the_others(clean: list[str]) -> None:
    def bad_revert(ctx: PatchContext) -> None:
        raise RuntimeError("cannot undo")

    def apply_second(ctx: PatchContext) -> None:
        _set("second")(ctx)
        ctx.on_revert(bad_revert)

    _register(clean, Patch("fault_first", "s", "w", _set("first")))
    _register(clean, Patch("fault_bad_revert", "s", "w", apply_second))
    _register(clean, Patch("fault_last", "s", "w", _set("third")))
    mlx_portable.activate()
    assert target.first and target.second and target.third  # type: ignore[attr-defined]
    with pytest.raises(PatchError, match=r"fault_bad_revert.*cannot undo") as info:
        mlx_portable.deactivate()
    assert "fault_first" not in str(info.value)
    assert not hasattr(target, "first") and not hasattr(target, "second") and not hasattr(target, "third")
    assert not mlx_portable.is_active()
    mlx_portable.deactivate()  # the next call is clean: nothing left to revert


@pytest.mark.parametrize("returned", [True, "yes", 0, object()])
def test_a_check_returning_a_non_verdict_fails_that_patch_only(clean: list[str], returned: object) -> None:
    _register(clean, Patch("fault_before", "s", "w", _set("before")))
    _register(clean, Patch("fault_odd_check", "s", "w", _set("odd"), check=lambda ctx: returned))  # type: ignore[arg-type, return-value]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mlx_portable.activate()
    assert mlx_portable.is_active()
    assert registry.record("fault_odd_check").status == FAILED
    assert not hasattr(target, "odd") and target.before  # type: ignore[attr-defined]
    assert any("fault_odd_check" in str(w.message) for w in caught if w.category is PortabilityWarning)


def test_a_check_returning_a_non_verdict_in_strict_mode_rolls_everything_back(clean: list[str]) -> None:
    _register(clean, Patch("fault_before", "s", "w", _set("before")))
    _register(clean, Patch("fault_odd_check", "s", "w", _set("odd"), check=lambda ctx: "yes"))  # type: ignore[arg-type, return-value]
    with pytest.raises(PatchError, match=r"fault_odd_check.*returned 'yes'"):
        mlx_portable.activate(strict=True)
    assert not mlx_portable.is_active()
    assert not hasattr(target, "before") and not hasattr(target, "odd")
    assert not any(registry.is_patched(n) for n in registry.names())


@pytest.mark.parametrize("exc", [KeyboardInterrupt])
def test_an_interrupt_inside_apply_leaves_nothing_applied(clean: list[str], exc: type[BaseException]) -> None:
    calls: list[int] = []

    def interrupted(ctx: PatchContext) -> None:
        ctx.set_attr(target, "half", "half-applied")
        calls.append(1)
        if len(calls) == 1:  # interrupted the first time only
            raise exc()

    _register(clean, Patch("fault_before", "s", "w", _set("before")))
    _register(clean, Patch("fault_interrupted", "s", "w", interrupted))
    with pytest.raises(exc):
        mlx_portable.activate()
    assert not mlx_portable.is_active()
    assert not hasattr(target, "half") and not hasattr(target, "before")
    assert not any(registry.is_patched(n) for n in registry.names())
    mlx_portable.activate()  # and a later activation works
    assert target.half == "half-applied"  # type: ignore[attr-defined]


def _plugin_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    dist = site / "mp_exit_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mp-exit-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mlx_portable.patches]\nexits = mp_exit_plugin:patches\n")
    (site / "mp_exit_plugin.py").write_text("raise SystemExit('plugin exits at import')\n")
    return site


@pytest.mark.slow_every_mlx
def test_a_plugin_that_exits_at_load_does_not_end_start_up(tmp_path: Path) -> None:
    site = _plugin_site(tmp_path)
    env = env_with_settings(MLX_PORTABLE_AUTOACTIVATE="1")
    env["PYTHONPATH"] = f"{env['PYTHONPATH']}:{site}"
    done = subprocess.run(
        # What the start-up hook runs at the first import of mlx when the variable is set
        # (the wheel, and so its start-up module, may not be installed here).
        [
            sys.executable,
            "-c",
            "from mlx_portable._autoactivate import activate_now; activate_now(); import mlx_portable; "
            "print('alive', mlx_portable.is_active())",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "alive True"
    assert "mp_exit_plugin" in done.stderr and "could not be loaded" in done.stderr


# A deferred patch whose module registers it (or activates) from its own body:
# the hook must wait until the body has finished.
_SELF_ACTIVATING = """
import mlx_portable
from mlx_portable import Patch


def _apply(ctx):
    ctx.set_attr(ctx.module, "answer", lambda: "patched")


mlx_portable.register(Patch("self_activating", "s", "w", _apply, when="activate:selfact"))
mlx_portable.activate()
FIRED_DURING_BODY = mlx_portable.report().patch("self_activating").status


def answer():
    return "original"
"""


def test_a_hook_on_a_module_still_executing_waits_for_its_body(tmp_path: Path) -> None:
    (tmp_path / "selfact.py").write_text(_SELF_ACTIVATING, encoding="utf-8")
    code = (
        "import mlx_portable, selfact\n"
        "assert selfact.FIRED_DURING_BODY == 'deferred', selfact.FIRED_DURING_BODY\n"
        "assert mlx_portable.report().patch('self_activating').status == 'applied'\n"
        "assert selfact.answer() == 'patched', 'applied, then overwritten by the rest of the body'\n"
        "mlx_portable.deactivate()\n"
        "assert selfact.answer() == 'original', 'deactivate() must restore the module own function'\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
