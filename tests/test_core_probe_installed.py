"""``probe_installed()``: answers without importing mlx, from packages, OS and the NVIDIA driver."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers.shim_helpers import run_script
from helpers.subproc import child_env

from mlx_portable import installed_probe as module
from mlx_portable.installed_probe import probe_installed

DRIVER = (
    "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build  (dvs-builder@U16)\n"
)


def test_imports_nothing_heavy_and_not_mlx() -> None:
    code = (
        "import sys, mlx_portable\n"
        "facts = mlx_portable.probe_installed()\n"
        "heavy = [m for m in ('mlx.core', 'mlx', 'importlib.metadata', 'typing', 'dataclasses', 're', 'json')"
        " if m in sys.modules]\n"
        "print('heavy:', heavy)\n"
        "print('cpu:', [b.available for b in facts.backends if b.name == 'cpu'])\n"
    )
    # No MLX_PORTABLE_* variable (a matrix environment sets some): an unknown one is
    # checked for misspellings at import, which loads difflib and re.
    done = run_script(code, child_env())
    assert done.returncode == 0, done.stdout
    assert "heavy: []" in done.stdout
    assert "cpu: [True]" in done.stdout


def test_every_answer_says_it_is_unconfirmed() -> None:
    facts = probe_installed()
    assert [b.name for b in facts.backends] == ["metal", "cuda", "cpu"]
    assert all(b.confirmed is False for b in facts.backends)
    for b in facts.backends:
        if b.available:
            assert "known when mlx.core loads" in b.unconfirmed
    assert facts.to_dict()["confirmed"] is False


@pytest.fixture
def simulated_nvidia(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "nvidia"
    (root / "gpus" / "0000:01:00.0").mkdir(parents=True)
    (root / "version").write_text(DRIVER)
    (root / "gpus" / "0000:01:00.0" / "information").write_text("Model: \t\t NVIDIA H200\nIRQ: 1\n")
    monkeypatch.setattr(module, "_NVIDIA", str(root))
    monkeypatch.setattr(sys, "platform", "linux")
    return root


def test_simulated_nvidia_driver_with_a_cuda_wheel(
    simulated_nvidia: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "version", lambda p: {"mlx": "0.32.4", "mlx-cuda-13": "0.32.4"}.get(p))
    facts = probe_installed()
    cuda = next(b for b in facts.backends if b.name == "cuda")
    assert facts.driver == "580.65.06" and facts.gpus == ["NVIDIA H200"]
    assert cuda.available and "mlx-cuda-13 0.32.4, driver 580.65.06, GPU: NVIDIA H200" in cuda.reason
    assert "CUDA context" in cuda.unconfirmed


def test_simulated_old_driver_for_cuda_13(simulated_nvidia: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (simulated_nvidia / "version").write_text(DRIVER.replace("580.65.06", "550.54.15"))
    monkeypatch.setattr(module, "version", lambda p: {"mlx": "0.32.4", "mlx-cuda-13": "0.32.4"}.get(p))
    cuda = next(b for b in probe_installed().backends if b.name == "cuda")
    assert not cuda.available
    assert "mlx-cuda-13 needs NVIDIA driver 580+, this one is 550.54.15" in cuda.reason
    assert cuda.remedy == 'pip install "mlx[cuda12]"'


def test_simulated_driver_without_a_cuda_wheel(
    simulated_nvidia: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "version", lambda p: {"mlx": "0.32.4", "mlx-cpu": "0.32.4"}.get(p))
    cuda = next(b for b in probe_installed().backends if b.name == "cuda")
    assert not cuda.available and cuda.remedy == 'pip install "mlx[cuda13]"'


def test_probe_all_without_importing_mlx_says_unconfirmed() -> None:
    import mlx_portable

    results = mlx_portable.probe_all(import_mlx=False)
    cpu = next(r for r in results if r.name == "cpu")
    assert cpu.available and "known only when mlx loads: that mlx.core imports" in cpu.reason


def test_simulated_added_backend_is_predicted_from_its_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend added with add_backend() answers with the default prediction: its row's packages."""
    from mlx_portable.backend_table import BackendRow, add_backend, remove_backend
    from mlx_portable.backends._common import MlxBackendBase

    class Plain(MlxBackendBase):
        _name = "plain"
        _device_type = "gpu"

    monkeypatch.setattr(sys.modules[__name__], "Plain", Plain, raising=False)
    add_backend(BackendRow("plain", "gpu", ("mlx-plain",), __name__, "Plain", "Plain"), before="cpu")
    try:
        installed = {"mlx": "0.32.4", "mlx-cpu": "0.32.4"}
        monkeypatch.setattr(module, "version", lambda p: installed.get(p))
        plain = next(b for b in probe_installed().backends if b.name == "plain")
        assert not plain.available and plain.reason == "no plain backend package (mlx-plain) is installed"
        assert plain.remedy == "pip install mlx-plain"
        installed["mlx-plain"] = "1.0"
        plain = next(b for b in probe_installed().backends if b.name == "plain")
        assert plain.available and plain.reason == "mlx-plain 1.0" and not plain.confirmed
    finally:
        remove_backend("plain")
