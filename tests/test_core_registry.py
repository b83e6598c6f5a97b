"""The patch registry and activate(): idempotence, isolation, revert, strict mode.

These use real mlx (whatever version this environment has) and test patches
that touch a throwaway namespace, so they hold on every mlx in the matrix.
"""

from __future__ import annotations

import sys
import threading
import types
import warnings
from collections.abc import Iterator

import pytest

import mlx_portable
from mlx_portable import Patch, PatchError, PortabilityWarning, get_original, is_patched, obsolete
from mlx_portable.registry.registry import registry

TARGET = types.SimpleNamespace()


def _original() -> str:
    return "original"


TARGET.fn = _original


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("MLX_PORTABLE", "MLX_PORTABLE_DISABLE", "MLX_PORTABLE_STRICT", "MLX_PORTABLE_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    mlx_portable.deactivate()
    added: list[str] = []
    yield_names = added
    monkeypatch.setattr(sys.modules[__name__], "_added", yield_names, raising=False)
    yield
    mlx_portable.deactivate()
    for name in added:
        registry.unregister(name)


def _register(patch: Patch) -> Patch:
    sys.modules[__name__]._added.append(patch.name)  # type: ignore[attr-defined]
    return mlx_portable.register(patch)


def _counting_patch(name: str, counter: list[int], **kwargs: object) -> Patch:
    def apply(ctx: mlx_portable.PatchContext) -> None:
        counter.append(1)
        ctx.set_attr(TARGET, "fn", lambda: f"patched by {name}")

    return Patch(name, "test patch", "tests", apply, **kwargs)  # type: ignore[arg-type]


def test_32_threads_activating_at_once_apply_each_patch_exactly_once() -> None:
    counter: list[int] = []
    _register(_counting_patch("test_once", counter))
    barrier = threading.Barrier(32)
    reports: list[mlx_portable.ActivationReport] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            reports.append(mlx_portable.activate())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(reports) == 32
    assert counter == [1]
    assert all(r.patch("test_once").status == "applied" for r in reports)
    assert registry.record("test_once").applied_count == 1
    assert TARGET.fn() == "patched by test_once"


def test_repeat_activate_returns_the_same_state() -> None:
    first = mlx_portable.activate()
    assert mlx_portable.activate() is first
    assert mlx_portable.is_active()


def test_deactivate_restores_the_identical_objects() -> None:
    import mlx.core as mx

    before_fn = TARGET.fn
    had_tls = hasattr(mx, "new_thread_local_stream")
    _register(_counting_patch("test_identity", []))
    mlx_portable.activate()
    assert TARGET.fn is not before_fn
    assert get_original(TARGET, "fn") is before_fn
    mlx_portable.deactivate()
    assert TARGET.fn is before_fn
    assert not is_patched("test_identity")
    assert hasattr(mx, "new_thread_local_stream") == had_tls


def test_first_original_wins_when_two_patches_replace_one_attribute() -> None:
    before = TARGET.fn
    _register(_counting_patch("test_first", []))
    _register(_counting_patch("test_second", []))
    mlx_portable.activate()
    assert TARGET.fn() == "patched by test_second"
    assert get_original(TARGET, "fn") is before
    mlx_portable.deactivate()
    assert TARGET.fn is before


def test_get_original_of_added_attribute_raises() -> None:
    def apply(ctx: mlx_portable.PatchContext) -> None:
        ctx.set_attr(TARGET, "added_attr", 1)

    _register(Patch("test_added", "adds", "tests", apply))
    mlx_portable.activate()
    assert TARGET.added_attr == 1
    with pytest.raises(AttributeError, match="added by mlx-portable"):
        get_original(TARGET, "added_attr")
    mlx_portable.deactivate()
    assert not hasattr(TARGET, "added_attr")


def _failing(name: str) -> Patch:
    def apply(ctx: mlx_portable.PatchContext) -> None:
        ctx.set_attr(TARGET, "half", "set before the failure")
        raise RuntimeError("boom")

    return Patch(name, "fails", "tests", apply)


def test_failing_patch_is_isolated_warns_once_and_others_apply() -> None:
    counter: list[int] = []
    _register(_failing("test_fails"))
    _register(_counting_patch("test_after_failure", counter))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = mlx_portable.activate()
        mlx_portable.activate()
    ours = [w for w in caught if issubclass(w.category, PortabilityWarning)]
    assert len(ours) == 1 and "test_fails" in str(ours[0].message)
    assert report.patch("test_fails").status == "failed"
    assert "RuntimeError: boom" in report.patch("test_fails").error
    assert [p.name for p in report.failed] == ["test_fails"]
    assert report.patch("test_after_failure").status == "applied" and counter == [1]
    assert not hasattr(TARGET, "half"), "a failed patch must be rolled back"


def test_strict_failure_raises_and_leaves_nothing_applied() -> None:
    before = TARGET.fn
    _register(_counting_patch("test_before_strict", []))
    _register(_failing("test_strict_fails"))
    with pytest.raises(PatchError, match="test_strict_fails") as info:
        mlx_portable.activate(strict=True)
    assert info.value.patch == "test_strict_fails"
    assert "MLX_PORTABLE_DISABLE=test_strict_fails" in str(info.value)
    assert not mlx_portable.is_active()
    assert TARGET.fn is before and not hasattr(TARGET, "half")


def test_strict_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    _register(_failing("test_env_strict"))
    monkeypatch.setenv("MLX_PORTABLE_STRICT", "1")
    with pytest.raises(PatchError):
        mlx_portable.activate()


def test_disable_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    counter: list[int] = []
    _register(_counting_patch("test_disabled", counter))
    monkeypatch.setenv("MLX_PORTABLE_DISABLE", "test_disabled")
    report = mlx_portable.activate()
    assert counter == []
    entry = report.patch("test_disabled")
    assert entry.status == "skipped" and "MLX_PORTABLE_DISABLE" in entry.reason


def test_kill_switch_patches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    counter: list[int] = []
    _register(_counting_patch("test_killed", counter))
    monkeypatch.setenv("MLX_PORTABLE", "0")
    report = mlx_portable.activate()
    assert counter == [] and report.applied == [] and not report.enabled
    assert report.backend is not None


def test_feature_check_obsolete_is_reported() -> None:
    counter: list[int] = []
    _register(
        _counting_patch("test_obsolete", counter, check=lambda ctx: obsolete("mlx has it natively"))  # type: ignore[arg-type]
    )
    report = mlx_portable.activate()
    assert counter == []
    assert report.patch("test_obsolete").status == "obsolete"
    assert [p.name for p in report.obsolete if p.name == "test_obsolete"] == ["test_obsolete"]


def test_version_range_decides_without_feature_check() -> None:
    counter: list[int] = []
    _register(_counting_patch("test_old_only", counter, mlx_versions="<0.1"))
    report = mlx_portable.activate()
    assert counter == [] and report.patch("test_old_only").status == "obsolete"
    assert "<0.1" in report.patch("test_old_only").reason


def test_backend_mismatch_is_skipped_with_reason() -> None:
    _register(_counting_patch("test_metal_only", [], backends={"metal"}))
    report = mlx_portable.activate()
    entry = report.patch("test_metal_only")
    assert entry.status == "skipped" and "metal" in entry.reason


def test_deferred_patch_fires_on_import_and_is_reverted(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "mp_deferred_target.py").write_text("VALUE = 'original'\n")
    monkeypatch.syspath_prepend(str(root))
    seen: list[str] = []

    def apply(ctx: mlx_portable.PatchContext) -> None:
        assert ctx.module is not None
        seen.append(ctx.module.__name__)
        ctx.set_attr(ctx.module, "VALUE", "patched")

    _register(Patch("test_deferred", "deferred", "tests", apply, when="activate:mp_deferred_target"))
    report = mlx_portable.activate()
    assert report.patch("test_deferred").status == "deferred"
    import mp_deferred_target  # type: ignore[import-not-found]

    assert seen == ["mp_deferred_target"]
    assert mp_deferred_target.VALUE == "patched"
    assert mlx_portable.report().patch("test_deferred").status == "applied"
    mlx_portable.deactivate()
    assert mp_deferred_target.VALUE == "original"
    # Already imported: applies at once on the next activation.
    mlx_portable.activate()
    assert mp_deferred_target.VALUE == "patched"
    sys.modules.pop("mp_deferred_target", None)


def test_deactivate_removes_pending_hooks(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from mlx_portable.import_hooks import pending

    root = Path(str(tmp_path))
    (root / "mp_never_patched.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(root))
    seen: list[int] = []
    _register(
        Patch("test_pending", "p", "tests", lambda ctx: seen.append(1), when="activate:mp_never_patched")
    )
    mlx_portable.activate()
    assert "mp_never_patched" in pending()
    mlx_portable.deactivate()
    assert "mp_never_patched" not in pending()
    import mp_never_patched  # type: ignore[import-not-found]  # noqa: F401

    assert seen == []
    sys.modules.pop("mp_never_patched", None)


def test_duplicate_names_and_bad_patches_are_rejected() -> None:
    _register(Patch("test_dupe", "a", "tests", lambda ctx: None))
    with pytest.raises(ValueError, match="already registered"):
        mlx_portable.register(Patch("test_dupe", "b", "tests", lambda ctx: None))
    with pytest.raises(ValueError, match="lower_snake_case"):
        Patch("Bad-Name", "x", "tests", lambda ctx: None)
    with pytest.raises(ValueError, match="unknown backend"):
        Patch("test_rocm", "x", "tests", lambda ctx: None, backends={"rocm"})
    with pytest.raises(TypeError, match="Patch"):
        mlx_portable.register("not a patch")  # type: ignore[arg-type]
    patch = Patch("test_frozen", "x", "tests", lambda ctx: None)
    with pytest.raises(AttributeError, match="immutable"):
        patch.name = "other"  # type: ignore[misc]


def test_register_while_active_applies_at_once() -> None:
    mlx_portable.activate()
    counter: list[int] = []
    _register(_counting_patch("test_late", counter))
    assert counter == [1] and is_patched("test_late")
    assert mlx_portable.report().patch("test_late").status == "applied"


def test_report_is_json_serializable() -> None:
    import json

    report = mlx_portable.activate()
    data = json.loads(json.dumps(report.to_dict()))
    assert data["backend"] == report.backend
    assert {p["name"] for p in data["probes"]} == {"metal", "cuda", "cpu"}
    assert data["versions"]["mlx"]
    assert {"applied", "skipped", "failed", "deferred", "obsolete", "patches"} <= set(data)
    assert "patches:" in str(report)
