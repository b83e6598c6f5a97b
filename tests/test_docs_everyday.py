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
from subproc import REPO, child_env

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
