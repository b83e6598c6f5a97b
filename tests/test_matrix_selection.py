"""What a matrix environment holds: version selection, pins per backend, installer errors.

Fast and offline: nothing here builds an environment (see test_matrix_cli.py
and test_matrix_downstream.py for that).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx_portable.matrix.build import classify_failure
from mlx_portable.matrix.project import command_runs_pytest
from mlx_portable.matrix.runner import command_env
from mlx_portable.matrix.selection import (
    MlxSelectionError,
    default_versions,
    outside_supported,
    parse_mlx_specs,
    supported_versions,
)
from mlx_portable.matrix.spec import EnvSpec, UnbuildableError

SUPPORTED = ("0.26.5", "0.27.1", "0.28.0", "0.29.4", "0.30.0", "0.30.6", "0.31.2", "0.32.0", "0.32.4")


def spec(mlx: str, backend: str = "cpu", platform: str = "linux", **kw: object) -> EnvSpec:
    return EnvSpec(mlx, backend, "/usr/bin/python3", "3.11", platform=platform, **kw)  # type: ignore[arg-type]


def test_default_is_the_newest_patch_of_each_supported_minor() -> None:
    assert default_versions(SUPPORTED) == [
        "0.26.5",
        "0.27.1",
        "0.28.0",
        "0.29.4",
        "0.30.6",
        "0.31.2",
        "0.32.4",
    ]
    # The project's own list is where the default comes from.
    assert parse_mlx_specs(None) == default_versions(supported_versions())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.26.5,0.30.0,0.32.4", ["0.26.5", "0.30.0", "0.32.4"]),
        ("0.30", ["0.30.6"]),
        ("0.30, 0.30.6", ["0.30.6"]),
        ("0.33", ["0.33.*"]),
        (">=0.30", ["0.30.6", "0.31.2", "0.32.4"]),
        (">=0.28,<0.30", ["0.28.0", "0.29.4"]),
        ("all", list(SUPPORTED)),
    ],
)
def test_mlx_specs(text: str, expected: list[str]) -> None:
    assert parse_mlx_specs(text, SUPPORTED) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("latest", "'latest' is not an mlx version"),
        ("0.26.5,>=0.30", "mixes versions and specifiers"),
        (">=0.40", "matches none of the default versions"),
        (">=0.30,<<1", "not a valid version specifier"),
    ],
)
def test_bad_mlx_specs_say_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(MlxSelectionError, match=message):
        parse_mlx_specs(text, SUPPORTED)


def test_outside_the_supported_range() -> None:
    assert not outside_supported("0.30.0", SUPPORTED)
    assert outside_supported("0.25.0", SUPPORTED)
    assert outside_supported("0.33.*", SUPPORTED)
    assert not outside_supported("0.32.*", SUPPORTED)


@pytest.mark.parametrize(
    ("mlx", "backend", "package"),
    [
        ("0.26.5", "cpu", "mlx-cpu==0.26.5"),
        ("0.26.5", "cuda12", "mlx-cuda==0.26.5"),
        ("0.30.0", "cuda12", "mlx-cuda==0.30.0"),
        ("0.30.1", "cuda12", "mlx-cuda-12==0.30.1"),
        ("0.32.4", "cuda13", "mlx-cuda-13==0.32.4"),
        ("0.30.*", "cuda13", "mlx-cuda-13==0.30.*"),
    ],
)
def test_mlx_and_its_backend_package_are_pinned_together(mlx: str, backend: str, package: str) -> None:
    pins = [f"mlx=={mlx}", package]
    assert spec(mlx, backend).mlx_requirements() == (pins, pins)


def test_macos_installs_plain_mlx_and_pins_mlx_metal() -> None:
    for backend in ("metal", "cpu"):
        got = spec("0.32.4", backend, platform="darwin").mlx_requirements()
        assert got == (["mlx==0.32.4"], ["mlx==0.32.4", "mlx-metal==0.32.4"])


@pytest.mark.parametrize(
    ("mlx", "backend", "platform", "message"),
    [
        (
            "0.30.0",
            "cuda13",
            "linux",
            "there is no CUDA 13 build of mlx 0.30.0: mlx-cuda-13 starts at mlx 0.30.1",
        ),
        ("0.32.4", "cuda12", "darwin", "mlx's cuda12 build exists only on Linux"),
        ("0.32.4", "metal", "linux", "mlx's metal build exists only on macOS"),
    ],
)
def test_builds_that_never_existed_are_refused_before_any_install(
    mlx: str, backend: str, platform: str, message: str
) -> None:
    with pytest.raises(UnbuildableError, match=message):
        spec(mlx, backend, platform).mlx_requirements()


def test_install_arguments_and_name() -> None:
    s = spec("0.26.5", mlx_lm="0.32.2", requirements=("pytest",), editables=("/p/proj[test]",))
    assert s.name == "mlx0.26.5-cpu-lm0.32.2-py3.11"
    assert s.constraints() == ["mlx==0.26.5", "mlx-cpu==0.26.5", "mlx-lm==0.32.2"]
    assert s.install_args("c.txt") == [
        "-c", "c.txt", "mlx==0.26.5", "mlx-cpu==0.26.5", "mlx-lm==0.32.2", "pytest", "-e", "/p/proj[test]",
    ]  # fmt: skip
    assert spec("0.30.6", mlx_lm=">=0.30").mlx_lm_requirement() == "mlx-lm>=0.30"


def test_a_changed_pyproject_changes_the_stamp(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = []\n')
    s = spec("0.32.4", editables=(str(tmp_path),))
    before = s.stamp()
    assert s.stamp() == before
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["numpy"]\n')
    assert s.stamp() != before


UV_NO_WHEEL = """\
error: No solution found when resolving dependencies
  cause: Because mlx[cpu]==0.32.4 has no wheels with a matching Python implementation tag (e.g., `cp39`) \
