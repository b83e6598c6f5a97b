"""Host names that reach ``ssh``: IP literals and RFC 1123 names only.

Security finding: ``check_ssh_name`` accepted IPv6 scope ids holding spaces,
newlines or shell characters (``fe80::1%a b -oProxyCommand=id``: ``ssh``
reads the part after the space as an option), and ``999.1.1.1`` and
``1.2.3`` (not IPv4 addresses; ``inet_aton`` reads ``1.2.3`` as
``1.2.0.3``).  The rejected rows fail on the code before this fix (checked
against it); a real hostfile written with such a host is refused too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx_portable.distributed import hostfile

REJECTED = [
    "fe80::1%a b -oProxyCommand=id",
    "fe80::1%eth0\n-oProxyCommand=id",
    "fe80::1%$(id)",
    "fe80::1%a;id",
    "fe80::1%`id`",
    "fe80::1%",
    "999.1.1.1",
    "1.2.3",
    "256.256.256.256",
    "1234",
    "user@999.1.1.1",
    "-oProxyCommand=id",
    "host name",
]
ACCEPTED = [
    "fe80::1%eth0",
    "fe80::1%2",
    "::1",
    "10.0.0.1",
    "u@10.0.0.1",
    "node1",
    "gpu-3.lab.example.com",
    "x1.y2",
]


@pytest.mark.parametrize("name", REJECTED)
def test_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="is not a usable ssh name"):
        hostfile.check_ssh_name(name)


@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted(name: str) -> None:
    assert hostfile.check_ssh_name(name) == name


@pytest.mark.parametrize("ip", ["fe80::1%a b", "1.2.3", "999.1.1.1"])
def test_ips_with_the_same_faults_are_rejected(ip: str) -> None:
    with pytest.raises(ValueError, match="is not an IP address"):
        hostfile.check_ip(ip, host="node1")


def test_hostfile_with_a_hostile_zone_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hosts.json"
    path.write_text('[{"ssh": "fe80::1%a b -oProxyCommand=id", "ips": ["10.0.0.1"]}]\n')
    with pytest.raises(ValueError, match="not a usable ssh name"):
        hostfile.read_hostfile(str(path))
