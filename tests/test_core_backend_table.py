"""The backend table: a fourth backend is one class and one row, and every list follows.

A fake backend (simulated: it computes on mlx's CPU device) is added to the
table in a fresh interpreter; settings accept its name, selection probes and
picks it, the activation report and ``mlx-portable doctor`` show it, and the
compatibility table predicts patch statuses for it.  Without the row, the
same ``MLX_PORTABLE_BACKEND`` value is an error naming the valid backends.
"""

from __future__ import annotations

import json

import pytest
from helpers.subproc import child_env, run_python

from mlx_portable.backend_table import backend_distributions, backend_names, backend_rows, row
from mlx_portable.settings import read_settings

FAKE = """
import json, sys
import mlx_portable
from mlx_portable.backend_table import BackendRow, add_backend
from mlx_portable.backends.cpu import CpuBackend
from mlx_portable.backends.protocol import ProbeResult


class FakeBackend(CpuBackend):
    _name = "fake"

    def probe(self):
        return ProbeResult("fake", True, "simulated fourth backend")


add_backend(BackendRow("fake", "cpu", ("mlx-fake",), "__main__", "FakeBackend", "Fake"), before="cpu")

from mlx_portable.backends import probe_all, select_backend
from mlx_portable.cli import doctor
from tools.compat_table import predicted_status, render
from mlx_portable.registry.builtin import builtin_patches
from mlx_portable.settings import read_settings

out = {}
out["order"] = list(read_settings({}).backend_order)
out["forced"] = list(read_settings({"MLX_PORTABLE_BACKEND": "fake,cpu"}).backend_order)
out["probes"] = [p.name for p in probe_all()]
out["selected"] = select_backend(["fake"], forced=True).backend.name
data = doctor.gather()
out["report_backend"] = mlx_portable.report().backend
out["report_probes"] = [p.name for p in mlx_portable.report().probes]
out["doctor_backend"] = data["backend"]
out["doctor_text_has_fake"] = "fake" in doctor.render_text(data)
patches = {p.name: p for p in builtin_patches()}
out["cuda_cpu_patch_on_fake"] = predicted_status(patches["metal_kernel_lazy_build"], "0.26.5", "fake")
out["default_patch_on_fake"] = predicted_status(patches["graph_depends"], "0.26.5", "fake")
out["table_says_all"] = "| all |" in render(builtin_patches())
installed = mlx_portable.probe_installed()
out["installed"] = [b.name for b in installed.backends]
out["installed_fake"] = next(b.to_dict() for b in installed.backends if b.name == "fake")
out["installed_packages_know_fake"] = "mlx-fake" in installed.packages
out["probe_all_without_mlx"] = [p.name for p in probe_all(import_mlx=False)]
print(json.dumps(out))
"""


def test_builtin_rows_derive_every_list() -> None:
    assert backend_names() == ("metal", "cuda", "cpu")
    assert [r.device_type for r in backend_rows()] == ["gpu", "gpu", "cpu"]
    assert backend_distributions() == ("mlx-metal", "mlx-cuda-13", "mlx-cuda-12", "mlx-cuda", "mlx-cpu")
    assert read_settings({}).backend_order == backend_names()
    assert row("cuda").label == "CUDA"


@pytest.mark.slow_every_mlx
def test_simulated_fourth_backend_is_seen_by_selection_report_doctor_and_table() -> None:
    done = run_python(FAKE, env=child_env(MLX_PORTABLE_BACKEND="fake"))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["order"] == ["metal", "cuda", "fake", "cpu"]
    assert out["forced"] == ["fake", "cpu"]
    assert out["probes"] == ["metal", "cuda", "fake", "cpu"]
    assert out["selected"] == "fake"
    assert out["report_backend"] == out["doctor_backend"] == "fake"
    assert "fake" in out["report_probes"]
    assert out["doctor_text_has_fake"]
    assert out["cuda_cpu_patch_on_fake"] == "skipped"  # declared for cuda and cpu only
    assert out["default_patch_on_fake"] == "applied"  # declared for every backend, the new one too
    assert out["table_says_all"]
    # probe_installed() asks each backend of the table (Backend.predict), the added one too.
    assert out["installed"] == out["probe_all_without_mlx"] == ["metal", "cuda", "fake", "cpu"]
    assert out["installed_fake"]["name"] == "fake" and out["installed_fake"]["confirmed"] is False
    assert out["installed_packages_know_fake"]


def test_without_the_row_the_name_is_an_error_naming_the_valid_backends() -> None:
    done = run_python(
        "import mlx_portable; mlx_portable.activate()", env=child_env(MLX_PORTABLE_BACKEND="fake")
    )
    assert done.returncode != 0
    assert "MLX_PORTABLE_BACKEND='fake' names unknown backend(s) 'fake'" in done.stderr
    assert "metal, cuda, cpu" in done.stderr


def test_report_before_activate_shows_why_the_forced_backend_was_not_chosen() -> None:
    code = (
        "import json, mlx_portable\n"
        "r = mlx_portable.report()\n"
        "print(json.dumps([r.backend, [p.name for p in r.probes], r.details.get('backend_error', '')]))"
    )
    done = run_python(code, env=child_env(MLX_PORTABLE_BACKEND="fake"))
    assert done.returncode == 0, done.stderr
    backend, probes, error = json.loads(done.stdout)
    assert backend is None
    assert probes == list(backend_names())  # every probe, each with its reason
    assert error.startswith("ValueError: MLX_PORTABLE_BACKEND='fake' names unknown backend(s)")
