"""The frozen records that replaced the report's and probes' dataclasses behave as values."""

from __future__ import annotations

import copy
import pickle

import pytest

from mlx_portable.activation_report import ActivationReport, PatchEntry
from mlx_portable.backends.protocol import DeviceInfo, ProbeResult


def test_equality_hash_repr_and_immutability() -> None:
    a = ProbeResult("cpu", True, "always")
    assert a == ProbeResult("cpu", True, "always", "")
    assert a != ProbeResult("cpu", False, "always")
    assert hash(a) == hash(ProbeResult("cpu", True, "always"))
    assert "name='cpu'" in repr(a) and repr(a).startswith("ProbeResult(")
    with pytest.raises(AttributeError, match="immutable"):
        a.name = "gpu"  # type: ignore[misc]
    assert a.to_dict() == {"name": "cpu", "available": True, "reason": "always", "remedy": ""}


def test_pickle_and_copy_round_trip() -> None:
    report = ActivationReport(
        active=True,
        enabled=True,
        backend="cpu",
        backend_forced=False,
        probes=(ProbeResult("cpu", True, "ok"),),
        versions={"mlx": "0.32.4"},
        patches=(PatchEntry("x", "applied", "s", "r"),),
    )
    for clone in (pickle.loads(pickle.dumps(report)), copy.deepcopy(report), copy.copy(report)):
        assert clone == report
        assert clone.details == {}
    info = DeviceInfo("cpu", compute_capability=(9, 0), raw={"a": 1})
    assert pickle.loads(pickle.dumps(info)) == info
    assert info.to_dict()["compute_capability"] == [9, 0]
    assert hash(info) == hash(DeviceInfo("cpu", compute_capability=(9, 0), raw={"a": 1}))
