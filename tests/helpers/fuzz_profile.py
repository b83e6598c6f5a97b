"""Hypothesis profiles for the fuzz tests: few examples in CI (10 matrix environments), more locally.

``HYPOTHESIS_PROFILE=thorough`` runs many more examples (a local hunt, not CI).
No deadline: the machines running CI are shared and slow; speed is measured in
``benchmarks/``, never asserted.  CI keeps no example database (each run is fresh).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

#: Longest error message accepted: the value is shown cut, never echoed whole.
MAX_MESSAGE = 1000


def assert_clear(exc: BaseException, *words: str) -> None:
    """A clear error: a short message that names what it is about."""
    text = str(exc)
    assert text, f"{type(exc).__name__} without a message"
    assert len(text) <= MAX_MESSAGE, f"{len(text)} characters: {text[:200]}..."
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
