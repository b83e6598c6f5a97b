"""``cpu_blas``: an optimized BLAS/LAPACK under mlx's CPU backend (Linux).

Why: the Linux ``mlx-cpu`` wheels (every mlx of the matrix, 0.26.5 ..
0.32.4, x86_64 and aarch64) link ``libmlx.so`` against the reference
(netlib) ``libblas``/``liblapack`` they vendor in ``mlx_cpu.libs``.  Nothing
fails: everything is slow.  A float32 GEMM of 256x1024x2816 runs at about
4 GFLOP/s where NumPy's OpenBLAS on the same arrays reaches 50-300, and a
float32 model's prefill is 20-50x slower than it needs to be; ``mx.linalg``
(``cholesky``, ``inv``, ``svd``, ``eigh``, ``qr``, ``lu``) is slow the same way.

What: ``activate()`` (which imports ``mlx.core`` if it is not yet) points
libmlx's BLAS/LAPACK import slots at an optimized library: an installed or loaded Intel MKL, else
``scipy-openblas32`` (installed by the ``cpu`` extra), else a system
OpenBLAS or BLIS.  Its threads follow the process's CPU affinity and
``OPENBLAS_NUM_THREADS``/``MKL_NUM_THREADS``/``OMP_NUM_THREADS``.
``deactivate()`` writes the saved slot values back.  The report's
``details["cpu_blas"]`` names the library, its version, its thread count
and the symbols rewritten, or why nothing was done and what to do.  How and
why it is done this way: :mod:`mlx_portable.cpu_blas`.

When: Linux, the CPU build (the CUDA build runs its matmuls on the GPU and
is left alone; macOS uses Apple's Accelerate, nothing to do), every mlx
version; applied by ``activate()`` (the pytest plugin and the start-up
hook of ``MLX_PORTABLE_AUTOACTIVATE=1`` call it), not by ``import
mlx_portable``: surveying libmlx's relocations, loading the library and
rewriting the slots cost a few milliseconds that an import which may never
run a matmul should not pay (DESIGN.md's flow: the import applies only what
does not depend on the backend choice).
Upstream: nothing in mlx changes this; the ``libblas-bd8a282c.so.3.10.0``
(x86_64) and ``libblas-87cf96dc.so.3.10.0`` (aarch64) of the wheels are
netlib's reference BLAS 3.10.0 on every matrix version, and the imported
symbols are the same apart from the LAPACK routines the version uses
(``sgesvdx_`` up to 0.28.0, ``sgesdd_``/``cblas_cgemm`` from 0.29,
``cgeev_``/``cgesdd_`` from 0.30.6).
"""

from __future__ import annotations

import sys

from ..activation import note_detail
from ..registry.registry import Patch, obsolete, skip

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..cpu_blas.process import LoadedObject
    from ..cuda.elf import Relocations
    from ..registry.registry import PatchContext, Verdict

__all__ = ["PATCHES", "cpu_blas"]

ACCELERATE = "mlx on macOS calls Apple's Accelerate for BLAS/LAPACK: nothing to do"


def _set_detail(value: dict[str, object]) -> None:
    note_detail("cpu_blas", value)


def _not_applied(verdict: Verdict, state: str) -> Verdict:
    _set_detail({"state": state, "reason": verdict.reason})
    return verdict


#: Libraries only mlx's CUDA build needs (mlx-cuda-13 0.32.4's libmlx needs
#: ``libcublasLt.so.13`` and ``libcuda.so.1``; the CUDA 12 build libcublas too).
_CUDA_LIBRARIES = ("libcublas", "libcuda.so", "libcudart", "libnvrtc")


def _cuda_build(surveyed: list[tuple[LoadedObject, Relocations]]) -> bool:
    """Whether the loaded mlx is the CUDA build: its own libraries need CUDA's.

    Not whether a CUDA library is loaded: PyTorch or CuPy load them beside a
    CPU mlx.
    """
    return any(
        name.startswith(_CUDA_LIBRARIES)
        for _obj, relocations in surveyed
        for name in relocations.dynamic.needed
    )


def _check(ctx: PatchContext) -> Verdict | None:
    if sys.platform == "darwin":
        return _not_applied(obsolete(ACCELERATE), "accelerate")
    if not sys.platform.startswith("linux"):
        return _not_applied(
            skip(f"no BLAS binding on {sys.platform}: mlx keeps the BLAS it was built with"), "unsupported"
        )
    from ..cpu_blas import BindError, prepare
    from ..cpu_blas.binding import survey

    try:
        surveyed = survey(ctx.mx)
        if _cuda_build(surveyed):
            return _not_applied(
                skip("the CUDA build of mlx runs matmuls on the GPU: its CPU BLAS is left as it is"), "cuda"
            )
        ctx.state["plan"] = prepare(ctx.mx, surveyed)
    except BindError as exc:
        return _not_applied(skip(str(exc)), "unbound")
    return None


def _apply(ctx: PatchContext) -> None:
    from ..cpu_blas import Plan, bind, unbind

    plan = ctx.state.get("plan")
    binding = bind(ctx.mx, plan if isinstance(plan, Plan) else None)
    _set_detail(binding.to_dict())

    def revert(_ctx: PatchContext) -> None:
        changed = unbind()
        detail: dict[str, object] = {"state": "reference", "reason": "reverted by deactivate()"}
        if changed:
            detail["reason"] = f"reverted; left as someone else changed them since: {', '.join(changed)}"
        _set_detail(detail)

    ctx.on_revert(revert)


cpu_blas = Patch(
    name="cpu_blas",
    summary="mlx's CPU BLAS/LAPACK calls go to an optimized library (MKL, OpenBLAS), not the reference one",
    why=(
        "The Linux mlx-cpu wheels link the reference (netlib) BLAS/LAPACK: float32 matmuls and mx.linalg "
        "run at 1-3 % of the CPU's speed (about 4 GFLOP/s where NumPy reaches 50-300)."
    ),
    apply=_apply,
    check=_check,
    upstream="https://github.com/ml-explore/mlx/blob/main/mlx/backend/cpu/CMakeLists.txt",
)

PATCHES = (cpu_blas,)
