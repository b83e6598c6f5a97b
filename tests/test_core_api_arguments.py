"""Every public function's arguments: accepted as documented, or a clear TypeError/ValueError.

Before these checks ``activate(strict="no")`` turned strict mode on,
``set_memory_limit("1GB")`` was accepted on the CPU (and rejected on a GPU),
``Patch(platforms="linux")`` became the set of its letters, ``Patch(123, ...)``
raised ``AttributeError`` and ``register(p, replace="no")`` replaced.
"""

from __future__ import annotations

import math

import pytest
from helpers import fuzz_profile  # noqa: F401  (loads the hypothesis profile)
from helpers.fuzz_profile import assert_clear
from hypothesis import given
from hypothesis import strategies as st

import mlx_portable
from mlx_portable import Patch, PatchContext
from mlx_portable.backends._common import resolve_limit
from mlx_portable.backends.cpu import CpuBackend
from mlx_portable.distributed.local_cluster import run_local
from mlx_portable.distributed.watchdog import Watchdog
from mlx_portable.validation import MAX_TIMEOUT

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**90), max_value=2**90),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.text(min_size=5000, max_size=6000, alphabet="ab"),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.builds(object),
)


def _limit_is_valid(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return 0.0 < value <= 1.0
    if isinstance(value, int):
        return 0 < value <= 2**63 - 1
    return False


@pytest.mark.slow
@given(value=anything)
def test_memory_limit_is_checked_identically_on_every_backend(value: object) -> None:
    # The CPU backend sets no limit, yet rejects exactly what a GPU backend rejects.
    outcomes = []
    for attempt in (
        lambda: mlx_portable.set_memory_limit(value),  # type: ignore[arg-type]
        lambda: CpuBackend().set_memory_limit(value),  # type: ignore[arg-type]
        lambda: resolve_limit(value, 2**63 - 1, default_fraction=0.95, what="total memory"),  # type: ignore[arg-type]
    ):
        try:
            attempt()
            outcomes.append("accepted")
        except (TypeError, ValueError) as exc:
            assert_clear(exc, "set_memory_limit")
            outcomes.append(type(exc).__name__)
    assert len(set(outcomes)) == 1, outcomes
    assert (outcomes[0] == "accepted") == _limit_is_valid(value)


@given(value=anything)
@pytest.mark.slow_every_mlx
def test_activate_strict_takes_a_bool_or_none(value: object) -> None:
    if value is None or isinstance(value, bool):
        return
    before = mlx_portable.is_active()
    with pytest.raises(TypeError) as info:
        mlx_portable.activate(strict=value)  # type: ignore[arg-type]
    assert_clear(info.value, "strict", "True, False or None")
    assert mlx_portable.is_active() == before


@given(value=anything)
@pytest.mark.slow_every_mlx
def test_subprocess_env_autoactivate_takes_a_bool(value: object) -> None:
    if isinstance(value, bool):
        assert (
            mlx_portable.subprocess_env({}, autoactivate=value).get("MLX_PORTABLE_AUTOACTIVATE") == "1"
        ) is value
        return
    with pytest.raises(TypeError) as info:
        mlx_portable.subprocess_env({}, autoactivate=value)  # type: ignore[arg-type]
    assert_clear(info.value, "autoactivate")


@given(env=st.one_of(st.text(max_size=10), st.dictionaries(st.text(max_size=5), anything, max_size=3)))
def test_subprocess_env_takes_a_mapping_of_strings(env: object) -> None:
    typed = isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    # What os.execve takes: a name non-empty, without '=' or NUL; a value without NUL.
    good = typed and all(k and "=" not in k and "\0" not in k + v for k, v in env.items())  # type: ignore[union-attr]
    if good:
        assert mlx_portable.subprocess_env(env).items() >= env.items()  # type: ignore[arg-type, union-attr]
        return
    with pytest.raises(ValueError if typed else TypeError) as info:
        mlx_portable.subprocess_env(env)  # type: ignore[arg-type]
    assert_clear(info.value, "subprocess_env")


def _noop(ctx: PatchContext) -> None:
    return None


_PATCH_ARGUMENTS = ("platforms", "backends", "check", "when", "upstream")


@given(name=anything, argument=st.sampled_from(_PATCH_ARGUMENTS), value=anything)
@pytest.mark.slow_every_mlx
def test_patch_arguments_are_checked(name: object, argument: str, value: object) -> None:
    try:
        patch = Patch(name, "summary", "why", _noop, **{argument: value})  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        assert_clear(exc)
        return
    # Accepted: then every field holds what it documents.
    assert isinstance(patch.name, str) and patch.name
    assert patch.platforms is None or all(isinstance(p, str) for p in patch.platforms)
    assert all(isinstance(b, str) for b in patch.backends)
    assert patch.check is None or callable(patch.check)
    assert patch.phase in ("before-mlx", "import", "activate")
    if argument == "platforms" and value is not None:
        assert not isinstance(value, str)  # a single string is refused, never split into letters


def test_register_replace_takes_a_bool() -> None:
    from mlx_portable.registry.registry import registry

    first = Patch("fuzz_replace_check", "s", "w", _noop)
    second = Patch("fuzz_replace_check", "s", "w", _noop)
    mlx_portable.register(first)
    try:
        for value in ("no", 0, None, "yes"):
            with pytest.raises(TypeError, match="replace"):
                mlx_portable.register(second, replace=value)  # type: ignore[arg-type]
        assert registry.record("fuzz_replace_check").patch is first
    finally:
        registry.unregister("fuzz_replace_check")


def _timeout_is_valid(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return not math.isnan(value) and 0 <= value <= MAX_TIMEOUT


@given(value=anything)
def test_watchdog_timeouts(value: object) -> None:
    try:
        with Watchdog(value):  # type: ignore[arg-type]
            pass
    except (TypeError, ValueError) as exc:
        assert_clear(exc, "timeout")
        assert not _timeout_is_valid(value)
    else:
        assert _timeout_is_valid(value)


@given(argv=st.one_of(st.text(max_size=10), st.just("-cpass")), size=anything)
@pytest.mark.slow_every_mlx
def test_run_local_refuses_a_string_argv_before_starting_anything(argv: str, size: object) -> None:
    with pytest.raises(TypeError) as info:
        run_local(argv, size)  # type: ignore[arg-type]
    assert_clear(info.value, "argv")


@given(size=anything.filter(lambda v: not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 256)))
@pytest.mark.slow_every_mlx
def test_run_local_size(size: object) -> None:
    with pytest.raises((TypeError, ValueError)) as info:
        run_local(["-c", "pass"], size)  # type: ignore[arg-type]
    assert_clear(info.value, "size")


@pytest.mark.parametrize("value", [math.inf, 1e10, math.nan, -1, "10", True, [], -math.inf])
def test_distributed_init_refuses_a_bad_timeout_before_starting(value: object) -> None:
    import mlx_portable.distributed as distributed
    from mlx_portable.distributed import group

    with pytest.raises((TypeError, ValueError)) as info:
        distributed.init(timeout=value)  # type: ignore[arg-type]
    assert_clear(info.value, "timeout")
    assert group.current_choice() is None  # nothing started


@pytest.mark.parametrize("value", ["inf", "1e10", "nan", "-1", "abc", "1" * 5000])
def test_distributed_timeout_variable(value: str) -> None:
    from mlx_portable.distributed.launch_env import timeout_seconds

    with pytest.raises(ValueError) as info:
        timeout_seconds({"MLX_PORTABLE_DISTRIBUTED_TIMEOUT": value})
    assert_clear(info.value, "MLX_PORTABLE_DISTRIBUTED_TIMEOUT")
