"""A fast BLAS/LAPACK under mlx's CPU backend (the ``cpu_blas`` patch).

The Linux ``mlx-cpu`` wheels link ``libmlx.so`` against the reference
(netlib) ``libblas``/``liblapack`` they vendor in ``mlx_cpu.libs``: every
float32 matmul (``cblas_sgemm``) and every ``mx.linalg`` routine
(``sgetrf_``, ``spotrf_``, ``ssyevd_``, ...) runs the textbook triple loop,
at 1-3 % of what the CPU can do.

How the optimized library is put under mlx, and why this way
-------------------------------------------------------------
Two ways work.  (a) Loading a library that exports the unprefixed names
(MKL's ``libmkl_rt``, a system ``libopenblas.so.0``) with ``RTLD_GLOBAL``
*before* ``libmlx.so`` loads, so the loader binds libmlx's imports to it, as
the CUDA preload does.  (b) After ``mlx.core`` is loaded, rewriting
libmlx's import slots (the GOT entries its ``R_X86_64_JUMP_SLOT`` /
``R_X86_64_GLOB_DAT`` / ``R_AARCH64_*`` relocations filled) to the
optimized library's functions.

mlx-portable does (b) only:

- it works whichever of ``import mlx.core`` and ``import mlx_portable``
  comes first; (a) works only when mlx-portable is first, so (a) plus (b)
  would give two code paths, two behaviours, for one feature;
- it works with ``scipy-openblas32``, whose symbols are prefixed
  (``scipy_cblas_sgemm``) and so can never be found by the loader for
  libmlx, and which the ``cpu`` extra installs: the ``pip install
  mlx-portable[cpu]`` of the README gets the fast path with no step more;
- it changes libmlx only: (a) puts a library's names in the global scope,
  where they also capture every other library's ``cblas_*``/LAPACK imports
  loaded later (another framework's, ``scipy``'s own), behind their back;
- it is revertible: ``deactivate()`` writes the saved slot values back, and
  mlx computes with its reference library again; a preloaded library
  cannot be unloaded.

The cost is writing into a read-only (RELRO) page, with ``mprotect`` around
an aligned pointer store; where the kernel refuses, the report says so and
how to preload instead.  Before binding, the library multiplies a 2x2 matrix
through the very function pointer mlx will call.

Threads
-------
mlx's CPU backend runs each stream's work on one thread, which blocks in the
BLAS call: the library may use every CPU this process is allowed on
(``os.sched_getaffinity``: ``taskset``, cgroups, a Slurm allocation) without
oversubscribing.  ``OPENBLAS_NUM_THREADS`` (``MKL_NUM_THREADS`` for MKL,
``BLIS_NUM_THREADS`` for BLIS), then ``OMP_NUM_THREADS`` override that.

Where it does not apply, the report says why and what to do: macOS (mlx
uses Apple's Accelerate), the CUDA build (matmuls run on the GPU), an mlx
already calling an optimized BLAS (a conda build, an ``LD_PRELOAD``), an
unknown layout, no optimized library installed.
"""

from __future__ import annotations

from .binding import BindError, Binding, Plan, bind, current, prepare, unbind

__all__ = ["BindError", "Binding", "Plan", "bind", "current", "prepare", "unbind"]
