"""One backend selection: ``current_backend()``, ``report().backend`` and the device the patches set agree.

Every mode is run in a fresh interpreter: automatic, ``MLX_PORTABLE_BACKEND``,
``activate(backend=...)``, and each one after the variable changes.  The real
CPU wheel shows the CPU cases; a simulated CUDA wheel (``tests/helpers/simulated_mlx.py``)
shows the case where the patches must move mlx's default device.
"""

from __future__ import annotations

import json
import textwrap

import pytest
from helpers.subproc import REPO, child_env, run_python

TESTS = REPO / "tests"

#: Prints, as JSON, what every party says about the backend after ``activate()``
#: and again after MLX_PORTABLE_BACKEND is changed under it.
AGREEMENT = """
import json, os, sys, warnings
warnings.simplefilter("ignore")
SIMULATED = {simulated!r}
if SIMULATED:
    sys.path.insert(0, {tests!r})
    from helpers.simulated_mlx import make_fake_mlx
    from mlx_portable import _mlx
    mx = make_fake_mlx("0.32.4", SIMULATED)
    _mlx.set_override(mx)
else:
    import mlx.core as mx
import mlx_portable
from mlx_portable.backends.selection import cached_selection

def facts():
    backend = mlx_portable.current_backend()
    return {{
        "current": backend.name,
        "same_object": backend is cached_selection().backend,
        "report": mlx_portable.report().backend,
        "device_type": backend.device_type,
        "default_device_is_wanted": mx.default_device() == getattr(mx, backend.device_type),
    }}

mlx_portable.activate({arguments})
first = facts()
os.environ["MLX_PORTABLE_BACKEND"] = {changed!r}
second = facts()
print(json.dumps([first, second]))
"""


def _agreement(
    *, simulated: str = "", arguments: str = "", changed: str = "cuda", **env: str
) -> list[dict[str, object]]:
    code = AGREEMENT.format(simulated=simulated, tests=str(TESTS), arguments=arguments, changed=changed)
    done = run_python(code, env=child_env(**env))
    assert done.returncode == 0, done.stderr
    found: list[dict[str, object]] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize(
    ("arguments", "env"),
    [
        ("", {}),
        ("", {"MLX_PORTABLE_BACKEND": "cpu"}),
        ("backend='cpu'", {}),
        ("backend=['cpu']", {"MLX_PORTABLE_BACKEND": "cuda"}),  # the argument wins over the variable
    ],
    ids=["automatic", "variable", "argument", "argument-over-variable"],
)
def test_every_party_names_the_same_backend_even_after_the_variable_changes(
    arguments: str, env: dict[str, str]
) -> None:
    first, second = _agreement(arguments=arguments, **env)
    expected = {
        "current": "cpu",
        "same_object": True,
        "report": "cpu",
        "device_type": "cpu",
        "default_device_is_wanted": True,
    }
    # Changing MLX_PORTABLE_BACKEND to a backend this machine lacks used to make
    # current_backend() raise BackendUnavailableError while the report said cpu.
    assert first == expected
    assert second == expected


@pytest.mark.parametrize(
    ("arguments", "env", "backend", "device_type"),
    [
        ("", {}, "cuda", "gpu"),
        ("", {"MLX_PORTABLE_BACKEND": "cpu"}, "cpu", "cpu"),
        ("backend='cpu'", {}, "cpu", "cpu"),
    ],
    ids=["automatic", "variable", "argument"],
)
def test_simulated_cuda_wheel_device_follows_the_one_selection(
    arguments: str, env: dict[str, str], backend: str, device_type: str
) -> None:
    first, second = _agreement(simulated="cuda", arguments=arguments, changed="metal", **env)
    expected = {
        "current": backend,
        "same_object": True,
        "report": backend,
        "device_type": device_type,
        "default_device_is_wanted": True,
    }
    assert first == expected
    assert second == expected


def test_simulated_cuda_wheel_without_the_selection_keeps_the_gpu() -> None:
    """The failure the shared selection prevents: mlx alone computes on the GPU whatever was asked."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from helpers.simulated_mlx import make_fake_mlx
        mx = make_fake_mlx("0.32.4", "cuda")
        print(mx.default_device() == mx.gpu)
        """
    )
    done = run_python(code, env=child_env(MLX_PORTABLE_BACKEND="cpu"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


@pytest.mark.slow_every_mlx
def test_deactivate_lets_the_next_activate_choose_again() -> None:
    code = textwrap.dedent(
        """
        import os
        import mlx_portable
        from mlx_portable import BackendUnavailableError
        print(mlx_portable.activate().backend)
        mlx_portable.deactivate()
        os.environ["MLX_PORTABLE_BACKEND"] = "cuda"
        try:
            mlx_portable.current_backend()
        except BackendUnavailableError as exc:
            print("unavailable:", exc.backend)
        print(mlx_portable.activate(backend="cpu").backend)
        """
    )
    done = run_python(code, env=child_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["cpu", "unavailable: cuda", "cpu"]


def test_an_active_choice_is_not_changed_behind_the_patches() -> None:
    code = textwrap.dedent(
        """
        import mlx_portable
        from mlx_portable.backends import reset_current_backend
        mlx_portable.activate(backend="cpu")
        assert mlx_portable.activate(backend="cpu").backend == "cpu"  # the same request: no error
        for call in (
            lambda: mlx_portable.activate(backend="metal"),
            lambda: mlx_portable.activate(disable="wired_limit"),
            reset_current_backend,
        ):
            try:
                call()
            except (ValueError, RuntimeError) as exc:
                print(type(exc).__name__, exc)
        """
    )
    done = run_python(code, env=child_env())
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("ValueError mlx-portable is already active on the cpu backend")
    assert "deactivate() before activate(backend='metal')" in lines[0]
    assert "deactivate() before activate(disable='wired_limit')" in lines[1]
    assert lines[2].startswith("RuntimeError mlx-portable is active on the cpu backend")


@pytest.mark.parametrize(
    ("arguments", "error", "words"),
    [
        ("backend='gpu'", "ValueError", "activate(backend=...)='gpu' names unknown backend(s) 'gpu'"),
        ("backend=''", "ValueError", "activate(backend=...)='' names no backend"),
        ("backend=3", "TypeError", "activate(backend=...) takes a backend name"),
        ("backend=['cpu', 3]", "ValueError", "names unknown backend(s)"),
        ("disable='no_such_patch'", "ValueError", "activate(disable=...) names unknown patch(es)"),
        ("disable=7", "TypeError", "activate(disable=...) takes patch names"),
    ],
)
def test_arguments_are_checked_as_the_variables_are(arguments: str, error: str, words: str) -> None:
    code = textwrap.dedent(
        f"""
        import mlx_portable
        try:
            mlx_portable.activate({arguments})
        except Exception as exc:
            print(type(exc).__name__, exc)
        print(mlx_portable.is_active())
        """
    )
    done = run_python(code, env=child_env())
    assert done.returncode == 0, done.stderr
    first, active = done.stdout.strip().splitlines()
    assert first.startswith(error) and words in first, first
    assert active == "False"


def test_disable_argument_leaves_the_patch_out() -> None:
    code = (
        "import mlx_portable; r = mlx_portable.activate(disable=['wired_limit']); "
        "print(r.patch('wired_limit').status, r.patch('wired_limit').reason)"
    )
    done = run_python(code, env=child_env(MLX_PORTABLE_DISABLE="sdpa_sinks"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "skipped disabled (MLX_PORTABLE_DISABLE or activate(disable=...))"
