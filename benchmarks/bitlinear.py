"""BitLinear off Metal: the token-count router against the former single kernel, side by side.

    python benchmarks/bitlinear.py [--tokens 1,2,4,6,8,12,16,32,128] [--rounds 5]
                                   [--dtype bfloat16|float32] [--quick]

BitNet b1.58 2B's largest projection (2560 -> 6912; bfloat16 activations as
in its checkpoints, or float32).  For each token count, in alternating order
within every round: ``before`` (what the fallback did for every input until
the router: the 2-bit ``quantized_matmul`` in float32), the router's two
prefill routes (``bf16 GEMM``: unpack into bfloat16, ``mx.addmm`` scaled
before its rounding; ``f32 BLAS``: unpack into float32, BLAS) and the router
itself (``bitlinear_matmul``, which takes the 2-bit kernel up to
``QMM_UP_TO`` tokens).  Prints medians over rounds and before/router with
its spread (> 1: faster now), then what the one-time re-pack and its
content key cost, and the memory each route holds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import mlx.core as mx

from mlx_portable.fallbacks import bitlinear


def _once(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    mx.eval(fn())
    return time.perf_counter() - start


def _median_ms(fn: Callable[[], Any], calls: int = 5) -> float:
    return statistics.median(_once(fn) for _ in range(calls)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", default="1,2,4,6,8,12,16,32,128")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--quick", action="store_true", help="a 4x smaller layer")
    args = parser.parse_args()
    mx.set_default_device(mx.cpu)
    dtype = getattr(mx, args.dtype)
    scale = 4 if args.quick else 1
    d_in, d_out = 2560 // scale, 6912 // scale
    packed = mx.random.randint(0, 256, ((d_out + 3) // 4, d_in)).astype(mx.uint8)
    weight_scale = mx.array([0.02], dtype=dtype)
    mx.eval(packed, weight_scale)

    class Layer:
        pass

    layer = Layer()
    q = bitlinear._quantized(layer, packed, d_out, 128)
    print(
        f"mlx {mx.__version__}, CPU; BitLinear {d_in} -> {d_out}, {args.dtype} input; router: 2-bit "
        f"qmm up to {bitlinear.QMM_UP_TO} token(s), then unpack + GEMM; medians of {args.rounds} rounds (ms)"
    )
    names = ("before", "bf16 GEMM", "f32 BLAS", "router")
    print(f"{'tokens':>6} " + " ".join(f"{n:>10}" for n in names) + f" {'before/router':>14} {'spread':>10}")
    for tokens in (int(t) for t in args.tokens.split(",")):
        x = mx.random.normal((tokens, d_in)).astype(dtype)
        mx.eval(x)

        def before(x: mx.array = x) -> mx.array:
            y = mx.quantized_matmul(
                x.astype(mx.float32), q.weight, q.scales, q.biases, transpose=True, group_size=128, bits=2
            )
            return (y * weight_scale.astype(mx.float32)[0]).astype(dtype)

        def bf16_gemm(x: mx.array = x) -> mx.array:
            xb = x.astype(mx.bfloat16)
            ws = weight_scale.astype(mx.bfloat16)
            return bitlinear._bf16_prefill(xb, packed, ws, d_out, False).astype(dtype)

        def f32_blas(x: mx.array = x) -> mx.array:
            w = bitlinear._ternary(packed, d_out, mx.float32)
            return ((x.astype(mx.float32) @ w.T) * weight_scale.astype(mx.float32)[0]).astype(dtype)

        def router(x: mx.array = x) -> mx.array:
            return bitlinear.bitlinear_matmul(
                x, packed, weight_scale, out_features=d_out, invert_weight_scales=False, cache_owner=layer
            )

        variants: dict[str, Callable[[], Any]] = {
            "before": before,
            "bf16 GEMM": bf16_gemm,
            "f32 BLAS": f32_blas,
            "router": router,
        }
        for fn in variants.values():
            mx.eval(fn())
        calls = 3 if tokens >= 32 else 7
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
        cells = " ".join(f"{statistics.median(times[n]) * 1e3:>10.1f}" for n in names)
        print(
            f"{tokens:>6} {cells} {statistics.median(ratios):>14.2f} {min(ratios):>4.2f}-{max(ratios):<4.2f}"
        )
    repack = _median_ms(lambda: bitlinear._repack(packed, d_out))
    key = _median_ms(lambda: bitlinear._content_key(packed, d_out, 128))
    mib = 2**20
    affine = (q.scales.nbytes + q.biases.nbytes) / mib
    print(
        f"re-pack once per layer: {repack:.1f} ms; its content key (SHA-1 of the packed bytes): "
        f"{key:.1f} ms ({repack / key:.0f}x cheaper)\n"
        f"resident per layer: packed {packed.nbytes / mib:.1f} MiB + re-packed {q.weight.nbytes / mib:.1f} "
        f"MiB (+ {affine:.1f} MiB of scales/biases, shared by every layer of this shape)\n"
        f"prefill transient: bf16 GEMM {d_in * d_out * 2 / mib:.1f} MiB of weights (+ "
        f"{d_in * d_out / mib:.1f} MiB of codes), f32 BLAS {d_in * d_out * 4 / mib:.1f} MiB (+ "
        f"{d_in * d_out / mib:.1f} MiB), freed when the call ends"
    )


if __name__ == "__main__":
    main()
