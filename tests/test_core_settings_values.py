"""Every ``MLX_PORTABLE_*`` value: accepted as documented, or a warning at import and an error at activate().

A typo used to switch the import-time shims off without a word (on old mlx,
``import mlx_lm`` then failed with ``AttributeError ... 'new_thread_local_stream'``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest
from helpers import fuzz_profile  # noqa: F401  (loads the hypothesis profile)
from helpers.fuzz_profile import assert_clear
from helpers.subproc import env_with_settings
from hypothesis import given
from hypothesis import strategies as st

from mlx_portable.errors import PortabilityWarning
from mlx_portable.settings import (
    ENV_BACKEND,
    ENV_KILL_SWITCH,
    ENV_STRICT,
    KNOWN_VARIABLES,
    Settings,
    misspelt_variables,
    near_miss,
    read_settings,
    settings_for_import,
)

FLAG_WORDS = ("1", "true", "yes", "on", "0", "false", "no", "off")
BACKENDS = ("metal", "cuda", "cpu")

# Values a person might type, mixed with anything at all.
flag_values = st.one_of(
    st.sampled_from(FLAG_WORDS).map(lambda w: w.upper() if len(w) % 2 else f" {w} "),
    st.sampled_from(("", "banana", "2", "y", "n", "tru", "enabled", "-1", "\uff11")),
    st.text(max_size=30),
    st.text(min_size=2000, max_size=3000, alphabet="xy"),
)
backend_values = st.one_of(
    st.lists(st.sampled_from((*BACKENDS, "gpu", "mps", "", " ")), max_size=4).map(",".join),
    st.sampled_from(("cuda;cpu", " , ", "CUDA", "cpu,cpu")),
    st.text(max_size=30),
)


def _flag_is_valid(value: str) -> bool:
    return value.strip().lower() in (*FLAG_WORDS, "")


def _import_settings(env: dict[str, str]) -> tuple[Settings, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = settings_for_import(env)
    return got, [str(w.message) for w in caught if issubclass(w.category, PortabilityWarning)]


@given(variable=st.sampled_from((ENV_KILL_SWITCH, ENV_STRICT)), value=flag_values)
def test_flags_are_accepted_as_documented_or_named_in_one_warning(variable: str, value: str) -> None:
    env = {variable: value}
    got, warned = _import_settings(env)
    if _flag_is_valid(value):
        read_settings(env)  # accepted
        assert warned == []
        return
    with pytest.raises(ValueError) as info:
        read_settings(env)
    assert_clear(info.value, variable, "'1', '0'", "'true', 'false'")
    assert got == Settings()  # the defaults at import: the shims still apply
    assert len(warned) == 1
    assert_clear(PortabilityWarning(warned[0]), variable, "'1', '0'", "activate() raises")


@given(value=backend_values)
def test_backend_order_is_accepted_as_documented_or_named_in_one_warning(value: str) -> None:
    env = {ENV_BACKEND: value}
    got, warned = _import_settings(env)
    parts = [p.strip().lower() for p in value.split(",") if p.strip()]
    if value == "" or (parts and all(p in BACKENDS for p in parts)):
        settings = read_settings(env)
        assert warned == []
        assert settings.backend_forced == (value != "")
        return
    with pytest.raises(ValueError) as info:
        read_settings(env)
    assert_clear(info.value, ENV_BACKEND, "metal, cuda, cpu")
    assert got.backend_order == Settings().backend_order and not got.backend_forced
    assert len(warned) == 1 and ENV_BACKEND in warned[0]


@given(known=st.sampled_from(KNOWN_VARIABLES[1:]), data=st.data())
def test_a_misspelt_variable_is_named_with_the_known_one(known: str, data: st.DataObject) -> None:
    # One letter of the part after MLX_PORTABLE_ dropped or doubled: a typo, not a new name.
    index = data.draw(st.integers(len("MLX_PORTABLE_"), len(known) - 1))
    typo = data.draw(
        st.sampled_from((known[:index] + known[index + 1 :], known[:index] + known[index] + known[index:]))
    )
    found = misspelt_variables({typo: "1"})
    assert len(found) == 1 and typo in found[0] and "did you mean" in found[0]
    _, warned = _import_settings({typo: "1"})
    assert len(warned) == 1 and typo in warned[0]


def test_known_and_unrelated_variables_are_not_flagged() -> None:
    env = dict.fromkeys(KNOWN_VARIABLES, "1") | {
        "MLX_PORTABLE_MY_OWN_THING": "x",
        "MLX_METAL_FAST_SYNCH": "1",
    }
    assert misspelt_variables(env) == []


_PROBE = r"""
import json, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import mlx_portable
    import mlx.core
    from mlx_portable.registry.registry import registry
    statuses = {r.patch.name: r.status for r in registry.records()}
try:
    mlx_portable.activate()
    error = None
except ValueError as exc:
    error = str(exc)
