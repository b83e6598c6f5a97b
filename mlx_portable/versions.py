"""``mlx`` and its backend package at different versions: find it before the crash.

The ``mlx`` wheel is only the front end (``mlx/core.*.so``); ``libmlx.so``
comes from ``mlx-cpu``, ``mlx-cuda-12``/``-13`` (``mlx-cuda`` up to 0.30.0)
or ``mlx-metal``.  Both must be the same version, else ``import mlx.core``
fails with ``ImportError: ...core...so: undefined symbol: _ZN3mlx4core...``
(mlx-compat B3).  pip allows it easily: ``pip install -U mlx`` upgrades the
front end alone.

What is installed is read from the ``*.dist-info`` folder names on
``sys.path`` only (here for mlx's own packages at import;
:mod:`mlx_portable.distributions` for any project's version: the one reader,
no import of mlx, no ``importlib.metadata``); every version comparison goes
through ``packaging.version`` (:func:`parse_version`, imported when first
needed), so ``0.32.0rc1`` sorts below ``0.32.0`` everywhere, as in
the patch registry.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from packaging.version import Version

__all__ = [
    "SUPPORTED_MLX_VERSIONS",
    "BackendPackage",
    "backend_package_mismatch",
    "cuda_backend_package",
    "dist_infos",
    "installed_mlx_packages",
    "listdir",
    "parse_version",
    "real_site_folders",
    "site_dirs",
    "version_in",
]

#: The mlx versions of the compatibility matrix (noxfile.py), oldest first.
SUPPORTED_MLX_VERSIONS: tuple[str, ...] = (
    "0.26.5",
    "0.27.1",
    "0.28.0",
    "0.29.4",
    "0.30.0",
    "0.30.6",
    "0.31.2",
    "0.32.0",
    "0.32.4",
)


def backend_packages() -> dict[str, str]:
    """dist-info prefix -> project name of mlx's backend packages (from the backend table).

    Read when asked, not at import: the table is not needed on the import path.
    """
    from .backend_table import backend_distributions

    return {d.replace("-", "_"): d for d in backend_distributions()}


def parse_version(text: str) -> Version:
    """``packaging.version.Version`` of ``text`` (a local or unparsable tail is dropped)."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        head = text.split("+", 1)[0]
        digits = ".".join(p for p in head.split(".")[:3] if p.isdigit()) or "0"
        return Version(digits)


_OPS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _plain(text: str) -> tuple[int, ...] | None:
    """``(0, 31, 2)`` for a plain release ``0.31.2``; ``None`` for anything else (rc, dev, local, *)."""
    parts = text.strip().split(".")
    if not parts or not all(p.isdigit() for p in parts):
        return None
    nums = [int(p) for p in parts]
    while len(nums) > 1 and nums[-1] == 0:
        nums.pop()  # 0.32.0 == 0.32, as PEP 440 compares releases
    return tuple(nums)


def version_in(version: str, specifiers: str) -> bool:
    """Whether ``version`` satisfies the PEP 440 ``specifiers`` (pre-releases included).

    Plain releases against plain ``<``/``<=``/``>``/``>=``/``==``/``!=``
    clauses -- every range the built-in patches declare -- are compared as
    integer tuples; anything else (pre-releases, ``~=``, wildcards) goes to
    ``packaging.specifiers``, whose import and regular expressions cost
    several milliseconds of the first ``activate()``.
    """
    known = _answers.get((version, specifiers))
    if known is None:
        if len(_answers) >= 4096:  # a caller looping over versions: bounded all the same
            _answers.clear()
        known = _answers[version, specifiers] = _version_in(version, specifiers)
    return known


#: ``version_in``'s answers: import and ``activate()`` ask the same few dozen questions about one mlx.
_answers: dict[tuple[str, str], bool] = {}


def _version_in(version: str, specifiers: str) -> bool:
    mine = _plain(version)
    clauses = []
    for clause in specifiers.split(","):
        clause = clause.strip()
        op = clause[:2] if clause[:2] in _OPS else clause[:1]
        bound = _plain(clause[len(op) :]) if op in _OPS else None
        if mine is None or bound is None:
            from packaging.specifiers import SpecifierSet

            return SpecifierSet(specifiers).contains(version, prereleases=True)
        clauses.append((op, bound))
    return all(_OPS[op](mine, bound) for op, bound in clauses)


def listdir(path: str) -> list[str]:
    """``os.listdir`` that answers ``[]`` for a missing or unreadable folder."""
    try:
        return os.listdir(path)
    except OSError:
        return []


