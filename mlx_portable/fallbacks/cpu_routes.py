"""Which matrix-product route is fastest on the CPU backend, and the routes themselves.

Used by the ``half_matmul_cpu`` and ``quantized_matmul_cpu`` patches (their
docstrings say why).  Two facts of mlx's CPU backend decide everything here:

* float32 products call ``cblas_sgemm``; with a real BLAS under mlx (the
  ``cpu_blas`` patch, or MKL/OpenBLAS preloaded by the user) that is 10-20x
  faster than mlx's own half-precision loop (``simd_gemm<T, float>``), which
  never calls a BLAS.  With the reference (netlib) BLAS that the Linux wheels
  vendor, the half-precision loop is the faster one (about 2x).
* ``quantized_matmul`` / ``gather_qmm`` run a scalar loop that, for half
  inputs, even sums in the half dtype; ``dequantize`` then one GEMM is 20x
  (prompt) to 14x (decode, weights dequantized once and kept) faster.

Which GEMM is present is *measured* once per process (:func:`fast_float32_gemm`:
a 64x512x512 product in float32 against the same product in bfloat16, a few
milliseconds), so the routes follow whatever BLAS the process has.

Measured on the 2-core Xeon (AVX-512) these figures come from, mlx 0.32.4,
weight 2816x1024 (an MLP projection of the benchmark model), milliseconds,
median of 7, machine loaded by other work (load average 6 on 2 cores)::

    rows M             1      2      4      8     16     32    128
    bf16 native     7.23  11.92  16.00  43.11  80.50 125.21 456.36
    bf16 via f32   10.60   8.00   7.98  12.03  16.58  20.26  25.39   (OpenBLAS, 1 thread)
    f16 native     23.73  17.78  22.87  50.18  85.73 204.04 654.78
    f16 via f32    16.57  13.42  13.38  24.92  19.83  22.78  51.98   (OpenBLAS, 1 thread)
    bf16 native    14.04  18.73  17.95  48.00  64.03 144.00 480.46
    bf16 via f32   12.28  18.39  53.44  87.08 144.00 288.00 1051.97  (reference BLAS)

The same, OpenBLAS bound by ``cpu_blas`` (one thread), minutes later::

    rows M             1      2      4      8     16     32    128
    bf16 native    12.23  13.98  24.43  39.61  72.33 170.21 521.89
    bf16 via f32   15.60  17.49  11.98  15.16  18.76  28.82  40.09
    f16 native     24.10  28.29  37.20  51.66  76.01 123.92 507.76
    f16 via f32    20.53  19.51  21.59  21.97  19.99  17.55  44.01

So with a fast float32 GEMM the crossover is 4 rows (:data:`HALF_CROSSOVER`:
the float32 route is 2x faster there in every run, and loses or ties at 1-2
rows for bfloat16, so decoding keeps mlx's loop); with the reference BLAS the
half loop stays (the float32 route only ties at M <= 2).

4-bit (group 64) weight 2816x1024, same machine and load, OpenBLAS 1 thread::

    rows M                          1       4     128
    bf16 quantized_matmul       53.67  203.99   ~6500 (linear in M)
    bf16 dequantize + matmul    26.59   28.78  361.19  (dequantize alone: 15-24)
    bf16 kept weights, bf16      8.85   13.42  335.07
    bf16 kept weights, f32 GEMM  3.76    5.29   17.47
    f32 quantized_matmul         6.59   22.33   ~700
    f32 dequantize + matmul     16.72   17.50   32.26
    f32 kept weights, f32 GEMM   4.00    4.04   17.31 (4.63 at M=4)

Hence: dequantize-then-GEMM whenever the rows reach :data:`QUANT_CROSSOVER`
(always for half inputs, from 4 rows for float32), and for decoding half
inputs the dequantized weights kept per weight array, in the input's dtype
(:class:`DequantizedCache`; then ``mx.matmul``, which takes the float32 GEMM
from 4 rows).  Kept float32 copies would decode faster still with one BLAS
thread (3.8 against 8.9 ms) but lose badly when the BLAS threads contend
(81 ms with 2 threads on the loaded machine) and take twice the memory.
The trade-off of keeping: memory, 16 bits a weight (3.6x a 4-bit weight's
4.5 bits with its scales; ``gather_qmm`` experts 32 bits, as mlx's CPU
``gather_mm`` computes only float32).  The cache is bounded (:func:`set_cache_limit`, default an eighth
of physical memory); it admits weights until full and never evicts by use
(decoding cycles through every layer in order, which an LRU would thrash):
weights that do not fit take the uncached route.  An entry goes when its
weight array is freed, on :func:`clear_cache`, and when the patch is
reverted.  A weight array changed in place (``w[...] = v``, which mlx-lm
never does to quantized weights) keeps its stale entry until
:func:`clear_cache`.

Numerics: the float32 route rounds once to the half dtype, as mlx's own CPU
half GEMM does (it sums in float32 and rounds once); dequantized values are
mlx's own ``dequantize`` in the input's dtype, so the quantized route differs
from mlx's kernel only in summation order (and in summing in float32 where
mlx's half kernel sums in the half dtype: more accurate, never less).
"""