print(json.dumps({"statuses": statuses, "warnings": [str(w.message) for w in caught], "error": error}))
"""


def _probe(**extra: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env=env_with_settings(**extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("variable", "value"),
    [(ENV_KILL_SWITCH, "banana"), (ENV_STRICT, "2"), (ENV_BACKEND, "gpu"), ("MLX_PORTABLE_BAKEND", "cpu")],
)
@pytest.mark.slow_every_mlx
def test_bad_setting_still_applies_import_time_patches_and_warns_once(variable: str, value: str) -> None:
    # Before, the import returned early: no import-time patch was even looked at.
    baseline = _probe()
    got = _probe(**{variable: value})
    assert got["statuses"] == baseline["statuses"] and got["statuses"]
    named = [w for w in got["warnings"] if variable in w]  # type: ignore[union-attr]
    assert len(named) == 1
    if variable.startswith("MLX_PORTABLE_BAKEND"):
        assert got["error"] is None  # a misspelt name is a warning only
    else:
        assert got["error"] is not None and variable in got["error"]  # type: ignore[operator]


def test_a_typo_does_not_break_mlx_lm_on_old_mlx() -> None:
    # The failure the fallback prevents: on mlx < 0.31.2, mlx-lm needs the import-time shim.
    # Found, not imported: after an earlier test's deactivate() removed the shim, importing it
    # here would fail with the very AttributeError the children below look for.
    import importlib.util

    if importlib.util.find_spec("mlx_lm") is None:
        pytest.skip("mlx-lm is not installed")
    import mlx.core as mx

    import mlx_portable

    try:
        mlx_portable.get_original(mx, "new_thread_local_stream")  # AttributeError: added by the shim
        pytest.skip("this mlx has new_thread_local_stream natively")
    except AttributeError:
        pass
    code = "import mlx_portable, mlx_lm.generate; print('imported')"

    def run(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code],
            env=env_with_settings(**extra),
            capture_output=True,
            text=True,
            timeout=300,
        )

    unpatched = run(MLX_PORTABLE="0")
    assert unpatched.returncode != 0 and "new_thread_local_stream" in unpatched.stderr
    typo = run(MLX_PORTABLE_STRICT="banana")
    assert typo.returncode == 0, typo.stderr
    assert "MLX_PORTABLE_STRICT='banana'" in typo.stderr  # the warning


def test_every_variable_the_package_names_is_in_the_one_list() -> None:
    # A new MLX_PORTABLE_* variable must join KNOWN_VARIABLES, or the near-miss warning would flag it.
    import re
    from pathlib import Path

    import mlx_portable
    from mlx_portable.cli.environment import PORTABLE_VARIABLES
    from mlx_portable.cli.matrix import ENVS_VARIABLE
    from mlx_portable.distributed import variables
    from mlx_portable.patches import thread_free_streams

    package = Path(mlx_portable.__file__).parent
    pattern = r"MLX_PORTABLE(?:_[A-Z][A-Z0-9_]*[A-Z0-9])?\b"
    named = {match for path in package.rglob("*.py") for match in re.findall(pattern, path.read_text())}
    named -= set(re.findall(pattern, near_miss.__doc__ or ""))  # its examples of misspellings
    assert named <= set(KNOWN_VARIABLES), sorted(named - set(KNOWN_VARIABLES))
    owned = {thread_free_streams.ENV, ENVS_VARIABLE, variables.ENV_BACKEND, variables.ENV_CLUSTER}
    owned |= {variables.ENV_HOSTFILE, variables.ENV_TIMEOUT}
    assert owned <= set(KNOWN_VARIABLES)
    assert set(KNOWN_VARIABLES) <= set(PORTABLE_VARIABLES), "doctor describes every variable"


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("MLX_PORTBLE_BACKEND", "MLX_PORTABLE_BACKEND"),
        ("MLXPORTABLE_BACKEND", "MLX_PORTABLE_BACKEND"),
        ("mlx_portable_backend", "MLX_PORTABLE_BACKEND"),
        ("MLX_PORTABLE_THREAD_FREE_STREAM", "MLX_PORTABLE_THREAD_FREE_STREAMS"),
        ("MLX_PORTABLE_DISABLE_PATCHES", "MLX_PORTABLE_DISABLE"),
        ("MLX_PORTABLE_AUTOACTIVATE ", "MLX_PORTABLE_AUTOACTIVATE"),
        ("MLX_PORTABLE_AUTO_ACTIVATE", "MLX_PORTABLE_AUTOACTIVATE"),
    ],
)
def test_misspellings_of_every_kind_are_named_at_import(typo: str, meant: str) -> None:
    _, warned = _import_settings({typo: "1"})
    assert len(warned) == 1 and f"did you mean {meant}?" in warned[0]


@pytest.mark.parametrize("name", ["MLX_PTX_CACHE_DIR", "MLX_ENABLE_TF32", "MLX_METAL_FAST_SYNCH", "PATH"])
def test_mlx_own_variables_are_not_taken_for_misspellings(name: str) -> None:
    assert misspelt_variables({name: "1"}) == []


@pytest.mark.parametrize("value", ["banana", "2", "y", "ture"])
def test_thread_free_streams_takes_only_the_flag_words(value: str) -> None:
    env = {"MLX_PORTABLE_THREAD_FREE_STREAMS": value}
    with pytest.raises(ValueError) as info:
        read_settings(env)
    assert_clear(info.value, "MLX_PORTABLE_THREAD_FREE_STREAMS", "'1', '0'")
    got, warned = _import_settings(env)
    assert got == Settings() and len(warned) == 1 and "MLX_PORTABLE_THREAD_FREE_STREAMS" in warned[0]
