"""Import-time behaviour, each case in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import subproc
from helpers.subproc import child_env

REPO = Path(__file__).resolve().parents[1]


def run_python(code: str, env: dict[str, str] | None = None, *args: str) -> subprocess.CompletedProcess[str]:
    return subproc.run_python(code, env=child_env(**(env or {})), interpreter_args=args, timeout=120)


def test_import_loads_nothing_heavy() -> None:
    code = (
        "import sys, json; import mlx.core; before = set(sys.modules); import mlx_portable; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    added = set(json.loads(result.stdout.strip().splitlines()[-1]))
    for heavy in (
        "mlx_lm",
        "transformers",
        "numpy",
        "importlib.metadata",
        "packaging.specifiers",
        "typing",
        "dataclasses",
        "logging",
        "threading",
        "inspect",
        "json",
        "re",
    ):
        assert heavy not in added, f"import mlx_portable imported {heavy}"
    # activate()'s module, the report, the backends, the settings and the CUDA folders load on first use.
    later = ("mlx_portable.activation", "mlx_portable.backends", "mlx_portable.settings", "mlx_portable.cuda")
    assert not any(m.startswith(later) for m in added), sorted(m for m in added if m.startswith(later))


@pytest.mark.slow_every_mlx
def test_import_without_mlx_core_loaded_defers_and_works() -> None:
    code = (
        "import sys; import mlx_portable; assert 'mlx.core' not in sys.modules, 'mlx.core imported eagerly'; "
        "import mlx.core; import mlx_portable as m; print(m.activate().backend)"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] in ("cpu", "cuda", "metal")


def test_import_works_without_mlx_installed(tmp_path: Path) -> None:
    # A sys.path holding only the repository and the standard library.
    code = (
        "import sys; sys.path[:] = [p for p in sys.path if 'site-packages' not in p]; "
        f"sys.path.insert(0, {str(REPO)!r}); "
        "import mlx_portable; print('imported');"
        "from mlx_portable._mlx import MlxUnavailableError, core\n"
        "try:\n    core()\nexcept MlxUnavailableError as e:\n    print('ERR', e)\n"
    )
    result = run_python(code, {"PYTHONPATH": ""}, "-S")
    assert result.returncode == 0, result.stderr
    assert "imported" in result.stdout
    assert "mlx is not installed" in result.stdout
    assert 'pip install "mlx' in result.stdout


def test_bad_environment_value_does_not_break_import_but_activate_raises() -> None:
    code = (
        "import mlx_portable\n"
        "try:\n    mlx_portable.activate()\nexcept ValueError as e:\n    print('ValueError:', e)\n"
    )
    result = run_python(code, {"MLX_PORTABLE_BACKEND": "tpu"})
    assert result.returncode == 0, result.stderr
    assert "ValueError: MLX_PORTABLE_BACKEND='tpu'" in result.stdout


def test_kill_switch_at_import_registers_and_patches_nothing() -> None:
    code = (
        "import mlx.core, mlx_portable\n"
        "from mlx_portable.registry.registry import registry\n"
        "print([r.status for r in registry.records() if r.status == 'applied'])\n"
        "r = mlx_portable.activate(); print(r.enabled, len(r.applied))"
    )
    result = run_python(code, {"MLX_PORTABLE": "0"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "False", "0"]


def test_public_api_matches_all() -> None:
    code = (
        "import mlx_portable as m\n"
        "import mlx_portable.activation_report, mlx_portable.activation\n"
        "missing = [n for n in m.__all__ if not hasattr(m, n)]\n"
        "assert not missing, missing\n"
        "assert callable(m.report) and callable(m.activate)\n"
        "print('ok')"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_unknown_attribute_is_an_attribute_error() -> None:
    import mlx_portable

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mlx_portable.nope  # noqa: B018


def test_every_on_import_patch_lives_in_an_import_time_module() -> None:
    from mlx_portable.registry.builtin import BUILTIN_MODULES, ON_IMPORT_MODULES

    assert set(ON_IMPORT_MODULES) <= set(BUILTIN_MODULES)
    for name in BUILTIN_MODULES:
        __import__(name)
        for patch in sys.modules[name].PATCHES:
            if patch.on_import:
                assert name in ON_IMPORT_MODULES, f"{patch.name}: list {name} in ON_IMPORT_MODULES"
