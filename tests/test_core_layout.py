"""The package's layout rules: no import cycles, no module over 400 lines, a patch named by its file and test.

Imports are read from the source (every ``import`` statement, function-local
ones and the ``else:`` branch of ``if TYPE_CHECKING:`` included, only the
body of ``if TYPE_CHECKING:`` left out), so a cycle hidden behind a
function-local import or a lazy ``__getattr__`` fails here too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from helpers.subproc import REPO

from mlx_portable.registry.builtin import REGISTRATION, builtin_patches

PACKAGE = REPO / "mlx_portable"
MAX_LINES = 400
#: The kernel fallbacks for mlx-lm's Metal kernels share one test file.
SHARED_TESTS = {
    "test_shim_kernel_fallbacks.py": {
        "metal_kernel_lazy_build",
        "bitlinear_fallback",
        "muse_spark_kernels_fallback",
        "tuner_divergence_losses",
        "gated_delta_kernel_fallback",
        "gated_delta_ops_fastest",
    },
    #: The array-edge shims (four modules) share one scenario table.
    "test_shim_array_edges.py": {
        "negative_stride_views",
        "gather_view_order",
        "empty_axis_take",
        "empty_scan",
        "empty_extremes",
        "float64_tolist",
        "float64_from_python",
        "float64_linspace",
        "bool_mask_assign",
        "tile_array_reps",
    },
}


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imports(name: str, path: Path, is_package: bool, modules: dict[str, tuple[Path, bool]]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            # Only the body is for type checkers; the ``else:`` branch runs.
            skipped.update(id(sub) for stmt in node.body for sub in ast.walk(stmt))
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = name.split(".") if is_package else name.split(".")[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in modules else base)
    return {t for t in targets if t in modules and t != name}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in edges:
        if v not in index:
            visit(v)
    return found


@pytest.mark.slow_every_mlx
def test_no_import_cycles_even_through_function_local_imports() -> None:
    modules = _modules()
    edges = {name: _imports(name, path, is_pkg, modules) for name, (path, is_pkg) in modules.items()}
    assert _cycles(edges) == []


def test_cycle_finder_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_over_400_lines() -> None:
    long = {
        str(path.relative_to(REPO)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_a_patch_is_named_by_its_module_and_its_test() -> None:
    tests = REPO / "tests"
    by_module: dict[str, list[str]] = {}
    for patch in builtin_patches():
        by_module.setdefault(patch.apply.__module__, []).append(patch.name)
    assert list(by_module) == [module for module, _ in REGISTRATION]
    for module, names in by_module.items():
        stem = module.rsplit(".", 1)[-1]
        if len(names) == 1:
            assert names == [stem], f"{module} holds {names[0]}: name the file {names[0]}.py"
        for name in names:
            candidates = {f"test_shim_{name}.py", f"test_shim_{stem}.py"}
            candidates |= {file for file, shared in SHARED_TESTS.items() if name in shared}
            # In tests/ or a subject folder (tests/cuda/); not deeper, where venvs live.
            found = [hit for c in candidates for hit in (*tests.glob(c), *tests.glob(f"*/{c}"))]
            assert found, f"no test for {name}: {sorted(candidates)}"


def test_public_names_are_loaded_from_the_module_that_defines_them() -> None:
    import mlx_portable

    for name, module in mlx_portable._LAZY.items():
        obj = getattr(mlx_portable, name)
        assert obj.__module__ == f"mlx_portable.{module}", (
            f"{name}: defined in {obj.__module__}, not {module}"
        )


@pytest.mark.slow_every_mlx
def test_maintainer_tools_stay_out_of_the_runtime_import_graph() -> None:
    modules = _modules()
    for name, (path, _is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and not node.level:
                assert not (node.module or "").startswith("tools"), f"{name} imports {node.module}"
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("tools") for a in node.names), f"{name} imports tools"
