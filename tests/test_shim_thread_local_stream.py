"""``thread_local_stream``: mlx-lm >= 0.31.3 imports on mlx < 0.31.2 (real mlx-cpu wheels)."""

from __future__ import annotations

import importlib.util
import threading

import pytest
from helpers.shim_helpers import native, run_script

import mlx_portable

mx = pytest.importorskip("mlx.core")

NATIVE = native(mx, "new_thread_local_stream") and native(mx, "ThreadLocalStream")


def _needs_shim() -> None:
    if NATIVE:
        pytest.skip(f"mlx {mx.__version__} has new_thread_local_stream natively: nothing to shim")


IMPORT_GENERATE = """
import mlx_portable
import mlx_lm.generate
import sys
print("stream type:", type(sys.modules["mlx_lm.generate"].generation_stream).__name__)
"""


def test_mlx_lm_generate_imports_with_the_shim_and_fails_without(python_env: dict[str, str]) -> None:
    _needs_shim()
    if importlib.util.find_spec("mlx_lm") is None:
        pytest.skip("mlx-lm is not installed")
    with_shim = run_script(IMPORT_GENERATE, python_env)
    assert with_shim.returncode == 0, with_shim.stdout
    assert "stream type: Stream" in with_shim.stdout

    without = run_script(IMPORT_GENERATE, {**python_env, "MLX_PORTABLE": "0"})
    assert without.returncode != 0
    assert "AttributeError: module 'mlx.core' has no attribute 'new_thread_local_stream'" in without.stdout


def test_aliases_are_plain_streams_usable_from_another_thread() -> None:
    _needs_shim()
    mlx_portable.activate()
    try:
        assert mlx_portable.report().patch("thread_local_stream").status == "applied"
        assert mx.new_thread_local_stream is mx.new_stream
        assert mx.ThreadLocalStream is mx.Stream
        stream = mx.new_thread_local_stream(mx.cpu)
        assert isinstance(stream, mx.ThreadLocalStream)
        # mlx-lm evaluates this annotation at import.
        assert mx.Stream | mx.ThreadLocalStream is not None

        # Below 0.31.2 a stream is not bound to its thread: use it elsewhere.
        results: list[float] = []

        def work() -> None:
            with mx.stream(stream):
                results.append((mx.arange(4) * 2).sum().item())

        worker = threading.Thread(target=work)
        worker.start()
        worker.join(timeout=60)
        assert results == [12]
    finally:
        mlx_portable.deactivate()
    # deactivate() takes the added names away again.
    assert not hasattr(mx, "new_thread_local_stream")
    assert not hasattr(mx, "ThreadLocalStream")


def test_reported_obsolete_where_mlx_has_thread_local_streams() -> None:
    if not NATIVE:
        pytest.skip(f"mlx {mx.__version__} lacks thread-local streams: the shim applies here")
    original = mx.new_thread_local_stream
    mlx_portable.activate()
    try:
        entry = mlx_portable.report().patch("thread_local_stream")
        assert entry.status == "obsolete"
        assert "has new_thread_local_stream" in entry.reason
        assert mx.new_thread_local_stream is original
    finally:
        mlx_portable.deactivate()
