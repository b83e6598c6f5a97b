"""One-row float32 products (decoding) on the CPU, with the weight in column blocks.

Used by the ``decode_linear_cpu`` patch (its docstring says why).  The fact
this module is built on: mlx's CPU backend computes every float32 product
with ``cblas_sgemm``, also a single row against a weight (a decoding step of
``nn.Linear``), and a blocked BLAS packs the whole weight before it
multiplies.  For a one-row product that packing is most of the work: the
(1 x 1024) by (1024 x 32000) head of the benchmark model takes 15.9 ms
through OpenBLAS where NumPy's ``sgemv`` takes 4.5 ms.

OpenBLAS (x86_64 builds, ``SMALL_MATRIX_OPT``) skips the packing for small
products: M*N*K at most 100**3 (``sgemm_small_kernel_permit_*``).  Cutting
the weight (N, K) into blocks of ``n`` rows with n*K at most that bound, as
one batched product of (1, K) by B blocks of (K, n) (a free reshape of a
row-contiguous weight: no copy), sends every block to that kernel.

Measured on the 2-core AMD EPYC (AVX-512) of these figures, mlx 0.32.4,
OpenBLAS 0.3.34 bound by ``cpu_blas``, best of 20, milliseconds::

    weight (N x K)    plain   blocks of 32/64/128/256/320 (n*K <= 1e6)
    32000 x 1024      15.86    9.57  8.59  7.71  7.32  7.26
     4096 x 1024       1.72    0.43  0.36  0.34  0.33
     2816 x 1024       1.16    0.24  0.21  0.20  0.19
     1024 x 2816       0.46    0.25  0.22  0.22
     4096 x 4096       7.02    3.30  3.02  3.05   (256: 7.36, past the bound)
    14336 x 4096      26.85   12.06 11.76 11.35
     4096 x 14336     23.19   10.37  9.79

Blocks of the largest multiple of 32 within the bound (at most 512) are as
fast as any; 14336 x 4096 at 11.35 ms reads 20.7 GB/s, the machine's
memory bandwidth (23 GB/s).  Whether the blocked form is faster with the
BLAS this process has is *measured* once (:func:`blocked_rows_faster`), so
MKL (which does not pack a one-row product) or the reference BLAS keep
mlx's own call.

Numerics: every output is the same K-term dot product, in another
summation order: float32 rounding differences only.
"""

from __future__ import annotations

import mlx.core as mx

from .cpu_routes import MeasuredOnce, best_time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "BLOCK_BOUND",
    "assume_blocked_rows",
    "block_rows",
    "blocked_row_product",
    "blocked_rows_faster",
]

#: OpenBLAS's bound on M*N*K for its unpacked small-matrix kernels (x86_64).
BLOCK_BOUND = 1_000_000
_MAX_BLOCK = 512
_MIN_BLOCK = 32


def block_rows(n_out: int, k: int) -> int:
    """Rows of the weight per block for an (n_out, k) weight; 0 where blocks do not pay.

    The largest multiple of 32 (at most 512) whose block stays within
    :data:`BLOCK_BOUND`; 0 when that is under 32 rows, or when the whole
    weight is a single block (mlx's own call is then within the bound already).
    """
    if k < 1:
        return 0
    n = min(_MAX_BLOCK, BLOCK_BOUND // k) // _MIN_BLOCK * _MIN_BLOCK
    if n < _MIN_BLOCK or n_out <= n:
        return 0
    return n


def blocked_row_product(x: Any, w: Any, n: int) -> Any:
    """``x @ w.T`` for one row ``x`` (shape (..., K), size K) and a weight ``w`` (N, K).

    ``w`` is cut into blocks of ``n`` rows (the rows past the last whole
    block in one more product); the result has ``x``'s shape with the last
    dimension N, as ``x @ w.T`` has.
    """
    n_out, k = w.shape
    whole = n_out - n_out % n
    row = x.reshape(1, 1, k)
    main = w if whole == n_out else w[:whole]
    out = (row @ main.reshape(whole // n, n, k).swapaxes(1, 2)).reshape(whole)
    if whole != n_out:
        out = mx.concatenate([out, (row @ w[whole:].T).reshape(n_out - whole)])
    return out.reshape(*x.shape[:-1], n_out)


def _measure() -> bool:
    with mx.stream(mx.cpu):
        w = mx.ones((4096, 1024))
        x = mx.ones((1, 1024))
        mx.eval(w, x)
        n = block_rows(4096, 1024)
        plain = blocked = float("inf")
        for _ in range(3):  # interleaved: a load that comes and goes weighs on both alike
            plain = min(plain, best_time(lambda: x @ w.T, 2))
            blocked = min(blocked, best_time(lambda: blocked_row_product(x, w, n), 2))
    # OpenBLAS: 0.33 against 1.72 ms; a BLAS that does not pack a single row ties.
    return blocked < 0.75 * plain


_blocked = MeasuredOnce(_measure, "assume_blocked_rows")


def blocked_rows_faster(refresh: bool = False) -> bool:
    """Whether blocked one-row float32 products beat mlx's own call here (measured once).

    A (1 x 1024) by (1024 x 4096) product both ways, interleaved, best of 6:
    a few milliseconds, on the first one-row product of the process.
    """
    return _blocked.answer(refresh)


def assume_blocked_rows(value: bool | None) -> None:
    """Take ``value`` as :func:`blocked_rows_faster`'s answer (``None``: measure again on next use)."""
    _blocked.assume(value)
