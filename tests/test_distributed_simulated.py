"""CUDA, NCCL, JACCL and Metal paths of the distributed layer, simulated.

A fake ``mlx.core`` (handed in through ``_mlx.set_override``) reproduces the
``mx.distributed`` surface and error texts of the named mlx versions and
records which stream each operation was given; the rank's device backend is
patched in.  What these fakes reproduce was read in ml-explore/mlx
(``mlx/distributed/*``, ``mlx/backend/cuda/primitives.cpp``) and, where a CPU
wheel can show it, run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from mlx_portable import _mlx
from mlx_portable.distributed import group as group_module
from mlx_portable.distributed import ops
from mlx_portable.distributed.errors import DistributedBackendUnavailableError, DistributedError


class FakeDeviceType:
    def __init__(self, name: str) -> None:
        self.name = name


CPU, GPU = FakeDeviceType("cpu"), FakeDeviceType("gpu")


class FakeGroup:
    def __init__(self, rank: int = 0, size: int = 2) -> None:
        self._rank, self._size = rank, size

    def rank(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._size


class FakeArray:
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape, self.ndim = shape, len(shape)

    def __getitem__(self, item: slice) -> tuple[str, slice]:
        return ("slice", item)


class FakeDistributed:
    """``mx.distributed`` of a given version: records (op, stream, backend) per call."""

    def __init__(self, version: str, *, fail: dict[str, str] | None = None) -> None:
        self.version = version
        self.calls: list[tuple[str, Any]] = []
        self.inits: list[tuple[str, bool]] = []
        self.fail = fail or {}
        names = ["any", "mpi", "ring"] + (["nccl"] if version >= "0.29" else [])
        self.valid = names + (["jaccl"] if version >= "0.30.1" else [])

    def init(self, strict: bool = False, backend: str = "any") -> FakeGroup:
        self.inits.append((backend, strict))
        if backend not in self.valid:
            raise ValueError(
                "[distributed] The only valid values for backend are 'any', 'mpi' and 'ring' but "
                f"'{backend}' was provided."
            )
        if backend in self.fail:
            raise RuntimeError(self.fail[backend])
        return FakeGroup()

    def is_available(self, backend: str = "any") -> bool:
        return backend in ("ring", "nccl", "jaccl")

    def _record(self, op: str, stream: Any) -> FakeArray:
        self.calls.append((op, stream))
        return FakeArray((8,))

    def all_sum(self, x: Any, *, group: Any = None, stream: Any = None) -> FakeArray:
        return self._record("all_sum", stream)

    def all_gather(self, x: Any, *, group: Any = None, stream: Any = None) -> FakeArray:
        return self._record("all_gather", stream)

    def sum_scatter(self, x: Any, *, group: Any = None, stream: Any = None) -> FakeArray:
        return self._record("sum_scatter", stream)

    def send(self, x: Any, dst: int, *, group: Any = None, stream: Any = None) -> FakeArray:
        return self._record("send", stream)

    def recv_like(self, x: Any, src: int, *, group: Any = None, stream: Any = None) -> FakeArray:
        return self._record("recv_like", stream)


def fake_mx(version: str, *, cuda: bool, fail: dict[str, str] | None = None) -> Any:
    return SimpleNamespace(
        __version__=version,
        cpu=CPU,
        gpu=GPU,
        distributed=FakeDistributed(version, fail=fail),
        cuda=SimpleNamespace(is_available=lambda: cuda),
    )


@pytest.fixture(autouse=True)
def clean_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "MLX_HOSTFILE",
        "MLX_RANK",
        "NCCL_HOST_IP",
        "NCCL_PORT",
        "MLX_WORLD_SIZE",
        "MLX_PORTABLE_DISTRIBUTED_BACKEND",
        "MLX_PORTABLE_CLUSTER_BACKENDS",
        "MLX_PORTABLE_HOSTFILE",
        "MLX_JACCL_COORDINATOR",
        "MLX_IBV_DEVICES",
    ):
        monkeypatch.delenv(name, raising=False)
    group_module._reset_for_tests()
    yield
    _mlx.set_override(None)
    group_module._reset_for_tests()
    from mlx_portable import activation

    activation._details.pop("distributed", None)
    activation._invalidate()


def on_rank(monkeypatch: pytest.MonkeyPatch, mx: Any, local: str) -> None:
    """Make this process a rank running ``local`` with the fake ``mx`` (no real activation)."""
    _mlx.set_override(mx)
    monkeypatch.setattr("mlx_portable.activation.activate", lambda **_: None)
    monkeypatch.setattr("mlx_portable.backends.current_backend", lambda: SimpleNamespace(name=local))
    monkeypatch.setattr("mlx_portable.install_hint.pip_extra_for_this_machine", lambda *a, **k: "cuda13")


def nccl_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "NCCL_HOST_IP": "10.0.0.1",
        "NCCL_PORT": "12345",
        "MLX_WORLD_SIZE": "2",
        "MLX_RANK": "0",
    }.items():
        monkeypatch.setenv(key, value)


def test_cuda_rank_launched_for_nccl_collectives_only_gets_nccl_simulated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mx = fake_mx("0.32.4", cuda=True)
    on_rank(monkeypatch, mx, "cuda")
    nccl_env(monkeypatch)
    group_module.init(needs_p2p=False, timeout=None)
    assert mx.distributed.inits == [("nccl", True)]
    from mlx_portable.activation import report

    detail = report().details["distributed"]
    assert detail["backend"] == "nccl" and detail["facts"]["launched"] == ["nccl"]
    # Collectives keep the caller's stream (NCCL runs them on the GPU) ...
    ops.all_sum(FakeArray((8,)), stream=GPU)
    ops.all_gather(FakeArray((8,)))
    assert mx.distributed.calls == [("all_sum", GPU), ("all_gather", None)]
    # ... point-to-point is refused with the remedy instead of MLX's failure at eval.
    with pytest.raises(DistributedError, match=r"\[nccl\] Send not supported.*needs_p2p=True"):
        ops.send(FakeArray((8,)), 1)


def test_cuda_rank_needing_p2p_refuses_an_nccl_only_launch_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    mx = fake_mx("0.32.4", cuda=True)
    on_rank(monkeypatch, mx, "cuda")
    nccl_env(monkeypatch)
    with pytest.raises(DistributedBackendUnavailableError, match=r"mlx\.launch --backend ring"):
        group_module.init(needs_p2p=True, timeout=None)
    assert mx.distributed.inits == []  # refused before touching MLX


def test_ring_on_a_cuda_rank_moves_gpu_requests_to_cpu_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    # CUDA has no Send/Recv kernels: "Send has no CUDA implementation."
    mx = fake_mx("0.32.4", cuda=True)
    on_rank(monkeypatch, mx, "cuda")
    monkeypatch.setattr(group_module, "_backend", "ring")
    x = FakeArray((8,))
    ops.send(x, 1, stream=GPU)
    ops.recv_like(x, 1, stream=GPU)
    ops.all_sum(x, stream=GPU)
    ops.all_gather(x)
    assert mx.distributed.calls == [("send", CPU), ("recv_like", CPU), ("all_sum", CPU), ("all_gather", CPU)]


def test_sum_scatter_native_on_nccl_emulated_on_ring_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    mx = fake_mx("0.32.4", cuda=True)
    on_rank(monkeypatch, mx, "cuda")
    monkeypatch.setattr(group_module, "_backend", "nccl")
    ops.sum_scatter(FakeArray((8,)), FakeGroup(0, 2))
    monkeypatch.setattr(group_module, "_backend", "ring")
    piece = ops.sum_scatter(FakeArray((8,)), FakeGroup(1, 2))
    assert [op for op, _ in mx.distributed.calls] == ["sum_scatter", "all_sum"]
    assert piece == ("slice", slice(4, 8))
    with pytest.raises(ValueError, match="divisible by the group size 3"):
        ops.sum_scatter(FakeArray((8,)), FakeGroup(0, 3))


def test_mlx_default_group_on_cuda_is_taken_for_nccl_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without init(): mx.distributed.init() ("any") tries NCCL first on CUDA.
    mx = fake_mx("0.32.4", cuda=True)
    _mlx.set_override(mx)
    nccl_env(monkeypatch)
    assert group_module.current_distributed_backend() == "nccl"
    with pytest.raises(DistributedError):
        ops.recv_like(FakeArray((8,)), 0)
    _mlx.set_override(fake_mx("0.28.0", cuda=True))
    assert group_module.current_distributed_backend() is None


def test_forced_nccl_on_mlx_028_names_the_upgrade_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    mx = fake_mx("0.28.0", cuda=True)
    on_rank(monkeypatch, mx, "cuda")
    nccl_env(monkeypatch)
    monkeypatch.setenv("MLX_PORTABLE_DISTRIBUTED_BACKEND", "nccl")
    with pytest.raises(DistributedBackendUnavailableError) as info:
        group_module.init(timeout=None)
    assert 'pip install -U "mlx[cuda13]>=0.30.1"' in str(info.value)
    assert mx.distributed.inits == []


def test_mlx_rejecting_a_name_becomes_an_upgrade_error_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    # Defensive path: should an mlx reject a name the version table allows.
    mx = fake_mx("0.32.4", cuda=True)
    mx.distributed.valid = ["any", "mpi", "ring"]
    on_rank(monkeypatch, mx, "cuda")
    nccl_env(monkeypatch)
    with pytest.raises(DistributedBackendUnavailableError, match=r"rejects the nccl backend.*upgrade mlx"):
        group_module.init(needs_p2p=False, timeout=None)


def test_jaccl_that_does_not_initialize_falls_back_to_ring_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    mx = fake_mx("0.32.4", cuda=False, fail={"jaccl": "Cannot initialize jaccl distributed backend."})
    on_rank(monkeypatch, mx, "metal")
    monkeypatch.setattr(sys, "platform", "darwin")
    for key, value in {
        "MLX_JACCL_COORDINATOR": "10.0.0.1:1",
        "MLX_IBV_DEVICES": "/tmp/x.json",
        "MLX_HOSTFILE": "/tmp/ring.json",
        "MLX_RANK": "0",
    }.items():
        monkeypatch.setenv(key, value)
    group_module.init(timeout=None)
    assert mx.distributed.inits == [("jaccl", True), ("ring", True)]
    from mlx_portable.activation import report

    detail = report().details["distributed"]
    assert detail["backend"] == "ring"
    assert detail["failed"] == {"jaccl": "Cannot initialize jaccl distributed backend."}


def test_mac_rank_started_for_nccl_by_a_cuda_launcher_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    # mlx.launch run on a CUDA host defaults to --backend nccl for every host.
    mx = fake_mx("0.32.4", cuda=False)
    on_rank(monkeypatch, mx, "metal")
    monkeypatch.setattr(sys, "platform", "darwin")
    nccl_env(monkeypatch)
    with pytest.raises(DistributedBackendUnavailableError) as info:
        group_module.init(timeout=None)
    assert "this rank runs on metal" in str(info.value)
    assert "mlx.launch --backend ring" in info.value.remedy


def test_cluster_description_checked_against_world_size_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    mx = fake_mx("0.32.4", cuda=True)
    on_rank(monkeypatch, mx, "cuda")
    nccl_env(monkeypatch)
    monkeypatch.setenv("MLX_PORTABLE_CLUSTER_BACKENDS", "cuda,cuda,cuda")
    with pytest.raises(ValueError, match=r"lists 3 ranks .* the launcher started 2"):
        group_module.init(needs_p2p=False, timeout=None)
    monkeypatch.setenv("MLX_PORTABLE_CLUSTER_BACKENDS", "cuda,metal")
    with pytest.raises(DistributedBackendUnavailableError, match="cluster is cuda,metal"):
        group_module.init(needs_p2p=False, timeout=None)
