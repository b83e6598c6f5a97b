"""Every environment-variable error names the variable, the value and the choices."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

import mlx_portable
from mlx_portable.settings import BACKEND_NAMES, read_settings


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("MLX_PORTABLE", "MLX_PORTABLE_DISABLE", "MLX_PORTABLE_STRICT", "MLX_PORTABLE_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    mlx_portable.deactivate()
    yield
    mlx_portable.deactivate()
    from mlx_portable.backends import reset_current_backend

    reset_current_backend()


def test_defaults() -> None:
    s = read_settings({})
    assert s.enabled and not s.strict and not s.backend_forced
    assert s.backend_order == BACKEND_NAMES == ("metal", "cuda", "cpu")
    assert s.disabled == frozenset()


def test_backend_order_and_case() -> None:
    s = read_settings({"MLX_PORTABLE_BACKEND": " CUDA , cpu,cuda"})
    assert s.backend_order == ("cuda", "cpu") and s.backend_forced


@pytest.mark.parametrize("value", ["rocm", "cuda,tpu", "gpu"])
def test_unknown_backend_name(value: str) -> None:
    with pytest.raises(ValueError) as info:
        read_settings({"MLX_PORTABLE_BACKEND": value})
    text = str(info.value)
    assert "MLX_PORTABLE_BACKEND" in text and repr(value) in text
    assert "metal, cuda, cpu" in text


def test_blank_backend_list() -> None:
    with pytest.raises(ValueError, match="MLX_PORTABLE_BACKEND=' , ' names no backend"):
        read_settings({"MLX_PORTABLE_BACKEND": " , "})


@pytest.mark.parametrize("var", ["MLX_PORTABLE_STRICT", "MLX_PORTABLE"])
def test_bad_flag(var: str) -> None:
    with pytest.raises(ValueError) as info:
        read_settings({var: "maybe"})
    assert f"{var}='maybe'" in str(info.value) and "'1', '0'" in str(info.value)


def test_flags() -> None:
    assert read_settings({"MLX_PORTABLE_STRICT": "yes"}).strict
    assert not read_settings({"MLX_PORTABLE": "0"}).enabled
    assert read_settings({"MLX_PORTABLE_STRICT": "1"}, strict=False).strict is False


def test_unknown_disabled_patch_name_at_activate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLX_PORTABLE_DISABLE", "default_device,no_such_patch")
    with pytest.raises(ValueError) as info:
        mlx_portable.activate()
    text = str(info.value)
    assert "MLX_PORTABLE_DISABLE" in text and "'no_such_patch'" in text
    assert "default_device" in text  # the valid names are listed


_IMPORT_WITH_DISABLE = """
import json, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as seen:
    import mlx_portable
from mlx_portable.registry.builtin import ACTIVATE_MODULES
print(json.dumps([[str(w.message) for w in seen], sorted(m for m in ACTIVATE_MODULES if m in sys.modules)]))
"""


def test_unknown_disabled_name_warns_at_import_without_loading_the_shims() -> None:
    from helpers.subproc import child_env, run_python

    env = child_env(MLX_PORTABLE_DISABLE="default_device,gated_delta_ops_fastest,no_such_patch")
    done = run_python(_IMPORT_WITH_DISABLE, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    warned, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    named = [w for w in warned if "no_such_patch" in w]
    assert len(named) == 1 and "which no built-in patch is called" in named[0]
    # The names come from the generated index: the real ones are not warned about, and no
    # activate-time shim module was imported to learn them.
    assert "default_device" not in named[0] and "gated_delta_ops_fastest" not in named[0]
    assert loaded == []


def test_bad_backend_at_activate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLX_PORTABLE_BACKEND", "tpu")
    with pytest.raises(ValueError, match="MLX_PORTABLE_BACKEND='tpu'"):
        mlx_portable.activate()


def test_forcing_an_unavailable_backend_raises_with_remedy(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    if sys.platform == "darwin":
        pytest.skip("Metal may be available on a Mac")
    monkeypatch.setenv("MLX_PORTABLE_BACKEND", "metal")
    with pytest.raises(mlx_portable.BackendUnavailableError) as info:
        mlx_portable.activate()
    assert info.value.backend == "metal"
    assert "macOS" in info.value.reason
    assert "MLX_PORTABLE_BACKEND" in str(info.value)


def test_forced_cpu_is_reported_as_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLX_PORTABLE_BACKEND", "cpu")
    report = mlx_portable.activate()
    assert report.backend == "cpu" and report.backend_forced
