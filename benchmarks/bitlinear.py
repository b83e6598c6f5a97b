"""BitLinear off Metal: the token-count router against the former single kernel, side by side.

    python benchmarks/bitlinear.py [--tokens 1,2,4,8,32,128] [--rounds 5] [--quick]

BitNet b1.58 2B's largest projection (2560 -> 6912, bfloat16 activations).
For each token count, in alternating order within every round: ``before``
(what the fallback did for every input: the 2-bit ``quantized_matmul``),
``qmm`` and ``dequant+BLAS`` (the two kernels the router picks from), the
router itself (``bitlinear_matmul``) and a dense bfloat16 matmul for
scale (8x the weight memory).  Prints medians over rounds and
before/router with its spread (> 1: faster now), then the one-time re-pack
of the weights, old formula against new.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import mlx.core as mx

from mlx_portable.fallbacks import bitlinear


def _old_repack(packed: mx.array, out_features: int) -> mx.array:
    """The re-pack as it was: every code widened to uint32, shifted and summed."""
    codes = bitlinear.unpack_ternary(packed, out_features)
    words = codes.astype(mx.uint32).reshape(out_features, packed.shape[1] // 16, 16)
    shifts = (2 * mx.arange(16, dtype=mx.uint32)).reshape(1, 1, 16)
    return (words << shifts).sum(axis=-1).astype(mx.uint32)


def _once(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    mx.eval(fn())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", default="1,2,4,8,32,128")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a 4x smaller layer")
    args = parser.parse_args()
    mx.set_default_device(mx.cpu)
    scale = 4 if args.quick else 1
    d_in, d_out = 2560 // scale, 6912 // scale
    packed = mx.random.randint(0, 256, ((d_out + 3) // 4, d_in)).astype(mx.uint8)
    weight_scale = mx.array([0.02], dtype=mx.bfloat16)

    class Layer:
        pass

    layer = Layer()
    q = bitlinear._quantized(layer, packed, d_out, 128)
    dense = ((bitlinear.unpack_ternary(packed, d_out).astype(mx.float32) - 1) * 0.02).astype(mx.bfloat16)
    mx.eval(dense)
    print(
        f"mlx {mx.__version__}, CPU; BitLinear {d_in} -> {d_out}; router: qmm up to "
        f"{bitlinear.DECODE_TOKENS} token(s), then dequant+BLAS; medians of {args.rounds} rounds (ms)"
    )
    names = ("before", "qmm", "dequant+BLAS", "router", "dense bf16")
    print(f"{'tokens':>6} " + " ".join(f"{n:>13}" for n in names) + f" {'before/router':>14} {'spread':>10}")
    for tokens in (int(t) for t in args.tokens.split(",")):
        x = mx.random.normal((tokens, d_in)).astype(mx.bfloat16)
        mx.eval(x)

        def qmm(x: mx.array = x) -> mx.array:
            y = mx.quantized_matmul(
                x.astype(mx.float32), q.weight, q.scales, q.biases, transpose=True, group_size=128, bits=2
            )
            return (y * 0.02).astype(mx.bfloat16)

        def dequant(x: mx.array = x) -> mx.array:
            w = mx.dequantize(q.weight, q.scales, q.biases, group_size=128, bits=2)
            return ((x.astype(mx.float32) @ w.T) * 0.02).astype(mx.bfloat16)

        def router(x: mx.array = x) -> mx.array:
            return bitlinear.bitlinear_matmul(
                x, packed, weight_scale, out_features=d_out, invert_weight_scales=False, cache_owner=layer
            )

        variants: dict[str, Callable[[], Any]] = {
            "before": qmm,
            "qmm": qmm,
            "dequant+BLAS": dequant,
            "router": router,
            "dense bf16": lambda x=x: x @ dense.T,
        }
        for fn in variants.values():
            mx.eval(fn())
        calls = 3 if tokens >= 32 else 9
        times: dict[str, list[float]] = {n: [] for n in names}
        ratios = []
        for r in range(args.rounds):
            per: dict[str, list[float]] = {n: [] for n in names}
            for i in range(calls):
                order = names if (r + i) % 2 == 0 else names[::-1]
                for name in order:
                    per[name].append(_once(variants[name]))
            for name in names:
                times[name].append(statistics.median(per[name]))
            ratios.append(times["before"][-1] / times["router"][-1])
        cells = " ".join(f"{statistics.median(times[n]) * 1e3:>13.2f}" for n in names)
        print(
            f"{tokens:>6} {cells} {statistics.median(ratios):>14.2f} {min(ratios):>4.2f}-{max(ratios):<4.2f}"
        )
    old = [_once(lambda: _old_repack(packed, d_out)) for _ in range(3)]
    new = [_once(lambda: bitlinear._repack(packed, d_out)) for _ in range(3)]
    assert mx.array_equal(_old_repack(packed, d_out), bitlinear._repack(packed, d_out)).item()
    print(
        f"re-pack once per layer: before {statistics.median(old) * 1e3:.1f} ms, now "
        f"{statistics.median(new) * 1e3:.1f} ms (identical words); resident per layer: packed "
        f"{packed.nbytes / 2**20:.1f} MiB + re-packed {q.weight.nbytes / 2**20:.1f} MiB + scales/biases "
        f"{(q.scales.nbytes + q.biases.nbytes) / 2**20:.1f} MiB; prefill transient float32 "
        f"{d_in * d_out * 4 / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()