# The standard library's folders hold no wheels; skipping them halves the cost of a scan.
_STDLIB = os.path.dirname(os.__file__)
_SKIP = frozenset({_STDLIB, os.path.join(_STDLIB, "lib-dynload")})


def _real(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _untrusted_folders() -> set[str]:
    """The working directory and the running script's folder, resolved (symlinks followed).

    ``python -m`` puts the absolute working directory first on ``sys.path``,
    ``python script.py`` the script's folder, and an empty ``PYTHONPATH``
    entry (``PYTHONPATH=a:b:``) the working directory again: whoever can
    write there could plant a ``nvidia/cu13/lib/libcublasLt.so.13``.
    """
    found: set[str] = set()
    try:
        found.add(_real(os.getcwd()))
    except OSError:
        pass  # a deleted working directory: nothing can be planted there by path
    script = sys.argv[0] if sys.argv and isinstance(sys.argv[0], str) else ""
    if script and script not in ("-c", "-m") and os.path.isfile(script):
        found.add(_real(os.path.dirname(os.path.abspath(script))))
    return found


_real_sites: set[str] | None = None


def real_site_folders() -> set[str]:
    """The interpreter's own site folders, resolved: ``site.getsitepackages()`` (a venv's) and the user's.

    Computed once per process (they follow ``sys.prefix``, fixed at start).
    """
    global _real_sites
    if _real_sites is None:
        import site

        found: list[str] = []
        try:
            found.extend(site.getsitepackages())
        except AttributeError:
            pass  # an old virtualenv's site module
        user = getattr(site, "getusersitepackages", None)
        if user is not None:
            found.append(user())
        _real_sites = {_real(folder) for folder in found}
    return _real_sites


def site_dirs(path: list[str] | None = None) -> list[str]:
    """The absolute, existing folders of ``sys.path`` (or ``path``), each once, in order (stdlib left out).

    Left out as well, because files planted there would run: the ``''``
    entry of ``python -c`` and any relative entry, and every entry that is
    the working directory or the running script's folder however it is
    spelled (``python -m`` puts the absolute working directory first,
    ``python script.py`` the script's folder, an empty ``PYTHONPATH`` entry
    the working directory; ``/a/./b``, a trailing slash or a symlink to it
    are the same folder) -- unless that folder is one of the interpreter's
    own site folders (:func:`real_site_folders`).  So a planted
    ``./nvidia/cu13/lib/libcublasLt.so.13`` is never preloaded into this
    process (its constructor would run) nor put on a child's
    ``LD_LIBRARY_PATH`` (see ``cuda.layout``), and a planted
    ``*.dist-info/entry_points.txt`` never names a plugin.
    """
    seen: dict[str, None] = {}
    untrusted: set[str] | None = None
    real_sites: set[str] | None = None
    for entry in sys.path if path is None else path:
        if not isinstance(entry, str) or not os.path.isabs(entry):
            continue
        folder = os.path.normpath(entry)
        if folder in seen or folder in _SKIP or not os.path.isdir(folder):
            continue
        if untrusted is None:
            untrusted = _untrusted_folders()
        resolved = _real(folder)
        if resolved in untrusted:
            if real_sites is None:
                real_sites = real_site_folders()
            if resolved not in real_sites:
                continue
        seen[folder] = None
    return list(seen)


def dist_infos(names: list[str], prefix: str) -> list[tuple[str, str, str]]:
    """``(project prefix, version, entry)`` for each ``<prefix>*-<version>.dist-info`` in ``names``."""
    found = []
    for entry in names:
        if entry.startswith(prefix) and entry.endswith(".dist-info") and "-" in entry:
            project, _, rest = entry.partition("-")
            found.append((project, rest[: -len(".dist-info")], entry))
    return found


def _cuda_major(project: str) -> int:
    """``mlx-cuda-13`` -> 13; ``mlx-cuda`` (up to mlx 0.30.0) was built with CUDA 12."""
    tail = project.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 12


class BackendPackage:
    """An installed ``mlx-cuda*`` distribution."""

    __slots__ = ("cuda_major", "dist_info", "name", "site_dir", "version")

    def __init__(self, name: str, version: str, cuda_major: int, site_dir: str, dist_info: str) -> None:
        self.name = name
        self.version = version
        self.cuda_major = cuda_major
        self.site_dir = site_dir
        self.dist_info = dist_info

    def __repr__(self) -> str:
        return f"<BackendPackage {self.name} {self.version} (CUDA {self.cuda_major}) in {self.site_dir}>"

    def requires(self) -> list[str]:
        """``Requires-Dist`` lines of its METADATA (read on demand, not at import)."""
        from .regular_files import read_regular

        found: list[str] = []
        try:
            # A regular file only, bounded: a FIFO or /dev/zero there must not hang or fill memory.
            data = read_regular(os.path.join(self.dist_info, "METADATA"), 1 << 20)
        except OSError:
            data = b""
        for line in data.decode("utf-8", "replace").splitlines():
            if not line.strip():
                break  # end of the headers
            if line.startswith("Requires-Dist:"):
                found.append(line.split(":", 1)[1].strip())
        return found

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "cuda_major": self.cuda_major,
            "site_dir": self.site_dir,
        }