and you require mlx[cpu]==0.32.4, we can conclude that your requirements are unsatisfiable.

hint: You require CPython 3.9 (`cp39`), but we only found wheels for `mlx` (v0.32.4) with the following \
Python implementation tags: `cp310`, `cp311`
"""
UV_NO_VERSION = """\
  \u00d7 No solution found when resolving dependencies:
  ╰─▶ Because there is no version of mlx[cpu]==0.26.9 and you require mlx[cpu]==0.26.9, we can conclude \
that your requirements are unsatisfiable.
"""
PIP_NO_WHEEL = """\
ERROR: Could not find a version that satisfies the requirement mlx-cpu==0.26.5 (from versions: none)
ERROR: No matching distribution found for mlx-cpu==0.26.5
"""


@pytest.mark.parametrize(
    ("text", "kind", "quoted"),
    [
        (UV_NO_WHEEL, "no-wheel", "You require CPython 3.9"),
        (UV_NO_VERSION, "no-version", "Because there is no version of mlx[cpu]==0.26.9"),
        (PIP_NO_WHEEL, "no-wheel", "No matching distribution found for mlx-cpu==0.26.5"),
        ("Traceback ...\nOSError: disk full\n", "install-failed", "OSError: disk full"),
    ],
)
def test_installer_failures_get_a_kind_and_quote_the_installer(text: str, kind: str, quoted: str) -> None:
    found, reason = classify_failure(text)
    assert found == kind
    assert quoted in reason
    assert "╰" not in reason


def test_command_env_switches_mlx_portable_on_or_off(tmp_path: Path) -> None:
    base = {"PATH": "/usr/bin", "MLX_PORTABLE": "0", "PYTHONHOME": "/x"}
    on = command_env(tmp_path, "cpu", True, base)
    assert on["MLX_PORTABLE_AUTOACTIVATE"] == "1"
    assert on["MLX_PORTABLE_BACKEND"] == "cpu"
    assert "MLX_PORTABLE" not in on and "PYTHONHOME" not in on
    assert on["PATH"].split(":")[0] == str(tmp_path / "bin")
    assert on["VIRTUAL_ENV"] == str(tmp_path)
    off = command_env(tmp_path, "cpu", False, {"PATH": "/usr/bin", "MLX_PORTABLE_AUTOACTIVATE": "1"})
    assert off["MLX_PORTABLE"] == "0"
    assert "MLX_PORTABLE_AUTOACTIVATE" not in off


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["python", "-m", "pytest", "-q"], True),
        (["/usr/bin/python3.11", "-m", "pytest"], True),
        (["pytest"], True),
        (["python", "-m", "unittest"], False),
        (["make", "test"], False),
    ],
)
def test_pytest_is_added_when_the_command_runs_it(command: list[str], expected: bool) -> None:
    assert command_runs_pytest(command) is expected
