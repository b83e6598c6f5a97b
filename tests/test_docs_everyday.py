"""What the docs tell a new user, kept true: install lines, the CI snippet, the promises and figures.

The GitHub Actions snippet cannot run here (no runner), so its parts are
checked the way a runner would use them: the YAML parses into the jobs it
claims (Linux and macOS), the caches are set up as the text says, the
install line is a valid requirement for the unpublished package, and the
matrix command it runs is accepted by this mlx-portable (``--list``: nothing
built).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.subproc import REPO, child_env

DOCS = REPO / "docs"


def _yaml_block(path: Path, heading: str) -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    text = path.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None, f"no yaml block under {heading!r}"
    data = yaml.safe_load(block.group(1))
    assert isinstance(data, dict)
    return data


@pytest.mark.slow_every_mlx
def test_actions_snippet_installs_what_exists_and_caches_as_said(tmp_path: Path) -> None:
    from packaging.requirements import Requirement

    workflow = _yaml_block(DOCS / "downstream.md", "## GitHub Actions")
    (job,) = workflow["jobs"].values()
    oses = job["strategy"]["matrix"]["os"]
    assert any(o.startswith("ubuntu") for o in oses) and any(o.startswith("macos") for o in oses)
    steps = job["steps"]
    uses = {s.get("uses", "").split("@")[0]: s for s in steps}
    assert uses["astral-sh/setup-uv"]["with"]["prune-cache"] is False
    assert uses["actions/cache"]["with"]["path"] == ".mlx-portable/matrix"
    runs = [s["run"] for s in steps if "run" in s]
    install = shlex.split(runs[0])
    assert install[:2] == ["pip", "install"]
    requirements = [Requirement(r) for r in install[2:]]
    # Not "pip install mlx-portable": the package is not on the index yet.
    portable = next(r for r in requirements if r.name == "mlx-portable")
    assert portable.url is not None and portable.url.startswith("git+https://github.com/mlx-portable/")
    # The commands after it are accepted by this mlx-portable as written.
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "proj"\nversion = "0"\n')
    for command in runs[1:]:
        argv = shlex.split(command)
        assert argv[0] == "mlx-portable"
        if argv[1] == "matrix":
            argv = [*argv[:2], "--list", *argv[2:]]  # what would run; nothing built
        done = subprocess.run(
            [sys.executable, "-m", "mlx_portable", *argv[1:]], cwd=project, env=child_env(),
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode in (0, 1), f"{command}: {done.stdout}{done.stderr}"


def test_no_doc_tells_a_new_user_to_install_from_the_index() -> None:
    """``pip install mlx-portable`` fails until it is published: no doc may say it."""
    for page in [REPO / "README.md", *DOCS.glob("*.md")]:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"pip install (-U )?mlx-portable(\s|$|`)", text), page.name


def test_auto_activation_cost_without_bytecode_is_stated_with_its_fix() -> None:
    text = " ".join((DOCS / "activation.md").read_text(encoding="utf-8").split())
    assert "benchmarks/autoactivate_bytecode.py" in text
    assert "--compile-bytecode" in text and "UV_COMPILE_BYTECODE=1" in text and "compileall" in text
    assert re.search(r"\+\d+ ms CPU against \+\d+ ms with bytecode", text)
    bench = (REPO / "benchmarks" / "autoactivate_bytecode.py").read_text(encoding="utf-8")
    assert "--compile-bytecode" in bench and "PYTHONDONTWRITEBYTECODE=1" in bench


def test_readme_names_apis_still_missing_that_api_diff_lists_as_not_shimmed() -> None:
    """The README's plain statement of what "unchanged" does not cover agrees with docs/api-diff.md."""
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    assert "[docs/api-diff.md](docs/api-diff.md)" in readme
    sentence = readme[readme.index("on mlx 0.26.5") :].split(" are still missing")[0]
    names = re.findall(r"`mx\.(\w+)`", sentence)
    assert len(names) >= 3, sentence
    diff = (DOCS / "api-diff.md").read_text(encoding="utf-8")
    for name in names:
        row = re.search(rf"^\| `mx\.{name}` \| ([\d.]+) \| not needed", diff, re.MULTILINE)
        assert row is not None, f"mx.{name} is not listed as left alone in api-diff.md"
        assert tuple(int(x) for x in row[1].split(".")) > (0, 26, 5)  # added after the oldest mlx


def test_readme_missing_apis_are_missing_on_the_oldest_mlx_while_active() -> None:
    """Where this runs on mlx 0.26.5 (the compatibility matrix), the README's list is checked live."""
    import mlx_portable
    from mlx_portable.distributions import version as installed_version

    if installed_version("mlx") != "0.26.5":
        pytest.skip("checked in the mlx 0.26.5 environment of the compatibility matrix")
    import mlx.core as mx

    mlx_portable.activate()
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    sentence = readme[readme.index("on mlx 0.26.5") :].split(" are still missing")[0]
    for name in re.findall(r"`mx\.(\w+)`", sentence):
        assert not hasattr(mx, name), name


@pytest.mark.slow_every_mlx
def test_readme_explains_the_deselected_count() -> None:
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    said = re.search(r'"deselected" count in the summary \((\d+) today\)', readme)
    assert said is not None
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "families", "-p", "no:cacheprovider",
         str(REPO / "tests" / "families")],
        cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if "no tests collected" in done.stdout and "the family sweep is mlx-lm" in done.stdout:
        pytest.skip("the family sweep is collected only with the mlx-lm it was written for")
    counted = re.search(r"(\d+)(?:/\d+)? tests? collected", done.stdout)
    assert counted is not None, done.stdout[-2000:]
    assert abs(int(counted[1]) - int(said[1])) <= int(said[1]) // 10, (counted[1], said[1])


@pytest.mark.slow_every_mlx
def test_backends_logging_sample_is_what_the_logger_prints() -> None:
    text = (DOCS / "backends.md").read_text(encoding="utf-8")
    shown = re.findall(r"^# (DEBUG:mlx_portable:.*)$", text, re.MULTILINE)
    assert shown
    code = "import logging, mlx_portable; logging.basicConfig(level=logging.DEBUG); mlx_portable.probe_all()"
    done = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=120, check=True
    )
    lines = done.stderr.splitlines()
    if sys.platform != "linux":
        pytest.skip("the sample shows a Linux machine's lines")
    metal = next(line for line in shown if "metal probe" in line)
    assert metal in lines, done.stderr
    assert all(line.startswith("DEBUG:mlx_portable:") and " probe: " in line for line in shown)
