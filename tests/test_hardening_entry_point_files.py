"""Plugin entry points come only from the distributions' own metadata, read safely.

Security findings: mlx-portable used to cache the entry points of each site
folder in ``$XDG_CACHE_HOME/mlx-portable/entry-points-*.txt``.  A folder
others can write (``XDG_CACHE_HOME`` in ``/tmp``) let them

- plant a line ``evil<TAB>os:abort<TAB>evilproj`` that ``activate()``
  imported and called;
- plant a symlink at the predictable temporary name ``<file>.<pid>.tmp``,
  whose target the cache write truncated;
- put a FIFO there (``activate()`` hung), invalid UTF-8 (every
  ``activate()``, ``run`` and ``doctor`` failed with ``UnicodeDecodeError``)
  or a link to ``/dev/zero`` (memory exhausted).

The cache is gone (it saved about 1.5 ms of the first ``activate()`` with 80
distributions installed); each test plants the file at the exact name the
old cache used, in a real child interpreter, and fails on the code before
the removal (checked against it).  The same classes of file in place of a
distribution's own ``entry_points.txt`` (a FIFO, ``/dev/zero``, invalid
UTF-8) must not hang, exhaust memory or fail either.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.plugin_site import plugin_site
from helpers.subproc import child_env

# The cache file names the removed cache used, for every site folder of the child.
_NAMES = """
import os, sys, zlib
from mlx_portable import distributions
group = "mlx_portable.patches"
cache = os.path.join(os.environ["XDG_CACHE_HOME"], "mlx-portable")
os.makedirs(cache, exist_ok=True)
by_site = {}
for project, (_, folder) in distributions.installed().items():
    by_site.setdefault(os.path.dirname(folder), []).append((project, folder))
names = []
for site, dists in by_site.items():
    mtime = os.stat(site).st_mtime_ns
    key = "\\0".join([group, site, str(mtime), *sorted(os.path.basename(f) for _, f in dists)])
    names.append(os.path.join(cache, f"entry-points-{zlib.crc32(key.encode()):08x}-{len(dists)}.txt"))
"""

_PLANTS = {
    "a planted line naming os:abort": (
        "for n in names:\n    open(n, 'w').write('evil\\tos:abort\\tevilproj\\n')\n"
    ),
    "a FIFO": "for n in names:\n    os.mkfifo(n)\n",
    "invalid UTF-8": "for n in names:\n    open(n, 'wb').write(b'\\xff\\xfe\\xfa bad\\tx:y\\tz\\n')\n",
    "a link to /dev/zero": "for n in names:\n    os.symlink('/dev/zero', n)\n",
}

_ACTIVATE = """
import mlx_portable
report = mlx_portable.activate()
print("activated", report.backend)
"""


def _limit_memory() -> None:
    # A reader that never stops on /dev/zero must fail here, not take the machine's memory.
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


def _run_child(code: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=_limit_memory,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child hung for {timeout} s")


@pytest.mark.parametrize("plant", list(_PLANTS))
@pytest.mark.slow_every_mlx
def test_planted_cache_file_has_no_effect(plant: str, tmp_path: Path) -> None:
    env = child_env(XDG_CACHE_HOME=str(tmp_path / "cache"))
    done = _run_child(_NAMES + _PLANTS[plant] + _ACTIVATE, env)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert "activated" in done.stdout
    assert "evil" not in done.stderr


def test_symlink_at_the_temporary_name_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    code = (
        _NAMES
        + f"for n in names:\n    os.symlink({str(victim)!r}, f'{{n}}.{{os.getpid()}}.tmp')\n"
        + _ACTIVATE
    )
    done = _run_child(code, child_env(XDG_CACHE_HOME=str(tmp_path / "cache")))
    assert done.returncode == 0, done.stderr[-2000:]
    assert victim.read_text() == "precious\n", "the symlink's target was truncated"


@pytest.mark.slow_every_mlx
def test_nothing_is_written_to_the_cache_folder(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    done = _run_child(_ACTIVATE, child_env(XDG_CACHE_HOME=str(cache)))
    assert done.returncode == 0, done.stderr[-2000:]
    assert not cache.exists() or not list(cache.rglob("*"))


_ENTRY_POINTS_FILES = {
    "a FIFO": lambda p: os.mkfifo(p),
    "a link to /dev/zero": lambda p: os.symlink("/dev/zero", p),
    "invalid UTF-8": lambda p: p.write_bytes(b"[mlx_portable.patches]\nbad = \xff\xfe:x\n"),
    "a folder": lambda p: p.mkdir(),
}


@pytest.mark.parametrize("kind", list(_ENTRY_POINTS_FILES))
@pytest.mark.slow_every_mlx
def test_distribution_entry_points_file_of_another_kind(kind: str, tmp_path: Path) -> None:
    """A distribution whose ``entry_points.txt`` is not a plain UTF-8 file: activation goes on."""
    site = plugin_site(tmp_path, "PATCHES = ()\n", "PATCHES", name="mp_odd_plugin")
    good = plugin_site(tmp_path / "good", "PATCHES = ()\n", "PATCHES", name="mp_good_plugin")
    target = site / "mp_odd_plugin-1.0.dist-info" / "entry_points.txt"
    target.unlink()
    _ENTRY_POINTS_FILES[kind](target)
    code = (
        "from mlx_portable import distributions\n"
        "eps = distributions.entry_points('mlx_portable.patches')\n"
        "print(sorted(e.dist for e in eps))\n" + _ACTIVATE
    )
    done = _run_child(code, child_env(site, good))
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert "mp-good-plugin" in done.stdout.splitlines()[0] or "mp_good_plugin" in done.stdout.splitlines()[0]
    assert "activated" in done.stdout
