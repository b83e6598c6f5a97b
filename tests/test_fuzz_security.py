"""Every case of the security classes of the fuzz table is clear or ok (``tests/fuzz_security_cases.py``).

FIFOs and devices as files, planted files in every ``sys.path`` spelling,
plugin ``BaseException``\\ s and secrets by value run in-process (a few
seconds); ``run`` against ``python`` over a table of exit values needs two
child processes per value and is marked slow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from helpers import fuzz_cases, fuzz_security_cases


def _not_clear(cases: Iterator[fuzz_cases.Case]) -> list[str]:
    results = fuzz_cases.classify_all(cases)
    assert results
    return [
        f"{outcome}: {case.area} {case.label}: {detail}"
        for case, outcome, detail in results
        if outcome not in (fuzz_cases.CLEAR, fuzz_cases.OK)
    ]


@pytest.mark.parametrize("area", fuzz_security_cases.FAST_AREAS, ids=lambda f: f.__name__)
@pytest.mark.slow_every_mlx
def test_security_classes(area: Callable[[], Iterator[fuzz_cases.Case]]) -> None:
    assert _not_clear(area()) == []


@pytest.mark.slow
@pytest.mark.parametrize("area", fuzz_security_cases.SLOW_AREAS, ids=lambda f: f.__name__)
def test_security_classes_in_children(area: Callable[[], Iterator[fuzz_cases.Case]]) -> None:
    assert _not_clear(area()) == []
