"""The CPU backend and selection on the real mlx installed here."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import mlx.core as mx
import pytest

import mlx_portable
from mlx_portable.backends import CpuBackend, current_backend, reset_current_backend


@pytest.fixture(autouse=True)
def auto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("MLX_PORTABLE_BACKEND", raising=False)
    reset_current_backend()
    yield
    mlx_portable.deactivate()


def test_cpu_is_chosen_on_a_cpu_machine() -> None:
    if mx.metal.is_available() or (hasattr(mx, "cuda") and mx.cuda.is_available()):
        pytest.skip("this mlx wheel has a GPU backend")
    assert current_backend().name == "cpu"
    probes = {p.name: p for p in mlx_portable.probe_all()}
    assert set(probes) == {"metal", "cuda", "cpu"}
    assert probes["cpu"].available and not probes["metal"].available and not probes["cuda"].available
    assert all(p.reason for p in probes.values())


def test_current_backend_is_cached_and_thread_safe() -> None:
    seen: list[object] = []
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        seen.append(current_backend())

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(seen) == 16 and all(b is seen[0] for b in seen)


def test_cpu_device_info_memory_and_sync() -> None:
    backend = CpuBackend()
    info = backend.device_info()
    assert info.backend == "cpu"
    assert info.device_name and info.architecture
    assert info.memory_size and info.memory_size > 1 << 28
    assert info.recommended_working_set is None and info.compute_capability is None
    a = mx.ones((256, 256))
    mx.eval(a @ a)
    backend.synchronize()
    stats = backend.memory()
    assert stats.peak >= stats.active >= 0
    limit = backend.set_memory_limit(0.5)
    assert limit.memory_limit is None and "system RAM" in limit.note
    assert not backend.supports_wired_memory


@pytest.mark.parametrize(
    ("limit", "error"),
    [(1.5, ValueError), (0.0, ValueError), (-1, ValueError), (True, TypeError), ("1G", TypeError)],
)
def test_cpu_memory_limit_checks_its_argument_like_the_gpu_backends(limit: object, error: type) -> None:
    backend = CpuBackend()
    with pytest.raises(error, match="set_memory_limit"):
        backend.set_memory_limit(limit)  # type: ignore[arg-type]


def test_probe_failures_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.DEBUG, logger="mlx_portable"):
        mlx_portable.probe_all()
    assert any("probe" in r.getMessage() for r in caplog.records if r.name == "mlx_portable")
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("mlx_portable").handlers)


def test_activate_names_cpu_here() -> None:
    if mx.metal.is_available() or (hasattr(mx, "cuda") and mx.cuda.is_available()):
        pytest.skip("this mlx wheel has a GPU backend")
    mlx_portable.deactivate()
    report = mlx_portable.activate()
    assert report.backend == "cpu"
    assert report.versions["mlx"] == mx.__version__