from __future__ import annotations

import _thread
import os
import time

import mlx.core as mx

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = [
    "HALF_CROSSOVER",
    "QUANT_CROSSOVER",
    "DequantizedCache",
    "MeasuredOnce",
    "assume_fast_float32_gemm",
    "best_time",
    "cache",
    "clear_cache",
    "fast_float32_gemm",
    "half_route",
    "on_cpu",
    "rows_of",
    "set_cache_limit",
]

#: Rows (product of the leading dimensions of the left operand) from which a
#: half-precision product takes the float32 GEMM route, when a fast float32
#: GEMM is present.  Measured: see the module docstring.
HALF_CROSSOVER = {mx.bfloat16: 4, mx.float16: 4}

#: Rows from which a quantized product with no kept weights dequantizes and
#: multiplies rather than calling mlx's quantized kernel.
QUANT_CROSSOVER = {mx.bfloat16: 1, mx.float16: 1, mx.float32: 4}

_HALF = (mx.bfloat16, mx.float16)


def on_cpu(stream: Any) -> bool:
    """Whether an op given ``stream=`` runs on the CPU (``None``: the default device)."""
    if stream is None:
        device = mx.default_device()
    elif isinstance(stream, mx.Stream):
        device = stream.device
    else:
        device = stream
    kind = getattr(device, "type", device)  # a Device, or a bare mx.cpu / mx.gpu
    return isinstance(kind, type(mx.cpu)) and bool(kind == mx.cpu)


def rows_of(a: Any) -> int:
    """Rows of the left operand: its size over its last dimension."""
    last = a.shape[-1] if a.ndim else 1
    return int(a.size // last) if last else 0


def best_time(fn: Any, repeat: int = 5) -> float:
    """Seconds of the fastest of ``repeat`` evaluations of ``fn()`` (after one unmeasured)."""
    mx.eval(fn())
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        mx.eval(fn())
        best = min(best, time.perf_counter() - start)
    return best


class MeasuredOnce:
    """A yes/no speed question answered by measuring, once per process, on first use.

    ``answer(refresh=False)`` measures the first time (or with ``refresh``)
    and keeps the answer; ``assume(value)`` replaces it (``None``: measure
    again on next use).  A call made from inside the measurement (its own
    products going through the patched ops) answers ``False``: mlx's route.
    ``_thread``'s lock, not ``threading``'s (nor ``typing``): 3.5 ms less on
    ``activate()``.
    """

    __slots__ = ("_answer", "_lock", "_measure", "_measuring", "_name")

    def __init__(self, measure: Callable[[], bool], name: str) -> None:
        self._measure = measure
        self._name = name  # the public function that sets it, for its error message
        self._lock = _thread.RLock()
        self._answer: bool | None = None
        self._measuring = False

    def answer(self, refresh: bool = False) -> bool:
        with self._lock:
            if self._measuring:
                return False
            if self._answer is None or refresh:
                self._measuring = True
                try:
                    self._answer = self._measure()
                finally:
                    self._measuring = False
            return self._answer

    def assume(self, value: bool | None) -> None:
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"{self._name}() takes True, False or None, not {value!r}")
        with self._lock:
            self._answer = value


