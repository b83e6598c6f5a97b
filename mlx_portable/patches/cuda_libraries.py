"""``cuda_libraries`` and ``cuda_home``: mlx's CUDA build outside the happy path.

Both run at ``import mlx_portable``, before ``mlx.core`` loads, and only on
Linux with a CUDA backend package (``mlx-cuda``, ``mlx-cuda-12``,
``mlx-cuda-13``) installed: that is found from the ``mlx_cuda*.dist-info``
folder names on ``sys.path``, so everywhere else the cost is a few directory
listings.

``cuda_libraries`` -- ``ImportError: libcublasLt.so.13: cannot open shared
object file: No such file or directory`` (or libnvrtc, libcudnn, libcufft,
libcusolver, libnccl): libmlx finds NVIDIA's pip libraries only through its
RPATH, relative to its own folder, so ``import mlx.core`` fails when the
``nvidia-*`` wheels live in another site-packages (``pip install --target``,
a system and a user site, a relocated or bundled app).  The patch follows
the loader's search for every NVIDIA library libmlx needs and preloads, with
``RTLD_GLOBAL`` and dependencies first, those it would not find, from the
``nvidia/*/lib`` folders of every site folder on ``sys.path`` of the backend
package's CUDA major.  A library found nowhere turns the later ``import
mlx.core`` failure into an error naming the library, its pip package and the
install command.  All mlx versions with a CUDA build (mlx-compat B16).

``cuda_home`` -- ``RuntimeError: Can not find locations of CUDA headers,
please set environment variable CUDA_HOME or CUDA_PATH.`` (up to 0.30.0:
``Environment variable CUDA_HOME or CUDA_PATH is not set.``) at the first
run-time compiled kernel, possibly mid-inference: mlx-cuda-12 never installs
the CUDA headers, and mlx before 0.30.1 never looks in the pip wheels.  When
``CUDA_HOME``/``CUDA_PATH`` are unset and mlx's own search would fail, the
patch sets ``CUDA_HOME`` to a folder holding the headers of the right CUDA
major (``nvidia/cu13``, ``nvidia/cu12``, ``nvidia/cuda_runtime`` of pip
wheels, ``/usr/local/cuda``).  All mlx versions with a CUDA build
(mlx-compat B17; ml-explore/mlx#3859).
"""

from __future__ import annotations

import os
import sys

from ..registry.registry import Patch, PatchContext, Verdict, obsolete, skip

__all__ = ["PATCHES", "cuda_home", "cuda_libraries"]

_LINUX = frozenset({"linux"})
_NO_BACKEND = "no CUDA backend package (mlx-cuda, mlx-cuda-12, mlx-cuda-13) is installed"


# -- cuda_libraries ---------------------------------------------------------------


def note_detail(key: str, value: object) -> None:
    """The report's detail line (``activation`` loaded only here: a CUDA package is installed)."""
    from ..activation import note_detail as note

    note(key, value)


def _libraries_check(ctx: PatchContext) -> Verdict | None:
    from ..versions import cuda_backend_package

    backend = cuda_backend_package()
    if backend is None:
        return skip(_NO_BACKEND)
    if "mlx.core" in sys.modules:
        earlier = ctx.state.get("verdict")  # decided at import, before mlx.core loaded
        if isinstance(earlier, Verdict):
            return earlier
        from ..cuda.plan import preloaded

        if preloaded():
            return obsolete(
                f"mlx.core is loaded, on the {len(preloaded())} NVIDIA libraries preloaded earlier"
            )
        return obsolete("mlx.core was imported before mlx_portable: its libraries are already loaded")
    from ..cuda.plan import make_plan

    plan = make_plan()
    ctx.state["plan"] = plan
    if not plan.preload and not plan.missing:
        note_detail("cuda_libraries", plan.to_dict())
        verdict = obsolete(f"libmlx finds the {len(plan.found)} NVIDIA libraries it needs by itself")
        ctx.state["verdict"] = verdict
        return verdict
    return None


