"""The backend decision (a pure function), the launcher environment and hostfiles.

No processes here: every cluster, mlx version and platform is described by
the facts handed to ``choose_backend``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mlx_portable.distributed import hostfile as hf
from mlx_portable.distributed.choice import ClusterFacts, choose_backend, mlx_has_backend, validate_request
from mlx_portable.distributed.errors import DistributedBackendUnavailableError
from mlx_portable.distributed.launch_env import (
    DEFAULT_TIMEOUT,
    ENV_BACKEND,
    ENV_CLUSTER,
    ENV_HOSTFILE,
    ENV_TIMEOUT,
    cluster_backends,
    launched_backends,
    parse_cluster,
    rank_and_size,
    timeout_seconds,
)

RING_ENV = {"MLX_HOSTFILE": "/tmp/h.json", "MLX_RANK": "0"}
NCCL_ENV = {"NCCL_HOST_IP": "10.0.0.1", "NCCL_PORT": "12345", "MLX_WORLD_SIZE": "2", "MLX_RANK": "0"}
JACCL_ENV = {"MLX_JACCL_COORDINATOR": "10.0.0.1:32323", "MLX_IBV_DEVICES": "/tmp/d.json", "MLX_RANK": "0"}


def facts(**kw: Any) -> ClusterFacts:
    base: dict[str, Any] = {"mlx_version": "0.32.4", "platform": "linux", "local": "cpu"}
    base.update(kw)
    if "launched" in base:
        base["launched"] = frozenset(base["launched"])
    if base.get("cluster") is not None:
        base["cluster"] = tuple(base["cluster"])
    return ClusterFacts(**base)


# --- automatic choice -------------------------------------------------------


def test_single_process_without_launcher_environment() -> None:
    choice = choose_backend(facts(local="cuda"))
    assert (choice.backend, choice.strict, choice.single_process) == ("ring", False, True)
    assert "single-process" in choice.reason


@pytest.mark.parametrize("local", ["metal", "cuda", "cpu"])
def test_ring_serves_every_device(local: str) -> None:
    choice = choose_backend(facts(local=local, launched={"ring"}))
    assert (choice.backend, choice.strict) == ("ring", True)
    assert local in choice.reason


def test_mixed_cluster_launched_for_ring_uses_ring() -> None:
    choice = choose_backend(
        facts(local="cuda", launched={"ring"}, cluster=["metal", "cuda", "cpu"]), needs_p2p=False
    )
    assert choice.backend == "ring"
    assert "metal,cuda,cpu" in choice.reason


def test_all_cuda_collectives_only_takes_nccl() -> None:
    choice = choose_backend(facts(local="cuda", launched={"nccl"}, cluster=["cuda", "cuda"]), needs_p2p=False)
    assert choice.backend == "nccl"
    assert "no point-to-point" in choice.reason


def test_nccl_only_launch_with_unknown_needs_takes_nccl_and_warns_in_reason() -> None:
    choice = choose_backend(facts(local="cuda", launched={"nccl"}))
    assert choice.backend == "nccl"
    assert "send/recv are unavailable" in choice.reason


def test_nccl_only_launch_refused_when_program_needs_p2p() -> None:
    with pytest.raises(DistributedBackendUnavailableError) as info:
        choose_backend(facts(local="cuda", launched={"nccl"}), needs_p2p=True)
    assert info.value.backend == "nccl"
    assert "[nccl] Send not supported" in str(info.value)
    assert "mlx.launch --backend ring" in info.value.remedy


@pytest.mark.parametrize("local", ["metal", "cpu"])
def test_nccl_launch_on_a_non_cuda_rank_is_an_error_with_remedy(local: str) -> None:
    # e.g. mlx.launch on a CUDA host defaults to NCCL and starts a Mac rank with it.
    with pytest.raises(DistributedBackendUnavailableError) as info:
        choose_backend(facts(local=local, launched={"nccl"}))
    message = str(info.value)
    assert f"this rank runs on {local}" in message
    assert "mlx.launch --backend ring" in message


def test_nccl_refused_for_a_mixed_cluster_even_on_a_cuda_rank() -> None:
    with pytest.raises(DistributedBackendUnavailableError, match="cluster is cuda,metal"):
        choose_backend(facts(local="cuda", launched={"nccl"}, cluster=["cuda", "metal"]), needs_p2p=False)


@pytest.mark.parametrize(
    ("needs_p2p", "backend", "fallbacks"),
    [(None, "ring", ("nccl",)), (False, "nccl", ("ring",)), (True, "ring", ())],
)
def test_ring_and_nccl_both_launched(
    needs_p2p: bool | None, backend: str, fallbacks: tuple[str, ...]
) -> None:
    choice = choose_backend(
        facts(local="cuda", launched={"ring", "nccl"}, cluster=["cuda"] * 2), needs_p2p=needs_p2p
    )
    assert (choice.backend, choice.fallbacks) == (backend, fallbacks)
    if needs_p2p:
        assert dict(choice.rejected)["nccl"].startswith("the program needs point-to-point")


@pytest.mark.parametrize("version", ["0.26.5", "0.27.1", "0.28.0"])
def test_nccl_launch_on_mlx_without_nccl_names_the_upgrade(version: str) -> None:
    with pytest.raises(DistributedBackendUnavailableError) as info:
        choose_backend(facts(mlx_version=version, local="cuda", launched={"nccl"}, cuda_extra="cuda13"))
    assert f"mlx {version} has no nccl backend (it came in mlx 0.29.0" in str(info.value)
    assert 'pip install -U "mlx[cuda13]>=0.30.1"' in info.value.remedy


@pytest.mark.parametrize("version", ["0.29.0", "0.29.4", "0.30.0", "0.31.2", "0.32.4"])
def test_nccl_available_from_029(version: str) -> None:
    assert choose_backend(facts(mlx_version=version, local="cuda", launched={"nccl"})).backend == "nccl"


def test_jaccl_on_macos_with_ring_fallback() -> None:
    choice = choose_backend(
        facts(
            mlx_version="0.30.6",
            platform="darwin",
            local="metal",
            launched={"jaccl", "ring"},
            cluster=["metal", "metal"],
        )
    )
    assert (choice.backend, choice.fallbacks) == ("jaccl", ("ring",))


def test_jaccl_refused_for_cluster_with_a_non_mac() -> None:
    choice = choose_backend(
        facts(platform="darwin", local="metal", launched={"jaccl", "ring"}, cluster=["metal", "cuda"])
    )
    assert choice.backend == "ring"
    assert "needs every rank on a Mac" in dict(choice.rejected)["jaccl"]


def test_jaccl_launch_on_linux_is_an_error() -> None:
    with pytest.raises(
        DistributedBackendUnavailableError,
        match=r"runs only on macOS 26\.2 or later, this rank runs on linux",
    ):
        choose_backend(facts(launched={"jaccl"}))


@pytest.mark.parametrize(
    ("version", "ok"), [("0.29.4", False), ("0.30.0", False), ("0.30.1", True), ("0.32.4", True)]
)
def test_jaccl_versions(version: str, ok: bool) -> None:
    f = facts(mlx_version=version, platform="darwin", local="metal", launched={"jaccl"})
    if ok:
        assert choose_backend(f).backend == "jaccl"
    else:
        with pytest.raises(
            DistributedBackendUnavailableError, match=re.escape('pip install -U "mlx>=0.30.1"')
        ):
            choose_backend(f)


def test_jaccl_not_built_here_is_skipped_for_ring() -> None:
    choice = choose_backend(
        facts(
            platform="darwin", local="metal", launched={"jaccl", "ring"}, built={"jaccl": False, "ring": True}
        )
    )
    assert choice.backend == "ring"
    assert "is_available('jaccl') is False" in dict(choice.rejected)["jaccl"]


def test_mpi_when_launched_by_mpi_and_ring_preferred_over_it() -> None:
    assert choose_backend(facts(launched={"mpi"})).backend == "mpi"
    choice = choose_backend(facts(launched={"mpi", "ring"}))
    assert (choice.backend, choice.fallbacks) == ("ring", ("mpi",))


# --- forced -----------------------------------------------------------------


def test_unknown_name_is_a_value_error_naming_variable_value_and_choices() -> None:
    with pytest.raises(ValueError) as info:
        choose_backend(facts(), "gloo", source=ENV_BACKEND)
    message = str(info.value)
    assert f"{ENV_BACKEND}='gloo'" in message
    for name in ("auto", "ring", "mpi", "nccl", "jaccl"):
        assert name in message


def test_names_are_case_and_space_insensitive() -> None:
    assert validate_request(" RING ") == "ring"
    assert choose_backend(facts(launched={"ring"}), "Auto").backend == "ring"


@pytest.mark.parametrize("version", ["0.26.5", "0.28.0"])
def test_forced_nccl_on_old_mlx_names_the_upgrade_command(version: str) -> None:
    with pytest.raises(DistributedBackendUnavailableError) as info:
        choose_backend(
            facts(mlx_version=version, local="cuda", launched={"nccl"}), "nccl", source=ENV_BACKEND
        )
    message = str(info.value)
    assert message.startswith(f"{ENV_BACKEND} asks for the nccl distributed backend")
    assert "The only valid values for backend are 'any', 'mpi' and 'ring'" in message
    assert 'pip install -U "mlx[cuda12]>=0.30.1"' in message


def test_forced_jaccl_on_linux() -> None:
    with pytest.raises(DistributedBackendUnavailableError, match=r"JACCL .* runs only on macOS"):
        choose_backend(facts(launched={"ring"}), "jaccl")


def test_forced_nccl_on_a_cpu_rank() -> None:
    with pytest.raises(DistributedBackendUnavailableError, match="this rank runs on cpu"):
        choose_backend(facts(launched={"nccl"}), "nccl")


def test_forced_nccl_with_p2p_needed() -> None:
    with pytest.raises(DistributedBackendUnavailableError, match="needs point-to-point"):
        choose_backend(facts(local="cuda", launched={"nccl"}), "nccl", needs_p2p=True)


def test_forced_backend_the_launcher_did_not_prepare() -> None:
    with pytest.raises(DistributedBackendUnavailableError) as info:
        choose_backend(facts(local="cuda", launched={"ring"}), "nccl")
    assert "relaunch with mlx.launch --backend nccl" in info.value.remedy


def test_forced_backend_without_launcher_is_a_single_process() -> None:
    choice = choose_backend(facts(), "mpi")
    assert (choice.backend, choice.forced, choice.strict, choice.single_process) == ("mpi", True, False, True)


def test_forced_backend_that_was_launched() -> None:
    choice = choose_backend(facts(local="cuda", launched={"ring", "nccl"}), "nccl", needs_p2p=False)
    assert (choice.backend, choice.forced, choice.strict) == ("nccl", True, True)


def test_no_usable_backend_summarizes_every_rejection() -> None:
    with pytest.raises(DistributedBackendUnavailableError) as info:
        choose_backend(facts(local="metal", launched={"nccl", "jaccl"}))
    message = str(info.value)
    assert "nccl: NCCL needs CUDA" in message and "jaccl: JACCL" in message


@pytest.mark.parametrize(
    ("name", "version", "has"),
    [
        ("ring", "0.26.5", True),
        ("mpi", "0.26.5", True),
        ("nccl", "0.28.0", False),
        ("nccl", "0.29.0", True),
        ("jaccl", "0.30.0", False),
        ("jaccl", "0.30.1", True),
        ("gloo", "0.32.4", False),
        ("nccl", "garbage", False),
    ],
)
def test_mlx_has_backend(name: str, version: str, has: bool) -> None:
    assert mlx_has_backend(name, version) is has


def test_choice_to_dict_is_json() -> None:
    choice = choose_backend(
        facts(platform="darwin", local="metal", launched={"jaccl", "ring"}, cluster=["metal", "cpu"])
    )
    data = json.loads(json.dumps(choice.to_dict()))
    assert data["backend"] == "ring" and "jaccl" in data["rejected"]


# --- launcher environment ---------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, set()),
        (RING_ENV, {"ring"}),
        ({"MLX_HOSTFILE": "/tmp/h.json"}, set()),  # no rank: not launched
        (NCCL_ENV, {"nccl"}),
        (JACCL_ENV, {"jaccl"}),
        ({"JACCL_COORDINATOR": "a:1", "JACCL_IBV_DEVICES": "/d"}, {"jaccl"}),
        ({"OMPI_COMM_WORLD_SIZE": "2"}, {"mpi"}),
        ({"PMI_SIZE": "4"}, {"mpi"}),
        ({**RING_ENV, **NCCL_ENV}, {"ring", "nccl"}),
    ],
)
def test_launched_backends(env: dict[str, str], expected: set[str]) -> None:
    assert launched_backends(env) == expected


def test_rank_and_size_from_ring_hostfile(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    path.write_text(json.dumps([["127.0.0.1:1"], ["127.0.0.1:2"], ["127.0.0.1:3"]]))
    assert rank_and_size({"MLX_HOSTFILE": str(path), "MLX_RANK": "2"}) == (2, 3)
    assert rank_and_size(NCCL_ENV) == (0, 2)
    assert rank_and_size({}) == (None, None)


def test_parse_cluster() -> None:
    assert parse_cluster(" Metal,cuda , cpu") == ("metal", "cuda", "cpu")
    with pytest.raises(ValueError, match=f"{ENV_CLUSTER}='metal,tpu'.*metal, cuda, cpu"):
        parse_cluster("metal,tpu")
    with pytest.raises(ValueError):
        parse_cluster("")


def test_cluster_from_env_variable_beats_hostfile(tmp_path: Path) -> None:
    path = hf.write_hostfile(
        tmp_path / "c.json", [hf.Host("a", ("1.1.1.1",), "metal"), hf.Host("b", ("1.1.1.2",), "cuda")]
    )
    assert cluster_backends({ENV_HOSTFILE: str(path)}) == (("metal", "cuda"), ENV_HOSTFILE)
    assert cluster_backends({ENV_HOSTFILE: str(path), ENV_CLUSTER: "cpu,cpu"}) == (
        ("cpu", "cpu"),
        ENV_CLUSTER,
    )
    assert cluster_backends({}) == (None, "")


def test_cluster_hostfile_without_backends_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.json"
    path.write_text(json.dumps([{"ssh": "a", "ips": ["1.1.1.1"]}]))
    with pytest.raises(ValueError, match='does not give every host a "backend"'):
        cluster_backends({ENV_HOSTFILE: str(path)})
    with pytest.raises(ValueError, match="cannot be read"):
        cluster_backends({ENV_HOSTFILE: str(tmp_path / "missing.json")})


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, DEFAULT_TIMEOUT), ("", DEFAULT_TIMEOUT), ("2.5", 2.5), ("0", None)]
)
def test_timeout_seconds(raw: str | None, expected: float | None) -> None:
    env = {} if raw is None else {ENV_TIMEOUT: raw}
    assert timeout_seconds(env) == expected


@pytest.mark.parametrize("raw", ["-1", "soon", "nan"])
def test_bad_timeout_names_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match=ENV_TIMEOUT):
        timeout_seconds({ENV_TIMEOUT: raw})


# --- hostfiles ----------------------------------------------------------------


def test_hostfile_round_trip_keeps_unknown_keys(tmp_path: Path) -> None:
    hosts: list[dict[str, Any]] = [
        {"ssh": "mac", "ips": ["192.168.1.10"], "backend": "metal", "rdma": [None, "rdma_en2"]},
        {"ssh": "gpu", "ips": ["192.168.1.11"], "backend": "cuda"},
    ]
    path = hf.write_hostfile(tmp_path / "cluster.json", hosts)
    assert json.loads(path.read_text()) == hosts  # a plain list: every mlx.launch reads it
    again = hf.read_hostfile(path)
    assert hf.cluster_of(again) == ("metal", "cuda")
    assert again[0].extra == {"rdma": [None, "rdma_en2"]}


def test_hostfile_object_layout_of_newer_mlx(tmp_path: Path) -> None:
    path = tmp_path / "new.json"
    path.write_text(
        json.dumps(
            {"backend": "ring", "envs": [], "hosts": [{"ssh": "a", "ips": ["1.1.1.1"], "backend": "cpu"}]}
        )
    )
    assert hf.cluster_of(hf.read_hostfile(path)) == ("cpu",)


def test_hostfile_rejects_bad_entries(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend='tpu'"):
        hf.Host("a", (), "tpu")
    with pytest.raises(ValueError, match='"ssh"'):
        hf.write_hostfile(tmp_path / "x.json", [{"ips": ["1.1.1.1"]}])
    with pytest.raises(ValueError, match="list of addresses"):
        hf.Host.from_json({"ssh": "a", "ips": "1.1.1.1"})
    with pytest.raises(ValueError, match="at least one host"):
        hf.write_hostfile(tmp_path / "x.json", [])
    (tmp_path / "bad.json").write_text('{"nohosts": 1}')
    with pytest.raises(ValueError, match="JSON list of hosts"):
        hf.read_hostfile(tmp_path / "bad.json")


def test_cluster_of_needs_every_backend() -> None:
    assert hf.cluster_of([hf.Host("a", (), "cpu"), hf.Host("b")]) is None
    assert hf.cluster_of([]) is None


@pytest.mark.parametrize(
    ("backends", "needs_p2p", "launcher"),
    [
        (["metal", "cuda", "cpu"], False, "ring"),
        (["cuda", "cuda"], None, "ring"),
        (["cuda", "cuda"], True, "ring"),
        (["cuda", "cuda"], False, "nccl"),
        (["metal", "metal"], False, "ring"),
    ],
)
def test_launch_arguments(tmp_path: Path, backends: list[str], needs_p2p: bool | None, launcher: str) -> None:
    path = hf.write_hostfile(
        tmp_path / "c.json", [hf.Host(f"h{i}", (f"10.0.0.{i}",), b) for i, b in enumerate(backends)]
    )
    args = hf.launch_arguments(path, needs_p2p=needs_p2p)
    assert args == [
        "--hostfile",
        str(path),
        "--backend",
        launcher,
        "--env",
        f"{ENV_CLUSTER}={','.join(backends)}",
    ]


def test_launch_arguments_without_backends_fall_back_to_ring(tmp_path: Path) -> None:
    path = hf.write_hostfile(tmp_path / "c.json", [hf.Host("a", ("1.1.1.1",))])
    assert hf.launch_arguments(path) == ["--hostfile", str(path), "--backend", "ring"]


def test_local_host_records_this_machines_backend() -> None:
    import mlx_portable

    host = hf.local_host("me", ["10.1.2.3"])
    assert (host.ssh, host.ips, host.backend) == ("me", ("10.1.2.3",), mlx_portable.current_backend().name)
    assert hf.local_host().ips  # an address was found (or 127.0.0.1 offline)


def test_jaccl_on_linux_with_old_mlx_blames_the_platform_not_the_version() -> None:
    with pytest.raises(DistributedBackendUnavailableError) as info:
        choose_backend(facts(mlx_version="0.26.5"), "jaccl")
    assert "runs only on macOS" in str(info.value) and "pip install" not in str(info.value)


def test_importing_the_package_loads_neither_mlx_nor_numpy(python_env: dict[str, str]) -> None:
    import subprocess
    import sys

    code = (
        "import sys, mlx_portable.distributed as d; "
        "print(d.init.__module__, 'mlx.core' in sys.modules, 'numpy' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=python_env, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["mlx_portable.distributed.group", "False", "False"]
