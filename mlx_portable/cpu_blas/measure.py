"""Float32 GEMM speed of mlx next to NumPy's on the same arrays: the machine's own yardstick.

Used by ``mlx-portable check`` and ``benchmarks/cpu_blas.py``.  NumPy is
imported here, never on the ``import mlx_portable`` path.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["GEMM_SHAPE", "gemm_rates", "rate"]

#: ``(m, k, n)``: a 256-token prompt through a 1024 -> 2816 projection (a
#: small llama's MLP), the shape the CPU backend's speed is quoted at.
GEMM_SHAPE = (256, 1024, 2816)


def rate(run: Callable[[], object], flops: float, *, seconds: float = 0.3, calls: int = 2) -> float:
    """GFLOP/s of ``run`` (one warm-up call, then at least ``calls`` calls and ``seconds``), the best call."""
    run()
    best = float("inf")
    spent, done = 0.0, 0
    while done < calls or spent < seconds:
        start = time.perf_counter()
        run()
        took = time.perf_counter() - start
        best, spent, done = min(best, took), spent + took, done + 1
    return flops / best / 1e9


def gemm_rates(
    mx: Any, *, shape: tuple[int, int, int] = GEMM_SHAPE, device: Any = None, seconds: float = 0.3
) -> dict[str, Any]:
    """``{"shape", "device", "mlx_gflops", "numpy_gflops", "ratio", "max_rel_error"}`` for float32 ``a @ b``.

    NumPy multiplies the very arrays mlx does; the error is mlx's result
    against NumPy's in float64, relative to its largest magnitude.
    """
    import numpy as np

    m, k, n = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    device = mx.cpu if device is None else device
    stream = mx.default_stream(device) if hasattr(mx, "default_stream") else device
    xa, xb = mx.array(a), mx.array(b)
    mx.eval(xa, xb)
    flops = 2.0 * m * k * n

    def on_mlx() -> object:
        out = mx.matmul(xa, xb, stream=stream)
        mx.eval(out)
        return out

    mlx_rate = rate(on_mlx, flops, seconds=seconds)
    numpy_rate = rate(lambda: a @ b, flops, seconds=seconds)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    error = float(np.abs(np.array(on_mlx(), dtype=np.float64) - exact).max() / np.abs(exact).max())
    return {
        "shape": list(shape),
        "device": str(getattr(device, "type", device)).split(".")[-1],
        "mlx_gflops": round(mlx_rate, 2),
        "numpy_gflops": round(numpy_rate, 2),
        "ratio": round(mlx_rate / numpy_rate, 3),
        "max_rel_error": error,
    }
