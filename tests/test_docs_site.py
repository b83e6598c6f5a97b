"""The docs build as a site in strict mode: a broken link or anchor fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("mkdocs", reason="the docs site needs the dev extra: pip install -e '.[dev]'")


def _build(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(config),
            "-d",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.mark.slow_every_mlx
def test_docs_build_strict_with_every_page_and_link(tmp_path: Path) -> None:
    built = _build(tmp_path, ROOT / "mkdocs.yml")
    assert built.returncode == 0, built.stderr[-3000:]
    assert "WARNING" not in built.stderr, built.stderr[-3000:]
    site = tmp_path / "site"
    assert (site / "index.html").is_file()  # the README
    for page in (ROOT / "docs").glob("*.md"):
        assert (site / page.stem / "index.html").is_file(), f"{page.name} is not in the site"


@pytest.mark.slow_every_mlx
def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.md").write_text("# Page\n\n[gone](missing.md), [no anchor](page.md#nowhere)\n")
    config = tmp_path / "mkdocs.yml"
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    text = text.replace("docs_dir: docs", f"docs_dir: {docs}").replace(
        "  - tools/docs_site.py", f"  - {ROOT / 'tools' / 'docs_site.py'}"
    )
    config.write_text(text, encoding="utf-8")
    built = _build(tmp_path, config)
    assert built.returncode != 0
    assert "missing.md" in built.stderr and "#nowhere" in built.stderr


def test_readme_links_are_rewritten_for_the_site() -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from docs_site import readme_as_index
    finally:
        sys.path.remove(str(ROOT / "tools"))
    text = readme_as_index("[cli](docs/cli.md) [log](CHANGELOG.md) [web](https://x.org/a.md) [top](#use)")
    assert "[cli](cli.md)" in text
    assert "[log](https://github.com/mlx-portable/mlx-portable/blob/main/CHANGELOG.md)" in text
    assert "(https://x.org/a.md)" in text and "(#use)" in text


def test_readme_on_pypi_links_to_the_site_not_to_relative_paths() -> None:
    """The substitution in pyproject.toml turns every docs/ link into a page of the site."""
    import re

    tomllib = pytest.importorskip("tomllib")
    hook = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hatch"]["metadata"]
    config = hook["hooks"]["fancy-pypi-readme"]
    assert [f["path"] for f in config["fragments"]] == ["README.md"]
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for rule in config["substitutions"]:
        text = re.sub(rule["pattern"], rule["replacement"], text)
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets and all(t.startswith("https://") for t in targets), [t for t in targets if "://" not in t]
    docs = {p.stem for p in (ROOT / "docs").glob("*.md")}
    for target in targets:
        page = re.fullmatch(r"https://mlx-portable\.github\.io/mlx-portable/([a-z0-9-]+)/", target)
        if page:
            assert page[1] in docs, target
