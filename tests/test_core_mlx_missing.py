"""mlx missing or broken: one ``MlxUnavailableError`` (an ``MlxPortableError``), no warning storm.

Before, ``activate()`` issued one ``PortabilityWarning`` per patch (7) and then
raised an error that no ``except MlxPortableError`` caught; ``report()``
claimed the ``cpu`` backend; an mlx whose import raised ``OSError`` or
``RuntimeError`` let that through raw from ``activate()`` and
``distributed.init()``.  Real child processes with a stand-in ``mlx`` package
first on the path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.subproc import env_with_settings

_PROBE = r"""
import json, warnings
warnings.simplefilter("always")
out = {}
with warnings.catch_warnings(record=True) as caught:
    import mlx_portable
    from mlx_portable import MlxPortableError
    for name, call in (
        ("activate", mlx_portable.activate),
        ("init", lambda: __import__("mlx_portable.distributed", fromlist=["init"]).init()),
    ):
        try:
            call()
            out[name] = None
        except MlxPortableError as exc:
            out[name] = ["MlxPortableError", isinstance(exc, ImportError), str(exc)]
        except BaseException as exc:
            out[name] = [type(exc).__name__, False, str(exc)]
    out["backend"] = mlx_portable.report().backend
out["warnings"] = [str(w.message) for w in caught]
print(json.dumps(out))
"""


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("raise ImportError('No module named mlx.core')", "No module named mlx.core. Reinstall it with"),
        ("raise OSError('libmlx.so: cannot open shared object file')", "install one with"),
        ("raise RuntimeError('[cuda] cudaMallocManaged failed')", "RuntimeError: [cuda]"),
    ],
)
@pytest.mark.slow_every_mlx
def test_broken_mlx_is_one_clear_error(tmp_path: Path, body: str, said: str) -> None:
    (tmp_path / "mlx").mkdir()
    (tmp_path / "mlx" / "__init__.py").write_text("")
    (tmp_path / "mlx" / "core.py").write_text(body + "\n")
    env = env_with_settings()
    parts = env["PYTHONPATH"].split(os.pathsep)
    env["PYTHONPATH"] = os.pathsep.join(
        [parts[0], str(tmp_path), *parts[1:]]
    )  # this checkout, then the stand-in
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("activate", "init"):
        kind, is_import_error, text = out[name]
        assert kind == "MlxPortableError" and is_import_error, out[name]
        assert said in text
    assert out["warnings"] == []
    assert out["backend"] is None
