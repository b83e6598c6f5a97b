"""Real ranks over ring on 127.0.0.1: collectives, send/recv, failures, mlx.launch.

Every rank is a real interpreter with the installed mlx; every run is bounded
(``run_local`` kills what outlives its deadline) and cleaned up.
"""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from mlx_portable.distributed.check import DTYPES
from mlx_portable.distributed.local_cluster import RankResult, free_ports, run_local, write_ring_hostfile

pytestmark = pytest.mark.slow


def _mlx_version() -> Version:
    from mlx_portable import _mlx

    return Version(_mlx.mlx_version())


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _explain(results: list[RankResult]) -> str:
    return "\n".join(
        f"--- rank {r.rank} exit {r.returncode} after {r.seconds:.1f}s\n"
        f"{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
        for r in results
    )


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture(scope="module", params=[2, 4], ids=["2-ranks", "4-ranks"])
def cluster_check(request: pytest.FixtureRequest, python_env: dict[str, str]) -> list[dict[str, Any]]:
    """``mlx_portable.distributed.check`` run once per world size; one JSON line per rank."""
    size = int(request.param)
    results = run_local(["-m", "mlx_portable.distributed.check"], size, timeout=120, env=python_env)
    lines = [line for r in results for line in _json_lines(r.stdout)]
    assert len(lines) == size, _explain(results)
    return sorted(lines, key=lambda line: int(line["rank"]))


@pytest.mark.slow
def test_ring_group_is_formed(cluster_check: list[dict[str, Any]]) -> None:
    size = len(cluster_check)
    assert [line["rank"] for line in cluster_check] == list(range(size))
    for line in cluster_check:
        assert (line["size"], line["backend"], line["activated"]) == (size, "ring", True)
        assert line["reason"].startswith("ring over TCP works on every platform")


@pytest.mark.parametrize("dtype", DTYPES)
def test_collectives_and_send_recv_per_dtype(cluster_check: list[dict[str, Any]], dtype: str) -> None:
    for line in cluster_check:
        outcome = line["results"][dtype]
        assert set(outcome) == {"all_sum", "all_max", "all_min", "all_gather", "sum_scatter", "send_recv"}
        assert outcome == dict.fromkeys(outcome, "ok"), f"rank {line['rank']}: {outcome}"


ROUTING = """
    import json
    import mlx.core as mx
    import mlx_portable
    import mlx_portable.distributed as dist

    group = dist.init(needs_p2p=True)
    rank = group.rank()
    x = (mx.arange(4) + rank).astype(mx.bfloat16)
    out = {}
    try:  # MLX alone: a GPU stream (none on this wheel; no GPU kernel on Metal or CUDA)
        mx.eval(mx.distributed.all_sum(x, group=group, stream=mx.gpu))
        out["raw"] = "ok"
    except Exception as exc:
        out["raw"] = f"{type(exc).__name__}: {exc}"
    total = dist.all_sum(x, group, stream=mx.gpu)
    if rank == 0:
        moved = dist.send(x * 3, 1, group, stream=mx.gpu)
    else:
        moved = dist.recv((4,), mx.bfloat16, 0, group, stream=mx.gpu)
    dist.eval(total, moved)
    out.update(rank=rank, total=total.astype(mx.float32).tolist(), moved=moved.astype(mx.float32).tolist(),
               dtype=str(total.dtype), detail=mlx_portable.report().details["distributed"])
    print(json.dumps(out), flush=True)
"""


def test_gpu_stream_requests_are_routed_to_cpu(tmp_path: Path, python_env: dict[str, str]) -> None:
    results = run_local([str(_script(tmp_path, "routing.py", ROUTING))], 2, timeout=90, env=python_env)
    lines = sorted((line for r in results for line in _json_lines(r.stdout)), key=lambda d: d["rank"])
    assert len(lines) == 2, _explain(results)
    for line in lines:
        assert line["raw"] != "ok"  # what the wrapper prevents
        assert line["total"] == [1.0, 3.0, 5.0, 7.0]
        assert line["dtype"] == "mlx.core.bfloat16"
        assert line["detail"]["backend"] == "ring" and line["detail"]["size"] == 2
        assert line["detail"]["needs_p2p"] is True
    assert lines[1]["moved"] == [0.0, 3.0, 6.0, 9.0]