def cuda_backend_package(path: list[str] | None = None) -> BackendPackage | None:
    """The first ``mlx-cuda*`` distribution on ``sys.path``, or ``None`` (cheap: listings only).

    Here rather than in :mod:`mlx_portable.cuda.layout`: the ``cuda_libraries``
    check asks it at every ``import mlx_portable``, and on a machine without
    CUDA nothing else of ``cuda/`` is needed.
    """
    known: dict[str, str] | None = None
    for site in site_dirs(path):
        for project, version, entry in dist_infos(listdir(site), "mlx_cuda"):
            if known is None:  # the table only when there is a candidate: none on most machines
                from .backend_table import row

                known = {d.replace("-", "_"): d for d in row("cuda").distributions}
            name = known.get(project.lower())
            if name is not None:
                return BackendPackage(name, version, _cuda_major(name), site, os.path.join(site, entry))
    return None


def installed_mlx_packages(path: list[str] | None = None) -> dict[str, tuple[str, str]]:
    """project -> ``(version, site folder)`` for ``mlx`` and each backend package.

    The first on ``sys.path`` wins, as for imports.
    """
    found: dict[str, tuple[str, str]] = {}
    packages = backend_packages()
    for site in site_dirs(path):
        for project, version, _ in dist_infos(listdir(site), "mlx"):
            key = project.lower()
            name = "mlx" if key == "mlx" else packages.get(key)
            if name is not None and name not in found:
                found[name] = (version, site)
    return found


def _fix_command(backend: str, version: str) -> str:
    from .pip_hint import pip_command  # this interpreter's installer (uv venvs have no pip)

    if backend == "mlx-cuda" and parse_version(version) > parse_version("0.30.0"):
        # mlx-cuda stopped at 0.30.0; from 0.30.1 the CUDA 12 build is mlx-cuda-12.
        return (
            f"{pip_command('uninstall')} -y mlx-cuda && "
            f'{pip_command()} "mlx=={version}" "mlx-cuda-12=={version}"'
        )
    return f'{pip_command()} "mlx=={version}" "{backend}=={version}"'


def _pip(verb: str = "install") -> str:
    from .pip_hint import pip_command

    return pip_command(verb)


def backend_package_mismatch(path: list[str] | None = None) -> str | None:
    """A message with the exact ``pip`` command when mlx and its backend package differ, else ``None``.

    Also reports two backend packages installed in one site folder: they
    overwrite each other's ``mlx/lib/libmlx.so``.
    """
    found = installed_mlx_packages(path)
    front = found.get("mlx")
    if front is None:
        return None
    version, site = front
    problems = []
    for name, (other, other_site) in found.items():
        if name != "mlx" and other != version:
            where = "" if other_site == site else f" (in {other_site}; mlx is in {site})"
            problems.append(
                f"mlx {version} and {name} {other} are installed at different versions{where}: "
                f"import mlx.core fails with 'undefined symbol'. Fix: {_fix_command(name, version)}"
            )
    backends_here = [n for n, (_, s) in found.items() if n != "mlx" and s == site]
    if len(backends_here) > 1:
        keep = next((n for n in backends_here if n.startswith("mlx-cuda")), backends_here[0])
        drop = " ".join(n for n in backends_here if n != keep)
        problems.append(
            f"{' and '.join(backends_here)} are all installed in {site}; they overwrite each other's "
            f"{os.path.join('mlx', 'lib', 'libmlx.so')}. Keep one: {_pip('uninstall')} -y {drop} && "
            f'{_pip()} --force-reinstall --no-deps "{keep}=={found[keep][0]}"'
        )
    return "\n".join(problems) if problems else None
