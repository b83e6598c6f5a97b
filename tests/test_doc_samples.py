"""The sample outputs in docs/ are what the commands print now (tools/doc_samples.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import doc_samples  # noqa: E402

sys.path.remove(str(ROOT / "tools"))

SHOWN = [
    (page, name, text)
    for page in doc_samples.pages()
    for name, text in doc_samples.samples_in(page.read_text())
]
_HEADER = re.compile(r"# mlx\[cpu\] (\S+), mlx-lm (\S+), ")


def _header(text: str) -> re.Match[str] | None:
    return _HEADER.search(text.splitlines()[0]) if text else None


def _sample_versions() -> tuple[str, str]:
    found = {m.groups() for _, _, text in SHOWN for m in [_header(text)] if m}
    assert len(found) == 1, f"the samples come from different environments: {found}"
    return found.pop()


def test_every_sample_marker_names_a_generator() -> None:
    assert {name for _, name, _ in SHOWN} == set(doc_samples.SAMPLES), "a sample is missing or unknown"


@pytest.mark.slow
@pytest.mark.parametrize(("page", "name", "text"), SHOWN, ids=[f"{p.name}:{n}" for p, n, _ in SHOWN])
def test_sample_output_is_current(page: Path, name: str, text: str) -> None:
    wanted = _sample_versions()
    if _header(text) is None and name not in doc_samples.VERSION_BOUND:  # a message for a Linux machine
        from mlx_portable.install_hint import nvidia_driver_version

        if sys.platform != "linux" or nvidia_driver_version() is not None:
            pytest.skip("the sample shows what a Linux machine without an NVIDIA driver prints")
    elif doc_samples.versions() != wanted:
        pytest.skip(f"the samples show mlx {wanted[0]} with mlx-lm {wanted[1]}; this environment differs")
    fresh = doc_samples.SAMPLES[name]()
    assert doc_samples.comparable(name, text) == doc_samples.comparable(name, fresh), (
        f"the {name} sample in {page.relative_to(ROOT)} drifted: run python tools/doc_samples.py --write"
    )


def test_a_drifted_sample_is_caught(tmp_path: Path) -> None:
    text = "<!-- sample: doctor -->\n```text\n$ mlx-portable doctor\nstale\n```\n"
    assert doc_samples.samples_in(text) == [("doctor", "$ mlx-portable doctor\nstale\n")]
    produced = {"doctor": "$ mlx-portable doctor\nfresh\n"}
    assert "fresh" in doc_samples.regenerate(text, produced) and "stale" not in doc_samples.regenerate(
        text, produced
    )


def test_check_speeds_are_not_compared_but_everything_else_is() -> None:
    a = "speed\n  cpu (candidate)  6,596          571\n  cpu (reference)  14,229         1,042\nresult: ok\n"
    b = "speed\n  cpu (candidate)  5,864          407\n  cpu (reference)  5,821          470\nresult: ok\n"
    assert doc_samples.comparable("check", a) == doc_samples.comparable("check", b)
    assert doc_samples.comparable("check", a) != doc_samples.comparable("check", b.replace("ok", "FAILED"))


def test_the_doctor_sample_fits_80_columns_and_25_lines() -> None:
    (text,) = [t for _, n, t in SHOWN if n == "doctor"]
    lines = text.splitlines()[1:]  # after the "$ mlx-portable doctor" line
    assert len(lines) <= 25 and max(len(line) for line in lines) <= 80
