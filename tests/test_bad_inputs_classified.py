"""Every bad input of the classification table (``tests/helpers/fuzz_cases.py``) gets a clear error.

The in-process areas (public API, hostfiles, distributed variables, the ELF
reader: about 450 inputs, a few seconds) run everywhere.  The areas that need
a fresh interpreter per input (every ``MLX_PORTABLE_*`` variable at import,
the command line, a broken mlx, ``distributed.init``: about 80 child
processes, about a minute) run in the README's test environment and, of the
compatibility matrix, in the oldest mlx's (they exercise mlx-portable's own
argument handling, which does not change with mlx); ``FUZZ_FULL=1`` runs them
in every environment, and ``python -m tests.helpers.fuzz_cases -v`` prints the table.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from helpers import fuzz_cases, fuzz_inputs

FAST: list[Callable[[], Iterator[fuzz_cases.Case]]] = [
    fuzz_cases.api_cases,
    fuzz_cases.hostfile_cases,
    fuzz_cases.distributed_env_cases,
    fuzz_cases.elf_cases,
    fuzz_inputs.fast_cases,  # hostile dunders, wrong types, every variable's bad values (~2300 cases)
]
SLOW: list[Callable[[], Iterator[fuzz_cases.Case]]] = [
    fuzz_cases.distributed_cases,
    fuzz_cases.environment_cases,
    fuzz_cases.mlx_broken_cases,
    fuzz_cases.cli_cases,
    fuzz_inputs.slow_cases,
]


def _not_clear(cases: Iterator[fuzz_cases.Case]) -> list[str]:
    results = fuzz_cases.classify_all(cases)
    assert results
    return [
        f"{outcome}: {case.area} {case.label}: {detail}"
        for case, outcome, detail in results
        if outcome not in (fuzz_cases.CLEAR, fuzz_cases.OK)
    ]


@pytest.mark.parametrize("area", FAST, ids=lambda f: f.__name__)
@pytest.mark.slow_every_mlx
def test_bad_inputs_get_a_clear_error(area: Callable[[], Iterator[fuzz_cases.Case]]) -> None:
    import mlx_portable

    try:
        assert _not_clear(area()) == []
    finally:
        mlx_portable.deactivate()


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("MLX_PORTABLE_MATRIX_MLX", "0.26.5") != "0.26.5" and not os.environ.get("FUZZ_FULL"),
    reason="child process per input: runs in the main and oldest-mlx environments (FUZZ_FULL=1: here too)",
)
@pytest.mark.parametrize("area", SLOW, ids=lambda f: f.__name__)
def test_bad_inputs_in_a_fresh_interpreter_get_a_clear_error(
    area: Callable[[], Iterator[fuzz_cases.Case]],
) -> None:
    assert _not_clear(area()) == []
