"""Hostfiles: only RFC 1123 host names and IP literals, on write and on read; no hang, no unbounded read.

mlx's own ``mlx.distributed_config`` ran a host named
``-oProxyCommand=...`` as a command; ``MLX_PORTABLE_HOSTFILE=/dev/zero`` read
until ``MemoryError`` and a FIFO hung.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from pathlib import Path

import pytest
from helpers import fuzz_profile  # noqa: F401  (loads the hypothesis profile)
from helpers.fuzz_profile import assert_clear
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlx_portable.distributed import hostfile
from mlx_portable.distributed.hostfile import Host, read_hostfile, write_hostfile
from mlx_portable.distributed.launch_env import cluster_backends

# The oracle, written independently of the implementation: RFC 1123 labels.
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"{_LABEL}(\.{_LABEL})*\.?")


def _valid_host(text: str) -> bool:
    user, at, host = text.rpartition("@")
    if at and not re.fullmatch(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*", user):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        # An IPv6 zone is an interface name or number, nothing a shell or ssh would read.
        zone = getattr(address, "scope_id", None)
        return zone is None or re.fullmatch(r"[A-Za-z0-9._-]{1,64}", zone) is not None
    # A name's last label is never all digits (999.1.1.1 and 1.2.3 are malformed IPv4 addresses).
    last = host.rstrip(".").rsplit(".", 1)[-1]
    return len(host.rstrip(".")) <= 253 and _HOSTNAME.fullmatch(host) is not None and not last.isdigit()


labels = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")
last_labels = st.from_regex(r"\A[a-z]([a-z0-9-]{0,10}[a-z0-9])?\Z")
good_names = st.one_of(
    st.tuples(st.lists(labels, max_size=3), last_labels).map(lambda t: ".".join([*t[0], t[1]])),
    st.from_regex(r"\Afe80::[0-9a-f]{1,4}%[a-z0-9]{1,8}\Z"),
    st.ip_addresses().map(str),
    st.tuples(st.from_regex(r"\A[a-z_][a-z0-9_.-]{0,8}\Z"), last_labels).map("@".join),
)
hostile_names = st.one_of(
    st.sampled_from(
        ("-oProxyCommand=touch /tmp/x", "-p2222", "h;reboot", "$(id)", "`id`", "a b", "h\n", "-")
    ),
    # IPv6 zones holding what ssh or a shell reads, and malformed IPv4 addresses.
    st.text(alphabet="-;|&$`()<>*?! \t\n'\"\\abc=", min_size=1, max_size=12).map(lambda z: f"fe80::1%{z}"),
    st.lists(st.integers(0, 999).map(str), min_size=1, max_size=5).map(".".join),
    st.text(max_size=40),
    st.text(alphabet="-;|&$`()<>*?! \t\n'\"\\abc.", max_size=12),
)


@given(name=st.one_of(good_names, hostile_names))
def test_host_names_follow_rfc_1123(name: str) -> None:
    if _valid_host(name):
        assert Host(name).ssh == name
        return
    with pytest.raises(ValueError) as info:
        Host(name)
    assert_clear(info.value, "not a usable ssh name")


@given(
    ips=st.one_of(
        st.text(max_size=20),
        st.lists(st.one_of(st.ip_addresses().map(str), st.text(max_size=15)), max_size=3),
    )
)
def test_ips_are_a_list_of_ip_literals(ips: object) -> None:
    try:
        host = Host("node1", ips)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        assert_clear(exc, "node1")
        assert isinstance(ips, str) or not all(_is_ip(i) for i in ips)  # type: ignore[union-attr]
    else:
        assert not isinstance(ips, str) and all(_is_ip(i) for i in host.ips)


def _is_ip(text: object) -> bool:
    try:
        ipaddress.ip_address(text)  # type: ignore[arg-type]
    except ValueError:
        return False
    return isinstance(text, str)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(good_names, min_size=1, max_size=3))
@pytest.mark.slow_every_mlx
def test_valid_hostfiles_round_trip(tmp_path: Path, names: list[str]) -> None:
    path = tmp_path / "hosts.json"
    write_hostfile(path, [Host(n, ("10.0.0.1",), "cpu") for n in names])
    assert [h.ssh for h in read_hostfile(path)] == names


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=hostile_names.filter(lambda n: not _valid_host(n)))
@pytest.mark.slow_every_mlx
def test_hostile_names_are_refused_on_write_and_on_read(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        write_hostfile(tmp_path / "w.json", [{"ssh": name, "ips": []}])
    path = tmp_path / "r.json"
    path.write_text(json.dumps([{"ssh": name, "ips": ["10.0.0.1"], "backend": "cpu"}]))
    with pytest.raises(ValueError) as info:
        read_hostfile(path)
    assert_clear(info.value, str(path))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_any_file_content_is_a_host_list_or_a_clear_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "any.json"
    path.write_bytes(data)
    try:
        hosts = read_hostfile(path)
    except ValueError as exc:
        assert_clear(exc, str(path))
    else:
        assert all(isinstance(h, Host) for h in hosts)


def test_deep_nesting_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match=r"nested too deeply|is at most"):
        read_hostfile(path)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["/dev/zero", "/dev/urandom", "fifo", "folder", "big"])
def test_devices_fifos_and_big_files_are_refused_at_once(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        path = str(tmp_path / "fifo.json")
        os.mkfifo(path)  # no writer: reading would block forever
    elif kind == "folder":
        path = str(tmp_path)
    elif kind == "big":
        path = str(tmp_path / "big.json")
        Path(path).write_text("[" + " " * (hostfile.MAX_HOSTFILE_BYTES + 10) + "]")
    else:
        path = kind
    with pytest.raises(ValueError) as info:
        cluster_backends({"MLX_PORTABLE_HOSTFILE": path})
    assert_clear(info.value, "MLX_PORTABLE_HOSTFILE")