def _explained(exc: ImportError) -> ImportError:
    """A failing ``import mlx.core`` as an error that says what to do.

    Installed by ``cuda_libraries``: the user's own ``import mlx.core`` (after
    ``import mlx_portable``) then fails with :class:`MlxUnavailableError` (an
    ``ImportError``) naming the missing library, the pip package and the
    command, instead of the bare ``libcublasLt.so.13: cannot open shared
    object file``.  The original error is chained as ``__cause__``.
    """
    from .._mlx import MlxUnavailableError
    from ..install_hint import explain_import_failure

    if isinstance(exc, MlxUnavailableError):
        return exc
    return MlxUnavailableError(explain_import_failure(exc), name="mlx.core")


def _libraries_apply(ctx: PatchContext) -> None:
    from ..cuda.plan import LoadPlan, make_plan, preload

    plan = ctx.state.pop("plan", None)
    if not isinstance(plan, LoadPlan):
        plan = make_plan()
    result = preload(plan)
    detail = plan.to_dict()
    detail["preloaded"] = result.loaded
    detail["preload_failed"] = result.to_dict()["failed"]
    if plan.missing:
        from ..cuda.status import missing_library_entries

        detail["missing"] = missing_library_entries(plan)
    note_detail("cuda_libraries", detail)
    # Explain a failing `import mlx.core` (missing library, mismatched versions).
    from ..import_hooks import add_import_error_hook, remove_import_error_hook

    add_import_error_hook("mlx.core", _explained)
    ctx.on_revert(lambda _ctx: remove_import_error_hook("mlx.core", _explained))


cuda_libraries = Patch(
    name="cuda_libraries",
    summary="preloads the NVIDIA pip libraries libmlx would not find (RTLD_GLOBAL), before mlx.core loads",
    why=(
        "ImportError: libcublasLt.so.13: cannot open shared object file, when the nvidia-* wheels "
        "are in another site-packages than mlx (libmlx finds them only through its RPATH)."
    ),
    apply=_libraries_apply,
    check=_libraries_check,
    when="before-mlx",
    platforms=_LINUX,
    upstream="https://github.com/ml-explore/mlx/issues/2500",
)


# -- cuda_home ----------------------------------------------------------------------


def _home_check(ctx: PatchContext) -> Verdict | None:
    from ..versions import cuda_backend_package

    backend = cuda_backend_package()
    if backend is None:
        return skip(_NO_BACKEND)
    from ..cuda.status import header_status

    status = header_status(backend)
    note_detail("cuda_home", status)
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        if variable in os.environ:
            note = "" if status["mlx_finds"] else f"; but mlx finds no CUDA headers there: {status['advice']}"
            from ..redaction import redact

            return skip(f"{variable} is set ({redact(os.environ[variable])}); left as it is{note}")
    if status["mlx_finds"]:
        return obsolete(f"mlx finds the CUDA headers itself, in {status['mlx_finds']}")
    if not status["chosen"]:
        return skip(f"no CUDA {backend.cuda_major} headers on this machine: {status['advice']}")
    ctx.state["folder"] = status["chosen"]
    return None


def _home_apply(ctx: PatchContext) -> None:
    chosen = ctx.state.pop("folder", None)
    if not isinstance(chosen, str):
        raise RuntimeError("cuda_home applied without a folder chosen by its check")
    ctx.set_env("CUDA_HOME", chosen)


cuda_home = Patch(
    name="cuda_home",
    summary="sets CUDA_HOME to a folder with the CUDA headers mlx's run-time compiler needs",
    why=(
        "RuntimeError: Can not find locations of CUDA headers, please set environment variable "
        "CUDA_HOME or CUDA_PATH. (at the first compiled kernel, possibly mid-inference)"
    ),
    apply=_home_apply,
    check=_home_check,
    when="before-mlx",
    platforms=_LINUX,
    upstream="https://github.com/ml-explore/mlx/issues/3859",
)

PATCHES = (cuda_libraries, cuda_home)
