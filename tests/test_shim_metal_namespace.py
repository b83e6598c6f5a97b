"""``metal_namespace``: ``mx.metal.*`` as older code calls it, off Metal, on every mlx.

mlx-lm <= 0.25's ``wired_limit`` reads
``mx.metal.device_info()["max_recommended_working_set_size"]``; without the
patch that raises off Metal on every version (``RuntimeError`` below 0.30.4,
``KeyError`` from there).  The rest of the namespace is pinned as it is.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from helpers.shim_helpers import run_script
from helpers.subproc import env_with_settings

import mlx_portable

mx = pytest.importorskip("mlx.core")

OFF_METAL = not mx.metal.is_available()
needs_no_metal = pytest.mark.skipif(not OFF_METAL, reason="Metal is available: mlx's own dict is returned")


pytestmark = pytest.mark.usefixtures("activated")


@needs_no_metal
def test_device_info_has_the_metal_keys_with_the_device_facts() -> None:
    info = mx.metal.device_info()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if mlx_portable.current_backend().name != "cpu":  # a CUDA GPU: its own memory
        memory = info["memory_size"]
        assert isinstance(memory, int) and memory > 0
    assert info["memory_size"] == info["max_recommended_working_set_size"] == memory
    assert info["max_buffer_length"] == memory
    assert isinstance(info["device_name"], str) and isinstance(info["architecture"], str)
    assert mlx_portable.report().patch("metal_namespace").status == "applied"


def test_the_rest_of_the_namespace_works_or_does_nothing(tmp_path: Any) -> None:
    metal = mx.metal
    for name in ("get_active_memory", "get_peak_memory", "get_cache_memory"):
        assert isinstance(getattr(metal, name)(), int)
    metal.reset_peak_memory()
    metal.clear_cache()
    previous = metal.set_cache_limit(1 << 30)
    metal.set_cache_limit(previous)
    previous = metal.set_memory_limit(1 << 40)
    metal.set_memory_limit(previous)
    if OFF_METAL:
        assert metal.set_wired_limit(1 << 30) == 0  # nothing is wired off Metal
        assert metal.start_capture(str(tmp_path / "trace.gputrace")) is None
        assert metal.stop_capture() is None


OLD_MLX_LM = """
import mlx.core as mx
{prelude}
# mlx-lm 0.24's generate.wired_limit, verbatim in what it asks of mlx:
max_rec_size = mx.metal.device_info()["max_recommended_working_set_size"]
old_limit = mx.set_wired_limit(max_rec_size)
mx.set_wired_limit(old_limit)
print("wired limit ok", max_rec_size > 0)
"""


@needs_no_metal
@pytest.mark.slow_every_mlx
def test_old_mlx_lm_wired_limit_with_and_without() -> None:
    with_it = run_script(OLD_MLX_LM.format(prelude="import mlx_portable"), env_with_settings())
    assert "wired limit ok True" in with_it.stdout, with_it.stdout[-2000:]
    without = run_script(OLD_MLX_LM.format(prelude=""), env_with_settings(MLX_PORTABLE="0")).stdout
    assert (
        "[metal::device_info] Cannot get device info without metal backend" in without
        or "KeyError: 'max_recommended_working_set_size'" in without
    ), without[-2000:]