SINGLE = """
    import json, os
    import mlx_portable
    import mlx_portable.distributed as dist
    from mlx_portable.distributed import DistributedBackendUnavailableError

    out = {}
    group = dist.init()
    out["size"] = group.size()
    out["detail"] = mlx_portable.report().details["distributed"]
    try:
        dist.init(strict=True)
    except DistributedBackendUnavailableError as exc:
        out["strict"] = str(exc)
    for name in ("nccl", "jaccl", "gloo"):
        os.environ["MLX_PORTABLE_DISTRIBUTED_BACKEND"] = name
        try:
            dist.init()
            out[name] = "ok"
        except (ValueError, DistributedBackendUnavailableError) as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
    import mlx.core as mx
    try:  # what MLX alone says
        mx.distributed.init(strict=True, backend="nccl")
    except Exception as exc:
        out["raw_nccl"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out))
"""


def test_single_process_init_and_forced_backend_errors(tmp_path: Path, python_env: dict[str, str]) -> None:
    env = {
        k: v
        for k, v in python_env.items()
        if k not in ("MLX_HOSTFILE", "MLX_RANK", "MLX_PORTABLE_DISTRIBUTED_BACKEND")
    }
    done = subprocess.run(
        [sys.executable, str(_script(tmp_path, "single.py", SINGLE))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["size"] == 1
    assert out["detail"]["single_process"] is True and out["detail"]["backend"] == "ring"
    assert "init(strict=True) found no launcher environment" in out["strict"]
    assert out["gloo"].startswith(
        "ValueError: MLX_PORTABLE_DISTRIBUTED_BACKEND='gloo' is not a distributed backend"
    )
    if sys.platform != "darwin":
        assert "runs only on macOS 26.2 or later" in out["jaccl"]
    if _mlx_version() < Version("0.29.0"):
        # MLX alone: ValueError listing only any/mpi/ring; mlx-portable names the upgrade.
        assert "The only valid values for backend are 'any', 'mpi' and 'ring'" in out["raw_nccl"]
        assert "has no nccl backend (it came in mlx 0.29.0" in out["nccl"]
        assert 'pip install -U "mlx[' in out["nccl"]
    else:
        assert out["raw_nccl"] == "RuntimeError: Cannot initialize nccl distributed backend."
        assert "NCCL needs CUDA on every rank and this rank runs on cpu" in out["nccl"]


DYING = """
    import os
    import mlx.core as mx
    import mlx_portable.distributed as dist

    group = dist.init(needs_p2p=False)
    for step in range(100000):
        if group.rank() == int(os.environ["DIE_RANK"]) and step == 3:
            print("dying", flush=True)
            os._exit(3)
        dist.eval(dist.all_sum(mx.ones(1024), group))
"""


def test_a_dying_rank_makes_every_other_rank_fail_clearly(tmp_path: Path, python_env: dict[str, str]) -> None:
    script = _script(tmp_path, "dying.py", DYING)
    env = {**python_env, "DIE_RANK": "2", "MLX_PORTABLE_DISTRIBUTED_TIMEOUT": "3"}
    results = run_local([str(script)], 4, timeout=90, env=env)
    assert results[2].returncode == 3, _explain(results)
    for r in (results[0], results[1], results[3]):
        assert not r.timed_out and r.returncode != 0, _explain(results)
        if r.returncode == 124:  # the watchdog (mlx < 0.32.1 never fails the transfer)
            assert "made no progress for" in r.stderr and "MLX_PORTABLE_DISTRIBUTED_TIMEOUT" in r.stderr
        else:  # mlx >= 0.32.1 raises; mlx-portable names the rank
            assert "DistributedError: rank" in r.stderr and "a peer is gone" in r.stderr, _explain(results)
    neighbours = (results[1], results[3])
    if _mlx_version() >= Version("0.32.1"):
        assert all(r.returncode == 1 for r in neighbours), _explain(results)
    else:
        assert all(r.returncode == 124 for r in neighbours), _explain(results)


RAW_DYING = """
    import os
    import mlx.core as mx

    group = mx.distributed.init(strict=True, backend="ring")
    for step in range(100000):
        if group.rank() == 1 and step == 3:
            os._exit(3)
        mx.eval(mx.distributed.all_sum(mx.ones(1024), group=group))
"""


@pytest.mark.skipif(_mlx_version() >= Version("0.32.1"), reason="mlx >= 0.32.1 fails the transfer itself")
def test_without_the_watchdog_a_dead_peer_hangs_the_survivor(
    tmp_path: Path, python_env: dict[str, str]
) -> None:
    results = run_local([str(_script(tmp_path, "raw.py", RAW_DYING))], 2, timeout=6, env=python_env)
    assert results[1].returncode == 3
    assert results[0].timed_out, _explain(results)  # killed at the deadline: it hung


@pytest.mark.slow
def test_init_fails_instead_of_waiting_forever_for_a_missing_peer(
    tmp_path: Path, python_env: dict[str, str]
) -> None:
    hostfile = write_ring_hostfile(tmp_path / "ring.json", free_ports(2))
    env = {
        **python_env,
        "MLX_HOSTFILE": str(hostfile),
        "MLX_RANK": "0",
        "MLX_PORTABLE_DISTRIBUTED_TIMEOUT": "2",
    }
    script = _script(
        tmp_path, "lonely.py", "import mlx_portable.distributed as d\nd.init()\nprint('connected')\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0 and "connected" not in done.stdout
    assert "connecting the ring group did not finish within 2.0 s" in done.stderr


def _two_free_consecutive_ports() -> int:
    for _ in range(50):
        (port,) = free_ports(1)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


def test_mlx_launch_reads_a_hostfile_with_backends(tmp_path: Path, python_env: dict[str, str]) -> None:
    from mlx_portable.distributed import Host, launch_arguments, write_hostfile

    launcher = Path(sys.executable).parent / "mlx.launch"
    if not launcher.exists():
        pytest.skip("mlx.launch is not installed next to this interpreter")
    hostfile = write_hostfile(tmp_path / "cluster.json", [Host("127.0.0.1", ("127.0.0.1",), "cpu")] * 2)
    # An executable stand-in for the ``mlx-portable`` console script: every
    # launcher version runs it (old ones prefix the interpreter, new ones exec it).
    shim = tmp_path / "mlx-portable"
    shim.write_text(f"#!{sys.executable}\nimport sys\nfrom mlx_portable.cli import main\nsys.exit(main())\n")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    command = [
        str(launcher),
        *launch_arguments(hostfile),
        "--starting-port",
        str(_two_free_consecutive_ports()),
        "--",
        str(shim),
        "run",
        "mlx_portable.distributed.check",
        "--dtypes",
        "bfloat16",
    ]
    assert command[1:7] == [
        "--hostfile",
        str(hostfile),
        "--backend",
        "ring",
        "--env",
        "MLX_PORTABLE_CLUSTER_BACKENDS=cpu,cpu",
    ]
    proc = subprocess.Popen(
        command,
        env=python_env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    lines = sorted(_json_lines(stdout), key=lambda d: d["rank"])
    assert proc.returncode == 0 and len(lines) == 2, stdout + stderr
    for line in lines:
        assert line["ok"] and line["backend"] == "ring" and line["activated"]
        assert line["cluster"] == ["cpu", "cpu"] and line["cluster_source"] == "MLX_PORTABLE_CLUSTER_BACKENDS"


def test_run_local_kills_ranks_at_the_deadline(tmp_path: Path) -> None:
    script = _script(
        tmp_path, "sleep.py", "import os, time\nif os.environ['MLX_RANK'] == '1':\n    time.sleep(60)\n"
    )
    results = run_local([str(script)], 2, timeout=1.5)
    assert results[0].returncode == 0 and results[1].timed_out
