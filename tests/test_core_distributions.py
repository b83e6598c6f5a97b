"""The cheap readers of installed metadata agree with the standard library and ``packaging``."""

from __future__ import annotations

import itertools
import sys
from importlib.metadata import entry_points as stdlib_entry_points
from importlib.metadata import version as stdlib_version
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from mlx_portable import distributions
from mlx_portable.versions import version_in

VERSIONS = [
    "0.26.5",
    "0.29.0",
    "0.29.1",
    "0.31.2",
    "0.32",
    "0.32.0",
    "0.32.0rc1",
    "0.30.4.dev1",
    "1.0",
    "0.31.1",
]
SPECS = [
    "<0.29.1",
    ">=0.31.2",
    "<0.30.4",
    ">=0.31.2,<0.32.1",
    "==0.32",
    "!=0.29.0",
    ">0.29",
    ">=0.32.0rc1",
    "~=0.31.0",
]


@pytest.mark.parametrize(("version", "spec"), list(itertools.product(VERSIONS, SPECS)))
def test_version_in_agrees_with_packaging(version: str, spec: str) -> None:
    assert version_in(version, spec) == SpecifierSet(spec).contains(version, prereleases=True)


@pytest.mark.slow
@pytest.mark.parametrize("project", ["mlx", "mlx-lm", "packaging", "pytest"])
def test_versions_agree_with_importlib_metadata(project: str) -> None:
    pytest.importorskip(project.replace("-", "_"))
    assert distributions.version(project) == stdlib_version(project)
    assert distributions.version(project.replace("-", "_").upper()) == stdlib_version(project)


def test_absent_project_is_none() -> None:
    assert distributions.version("no-such-project-here") is None


def test_entry_points_are_read_and_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "demo_plugin-1.2.dist-info"
    info.mkdir()
    (info / "entry_points.txt").write_text(
        "[console_scripts]\ndemo = demo_plugin:main\n\n[mlx_portable.patches]\n"
        "first = demo_plugin:PATCHES\n# a comment\nsecond = demo_plugin.sub:make [extra]\n"
    )
    (tmp_path / "demo_plugin").mkdir()
    (tmp_path / "demo_plugin" / "__init__.py").write_text("PATCHES = ('p',)\n")
    (tmp_path / "demo_plugin" / "sub.py").write_text("def make():\n    return 'made'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    distributions.refresh()
    try:
        found = distributions.entry_points("mlx_portable.patches")
        assert [(e.name, e.value, e.dist) for e in found] == [
            ("first", "demo_plugin:PATCHES", "demo-plugin"),
            ("second", "demo_plugin.sub:make [extra]", "demo-plugin"),
        ]
        assert found[0].load() == ("p",)
        assert callable(found[1].load())
        assert distributions.version("demo-plugin") == "1.2"
        ours = {(e.name, e.value) for e in distributions.entry_points("console_scripts")}
        theirs = {(e.name, e.value) for e in stdlib_entry_points(group="console_scripts")}
        assert ours <= theirs | {("demo", "demo_plugin:main")}
    finally:
        distributions.refresh()
        sys.modules.pop("demo_plugin", None)
        sys.modules.pop("demo_plugin.sub", None)


def test_entry_points_follow_the_site_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(site))

    def add(name: str, version: str, value: str) -> None:
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "entry_points.txt").write_text(f"[mlx_portable.patches]\n{name} = {value}\n")

    def seen() -> list[tuple[str, str]]:
        distributions.refresh()
        return [
            (e.name, e.value)
            for e in distributions.entry_points("mlx_portable.patches")
            if e.dist.startswith("p")
        ]

    try:
        add("p_one", "1.0", "p_one:PATCHES")
        assert seen() == [("p_one", "p_one:PATCHES")]
        assert not (tmp_path / "cache").exists()  # nothing cached on disk
        add("p_two", "2.0", "p_two:make")
        assert sorted(seen()) == [("p_one", "p_one:PATCHES"), ("p_two", "p_two:make")]
        # An in-place edit is seen too (a disk cache keyed by the folder's state missed it).
        (site / "p_two-2.0.dist-info" / "entry_points.txt").write_text(
            "[mlx_portable.patches]\np_two = p_two:other\n"
        )
        assert sorted(seen()) == [("p_one", "p_one:PATCHES"), ("p_two", "p_two:other")]
        (site / "p_one-1.0.dist-info" / "entry_points.txt").unlink()
        (site / "p_one-1.0.dist-info").rmdir()
        assert seen() == [("p_two", "p_two:other")]
    finally:
        distributions.refresh()
