"""Random values, hostile ones among them, for every public argument: a clear error or a correct answer.

``tests/fuzz_inputs.py`` tries each argument with a fixed table (run by
``test_fuzz_classified.py``); here hypothesis draws the values, so shapes the
table lacks (nested lists, odd floats, long and unicode strings) are tried
too, with the same oracle.  Before these checks, ``obsolete(x)`` kept an
object whose ``__repr__`` raised until the report was printed,
``report().to_json(indent=x)`` leaked the object's own exception, ``skip(None)``
and ``probe_all(mx=object())`` were accepted, and ``dist.sum_scatter("x")``
returned ``'x'``.
"""

from __future__ import annotations

import pytest
from helpers import (
    fuzz_cases,
    fuzz_inputs,
    fuzz_profile,  # noqa: F401  (loads the hypothesis profile)
)
from hypothesis import given
from hypothesis import strategies as st

import mlx_portable

TARGETS = {target.label: target for target in fuzz_inputs.targets()}

HOSTILE = list(fuzz_inputs.hostile_values())  # drawn by name: hypothesis hashes what it samples
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.text(alphabet=" \t\n\0=,;-", max_size=6),
    st.binary(max_size=4),
    st.lists(st.one_of(st.text(max_size=4), st.integers()), max_size=3),
    st.sets(st.text(max_size=4), max_size=2),
    st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers()), max_size=2),
    st.builds(object),
)


def _outcome(label: str, value: object, *, hostile: bool, name: str = "drawn") -> tuple[str, str]:
    case = fuzz_inputs.argument_case("hypothesis", TARGETS[label], name, value, hostile_value=hostile)
    if case is None:  # a valid value for a call that would start something
        return fuzz_cases.OK, "not started"
    return case.run()


@pytest.fixture(autouse=True)
def _inactive_afterwards() -> object:
    yield None
    mlx_portable.deactivate()


@given(label=st.sampled_from(sorted(TARGETS)), which=st.integers(0, len(HOSTILE) - 1))
def test_a_hostile_value_never_leaks_its_own_exception(label: str, which: int) -> None:
    name, value = HOSTILE[which]
    outcome, detail = _outcome(label, value, hostile=True, name=name)
    assert outcome in (fuzz_cases.CLEAR, fuzz_cases.OK), f"{label} <- {name}: {outcome}: {detail}"


@given(label=st.sampled_from(sorted(TARGETS)), value=values)
def test_any_value_gets_a_clear_error_or_a_correct_answer(label: str, value: object) -> None:
    outcome, detail = _outcome(label, value, hostile=False)
    assert outcome in (fuzz_cases.CLEAR, fuzz_cases.OK), f"{label} <- {value!r:.80}: {outcome}: {detail}"