def _measure() -> bool:
    with mx.stream(mx.cpu):
        a = mx.random.normal((64, 512), key=mx.random.key(0))
        b = mx.random.normal((512, 512), key=mx.random.key(1))
        a16, b16 = a.astype(mx.bfloat16), b.astype(mx.bfloat16)
        mx.eval(a, b, a16, b16)
        single = half = float("inf")
        for _ in range(3):  # interleaved: a load that comes and goes weighs on both alike
            single = min(single, best_time(lambda: mx.matmul(a, b), 2))
            half = min(half, best_time(lambda: mx.matmul(a16, b16), 2))
    return single < half


_fast_gemm = MeasuredOnce(_measure, "assume_fast_float32_gemm")


def fast_float32_gemm(refresh: bool = False) -> bool:
    """Whether float32 products beat mlx's half-precision loop here (measured once).

    ``True`` when a 64x512x512 float32 product (best of 6) is faster than the
    same product in bfloat16: a real BLAS is 6-50x faster there, the reference
    BLAS about 0.5x, so the margin is wide on a loaded machine too.
    """
    return _fast_gemm.answer(refresh)


def assume_fast_float32_gemm(value: bool | None) -> None:
    """Take ``value`` as :func:`fast_float32_gemm`'s answer (``None``: measure again on next use).

    For tests, and for a process that knows its BLAS and wants the same
    routes on every run whatever the load at the moment of the measurement.
    """
    _fast_gemm.assume(value)


def half_route(dtype: Any, rows: int) -> bool:
    """Whether a ``dtype`` product of ``rows`` rows takes the float32 GEMM route."""
    crossover = HALF_CROSSOVER.get(dtype)
    return crossover is not None and rows >= crossover and fast_float32_gemm()


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


class DequantizedCache:
    """Dequantized weights kept per packed weight array, within a byte budget.

    Keyed by the packed array's identity (held weakly: an entry goes with its
    weight) plus the quantization parameters and the kept dtype.  Admits
    until full, evicts nothing by use (see the module docstring).
    """

    def __init__(self, limit: int) -> None:
        self._lock = _thread.allocate_lock()
        self._entries: dict[tuple[Any, ...], tuple[Any, int]] = {}
        self._finalizers: dict[int, Any] = {}
        self.limit = limit
        self.used = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...]) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self.hits += 1
        return entry[0]

    def admit(self, w: Any, key: tuple[Any, ...], value: Any) -> bool:
        """Keep ``value`` for ``w`` under ``key`` if it fits; whether it was kept."""
        size = int(value.nbytes)
        with self._lock:
            self.misses += 1
            if key in self._entries:
                return True
            if self.used + size > self.limit:
                return False
            import weakref  # here, not at the top: 0.5 ms of the first activate() in a bare process

            try:
                finalizer = weakref.finalize(w, self._drop_weight, id(w))
            except TypeError:  # not weakly referenceable: an identity key could be reused
                return False
            finalizer.atexit = False
            self._entries[key] = (value, size)
            self._finalizers.setdefault(id(w), []).append(finalizer)
            self.used += size
            return True

    def _drop_weight(self, weight_id: int) -> None:
        with self._lock:
            self._finalizers.pop(weight_id, None)
            for key in [k for k in self._entries if k[0] == weight_id]:
                self.used -= self._entries.pop(key)[1]

    def clear(self) -> None:
        with self._lock:
            for finalizers in self._finalizers.values():
                for finalizer in finalizers:
                    finalizer.detach()
            self._finalizers.clear()
            self._entries.clear()
            self.used = 0

    def __len__(self) -> int:
        return len(self._entries)


#: The process's cache of dequantized weights.
cache = DequantizedCache(_physical_memory() // 8)


def set_cache_limit(limit: int) -> int:
    """Set the dequantized-weight budget in bytes (0: keep none); return the previous one.

    Lowering it below what is kept empties the cache.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"set_cache_limit() takes a number of bytes >= 0, not {limit!r}")
    previous = cache.limit
    cache.limit = limit
    if cache.used > limit:
        cache.clear()
    return previous


def clear_cache() -> None:
    """Drop every kept dequantized weight."""
    cache.clear()
