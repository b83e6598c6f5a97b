"""The consumer check: every mlx name and keyword mlx-lm / mlx-vlm use works on this mlx, or is documented."""

from __future__ import annotations

import subprocess
import sys

import mlx.core as mx
import pytest
from helpers.subproc import env_with_settings
from packaging.version import Version

from tools.apidiff.consumers import load_consumers, merge, scan_source
from tools.apidiff.presence import accepts_keyword, present

SOURCE = """
import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten as tf
from mlx.core import fast

def f(x, model):
    mx.quantize(x, 64, 4, mode="mxfp4")
    fast.scaled_dot_product_attention(x, x, x, scale=1.0, sinks=None, **extra)
    nn.quantize(model, group_size=32)
    tf(model.parameters(), is_leaf=None)
    y = mx.float16
    x.astype(mx.bfloat16)   # a method through a value: not resolvable
"""


def _check(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.apidiff", "check"],
        env=env_with_settings(**env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_scan_source_follows_import_aliases_and_keywords() -> None:
    uses = scan_source(SOURCE)
    assert uses["mlx.core.quantize"] == {"mode"}
    assert uses["mlx.core.fast.scaled_dot_product_attention"] == {"scale", "sinks"}
    assert uses["mlx.nn.quantize"] == {"group_size"}
    assert uses["mlx.utils.tree_flatten"] == {"is_leaf"}
    assert "mlx.core.float16" in uses and "mlx.core.bfloat16" in uses
    assert not any(k.endswith("astype") for k in uses)
    record: dict[str, list[str]] = {}
    merge(record, "demo 1.0", uses)
    assert record["mlx.core.quantize(mode)"] == ["demo 1.0"]


def test_presence_reads_live_objects() -> None:
    assert present("mlx.core.fast.rope") is True
    assert present("mlx.core.no_such_name") is False
    assert present("mlx.core.add(stream)") is True
    assert present("mlx.core.add(no_such_keyword)") is False
    assert accepts_keyword(lambda a, **kw: a, "anything") is None


def test_checked_in_record_covers_every_scanned_consumer() -> None:
    users = {u for us in load_consumers().values() for u in us}
    for release in ("0.24", "0.26", "0.28", "0.30", "0.31", "0.32"):
        assert any(u.startswith(f"mlx-lm {release}.") for u in users), release
    assert any(u.startswith("mlx-vlm ") for u in users)


def test_softmax_precise_is_accepted_though_older_signatures_omit_it() -> None:
    # statuses.py lists softmax(precise) as not needed on this ground.
    out = mx.softmax(mx.array([1.0, 2.0]), axis=-1, precise=True)
    assert abs(float(out.sum()) - 1.0) < 1e-6


@pytest.mark.slow
def test_every_consumer_use_is_present_shimmed_or_documented() -> None:
    pytest.importorskip("mlx_lm")
    done = _check()
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "all consumer uses ok" in done.stdout


@pytest.mark.skipif(Version(mx.__version__) >= Version("0.31.2"), reason="no consumer use is missing here")
def test_the_check_fails_without_mlx_portable() -> None:
    done = _check(MLX_PORTABLE="0")
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    assert "mlx.core.new_thread_local_stream: shimmed by thread_local_stream" in done.stdout
