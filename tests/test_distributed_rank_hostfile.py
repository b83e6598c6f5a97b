"""The ring backend's per-rank hostfile (exo's format): round trips, validation alike, a real ring.

exo writes, for each node, ``MLX_HOSTFILE`` as a JSON list with one
``"ip:port"`` per rank: ``"0.0.0.0:<port>"`` for itself, the neighbours'
addresses, and ``"198.51.100.1:0"`` for ranks it never connects to
(exo's ``get_mlx_ring_hosts_by_node``).  mlx's ring backend also reads a list
of addresses per rank.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlx_portable.distributed import read_hostfile, read_rank_hostfile, write_hostfile, write_rank_hostfile
from mlx_portable.distributed.hostfile import MAX_HOSTFILE_BYTES
from mlx_portable.distributed.local_cluster import free_ports

#: What exo writes for rank 0 of a three-node ring (compact, as pydantic dumps it).
EXO_RANK0 = '["0.0.0.0:52415","10.0.0.2:52415","198.51.100.1:0"]'


def test_exo_file_reads_and_writes_back_the_same(tmp_path: Path) -> None:
    src = tmp_path / "hosts_instance_0.json"
    src.write_text(EXO_RANK0, encoding="utf-8")
    ranks = read_rank_hostfile(src)
    assert ranks == [("0.0.0.0:52415",), ("10.0.0.2:52415",), ("198.51.100.1:0",)]
    again = write_rank_hostfile(tmp_path / "again.json", ranks)
    assert json.loads(again.read_text()) == json.loads(EXO_RANK0)  # one address per rank: exo's flat form
    assert read_rank_hostfile(again) == ranks


def test_several_addresses_per_rank_round_trip(tmp_path: Path) -> None:
    ranks = [("10.0.0.1:5000", "10.0.0.1:5001"), ("10.0.0.2:5000", "10.0.0.2:5001")]
    path = write_rank_hostfile(tmp_path / "h.json", [list(r) for r in ranks])
    assert json.loads(path.read_text()) == [list(r) for r in ranks]
    assert read_rank_hostfile(path) == ranks
    # Strings and lists mixed, as the ring backend allows.
    mixed = write_rank_hostfile(tmp_path / "m.json", ["10.0.0.1:5000", ["10.0.0.2:5000", "10.0.0.2:5001"]])
    assert read_rank_hostfile(mixed) == [("10.0.0.1:5000",), ("10.0.0.2:5000", "10.0.0.2:5001")]


#: Addresses a launcher hostfile refuses in "ips"; the per-rank file refuses them as "<ip>:5000".
BAD_IPS = ["gpu-box", "999.1.1.1", "", "10.0.0", "1.2.3.4 ", "-oProxyCommand=x"]


@pytest.mark.parametrize("ip", BAD_IPS)
def test_an_ip_one_format_refuses_the_other_refuses_too(tmp_path: Path, ip: str) -> None:
    launcher = tmp_path / "launcher.json"
    launcher.write_text(json.dumps([{"ssh": "host1", "ips": [ip]}]), encoding="utf-8")
    with pytest.raises(ValueError, match="is not an IP address"):
        read_hostfile(launcher)
    with pytest.raises(ValueError, match="is not an IP address"):
        write_hostfile(tmp_path / "w.json", [{"ssh": "host1", "ips": [ip]}])
    ring = tmp_path / "ring.json"
    ring.write_text(json.dumps([f"{ip}:5000"]), encoding="utf-8")
    with pytest.raises(ValueError, match="is not an IP address"):
        read_rank_hostfile(ring)
    with pytest.raises(ValueError, match="is not an IP address"):
        write_rank_hostfile(tmp_path / "w.json", [f"{ip}:5000"])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("10.0.0.1", 'is not "ip:port"'),
        ("10.0.0.1:", "the port must be a number from 0 to 65535"),
        ("10.0.0.1:65536", "the port must be a number from 0 to 65535"),
        ("10.0.0.1:-1", "the port must be a number from 0 to 65535"),
        ("10.0.0.1:5000 ", "the port must be a number from 0 to 65535"),
        ("::1:5000", "cannot parse an IPv6 address"),
        ("[::1]:5000", "cannot parse an IPv6 address"),
        (5000, 'expected an "ip:port" string or a non-empty list of them, got 5000'),
        ([5000], 'must be an "ip:port" string, not int'),
        ([], 'expected an "ip:port" string or a non-empty list'),
        ({"ssh": "x"}, "mlx.launch hostfile"),
    ],
)
def test_bad_entries_say_what_is_wrong(tmp_path: Path, entry: object, message: str) -> None:
    path = tmp_path / "ring.json"
    path.write_text(json.dumps(["10.0.0.9:5000", entry]), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_rank_hostfile(path)
    if not isinstance(entry, dict):
        with pytest.raises((TypeError, ValueError), match=message):
            write_rank_hostfile(tmp_path / "w.json", ["10.0.0.9:5000", entry])  # type: ignore[list-item]


def test_file_level_refusals_match_the_launcher_hostfile(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match="at least one rank"):
        read_rank_hostfile(empty)
    with pytest.raises(ValueError, match="at least one rank"):
        write_rank_hostfile(tmp_path / "w.json", [])
    with pytest.raises(ValueError, match="at least one host"):
        write_hostfile(tmp_path / "w.json", [])
    broken = tmp_path / "broken.json"
    broken.write_text("[", encoding="utf-8")
    for read in (read_hostfile, read_rank_hostfile):
        with pytest.raises(ValueError, match="is not valid JSON"):
            read(broken)
        with pytest.raises(ValueError, match="is a folder"):
            read(tmp_path)
    big = tmp_path / "big.json"
    big.write_text(" " * (MAX_HOSTFILE_BYTES + 1), encoding="utf-8")
    for read in (read_hostfile, read_rank_hostfile):
        with pytest.raises(ValueError, match="bytes; a hostfile is at most"):
            read(big)
    with pytest.raises(TypeError, match="per rank"):
        write_rank_hostfile(tmp_path / "w.json", "10.0.0.1:5000")


def test_each_reader_points_to_the_other(tmp_path: Path) -> None:
    ring = tmp_path / "ring.json"
    ring.write_text(EXO_RANK0, encoding="utf-8")
    with pytest.raises(ValueError, match=r"per-rank ring hostfile .* read_rank_hostfile\(\)"):
        read_hostfile(ring)
    launcher = write_hostfile(tmp_path / "launcher.json", [{"ssh": "host1", "ips": ["10.0.0.1"]}])
    with pytest.raises(ValueError, match=r"mlx.launch hostfile .* read_hostfile\(\)"):
        read_rank_hostfile(launcher)


RANK = """
import sys
import mlx.core as mx
group = mx.distributed.init(backend="ring", strict=True)
total = mx.distributed.all_sum(mx.array([float(group.rank() + 1)]), stream=mx.cpu)
print("rank", group.rank(), "of", group.size(), "sum", total.item())
"""


@pytest.mark.slow
def test_mlx_ring_backend_runs_on_a_written_file(tmp_path: Path) -> None:
    """Two real ring ranks on 127.0.0.1, ``MLX_HOSTFILE`` in exo's one-address-per-rank form."""
    ports = free_ports(2)
    path = write_rank_hostfile(tmp_path / "hosts.json", [f"127.0.0.1:{p}" for p in ports])
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RANK],
            env={**os.environ, "MLX_HOSTFILE": str(path), "MLX_RANK": str(rank), "MLX_PORTABLE": "0"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            outputs.append(out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert "rank 0 of 2 sum 3.0" in outputs[0], outputs
    assert "rank 1 of 2 sum 3.0" in outputs[1], outputs
