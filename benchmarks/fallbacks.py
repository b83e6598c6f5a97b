"""Speed of mlx-portable's pure-MLX kernel fallbacks on the CPU, next to the nearest ops path.

    python benchmarks/fallbacks.py [--quick]

Each row times the fallback and the nearest ops-based way to compute the
same thing (what code would do without the fused kernel), side by side in
one run, and prints the ratio (> 1: the fallback is faster).  Sizes follow
the real models (BitNet b1.58 2B: 2560 -> 6912; Muse Spark-like fused norms;
a 32k vocabulary; Qwen3-Next-like gated delta heads), scaled down by
``--quick``.  Needs mlx-lm only for the rows that compare with its code.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from mlx_portable.fallbacks import bitlinear, gated_delta, losses, muse_kernels


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Best-of-``repeat`` wall time of ``fn`` (evaluated), in milliseconds."""
    mx.eval(fn())
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        mx.eval(fn())
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def row(name: str, fallback: Callable[[], Any], baseline: Callable[[], Any], label: str, repeat: int) -> None:
    a, b = timed(fallback, repeat), timed(baseline, repeat)
    print(f"{name:<44} {a:9.2f} ms  {label:<34} {b:9.2f} ms  x{b / a:5.2f}")


def bench_bitlinear(scale: int, repeat: int) -> None:
    d_in, d_out = 2560 // scale, 6912 // scale
    packed = mx.random.randint(0, 256, ((d_out + 3) // 4, d_in)).astype(mx.uint8)
    weight_scale = mx.array([0.02], dtype=mx.bfloat16)

    class Owner:
        pass

    owner = Owner()
    dense = ((bitlinear.unpack_ternary(packed, d_out).astype(mx.float32) - 1) * 0.02).astype(mx.bfloat16)
    mx.eval(dense)
    for tokens in (1, 32):
        x = mx.random.normal((tokens, d_in)).astype(mx.bfloat16)

        def fallback(x: mx.array = x) -> mx.array:
            return bitlinear.bitlinear_matmul(
                x, packed, weight_scale, out_features=d_out, invert_weight_scales=False, cache_owner=owner
            )

        def unpack_each_call(x: mx.array = x) -> mx.array:
            w = bitlinear.unpack_ternary(packed, d_out).astype(mx.float32) - 1
            return ((x.astype(mx.float32) @ w.T) * 0.02).astype(mx.bfloat16)

        name = f"BitLinear {d_in}->{d_out}, {tokens} tok"
        row(name, fallback, unpack_each_call, "unpack per call + matmul", repeat)
        row(name, fallback, lambda x=x: x @ dense.T, "dense bf16 nn.Linear (8x memory)", repeat)


def bench_muse(scale: int, repeat: int) -> None:
    for tokens in (1, 64):
        bench_muse_tokens(tokens, scale, repeat)


def bench_muse_tokens(tokens: int, scale: int, repeat: int) -> None:
    hq, hk, d, dim = 8, 2, 128, 4096 // scale
    qkvg = mx.random.normal((1, tokens, 2 * (hq + hk) * d)).astype(mx.bfloat16)

    def ops_qk(qkvg: mx.array = qkvg) -> Any:
        x = qkvg[..., : (hq + hk) * d].reshape(1, tokens, hq + hk, d)
        y = mx.fast.rms_norm(x, None, 1e-5)
        q = mx.fast.rope(
            y[..., :hq, :].transpose(0, 2, 1, 3) * 2.0, d, traditional=True, base=1e4, scale=1.0, offset=5
        )
        k = mx.fast.rope(
            y[..., hq:, :].transpose(0, 2, 1, 3), d, traditional=True, base=1e4, scale=1.0, offset=5
        )
        return q, k

    row(
        f"qk_norm_rope, {tokens} tok",
        lambda qkvg=qkvg: muse_kernels.qk_norm_rope(
            qkvg,
            n_heads=hq,
            n_kv_heads=hk,
            head_dim=d,
            eps=1e-5,
            query_scale=2.0,
            rope_base=1e4,
            offset=5,
        ),
        ops_qk,
        "mx.fast.rms_norm + mx.fast.rope",
        repeat,
    )
    x = mx.random.normal((1, hq, tokens, d)).astype(mx.bfloat16)
    gate = mx.random.normal((1, tokens, hq * d)).astype(mx.bfloat16)
    row(
        f"rms_norm_sigmoid_gate, {tokens} tok",
        lambda x=x, gate=gate: muse_kernels.rms_norm_sigmoid_gate(x, gate, eps=1e-5),
        lambda x=x, gate=gate: (
            mx.fast.rms_norm(x.transpose(0, 2, 1, 3), None, 1e-5).reshape(1, tokens, -1) * mx.sigmoid(gate)
        ),
        "mx.fast.rms_norm * sigmoid",
        repeat,
    )
    branch = mx.random.normal((1, tokens, dim)).astype(mx.bfloat16)
    stream = mx.random.normal((1, tokens, dim))
    alpha, beta = mx.full((dim,), 0.9), mx.full((dim,), 0.4)
    norm = nn.RMSNorm(dim)
    row(
        f"norm_add_norm, {tokens} tok",
        lambda b=branch, s=stream: muse_kernels.norm_add_norm(
            b, s, alpha=alpha, beta=beta, post_weight=None, post_eps=1e-5, next_norm=norm
        ),
        lambda b=branch, s=stream: (
            h := alpha * s + beta * mx.fast.rms_norm(b, None, 1e-5),
            mx.fast.rms_norm(h, norm.weight, 1e-5),
        ),
        "2 x mx.fast.rms_norm + add",
        repeat,
    )
    experts = mx.random.normal((tokens, 8, 1024 // scale)).astype(mx.bfloat16)
    weights = mx.random.uniform(shape=(tokens, 8))
    nw = mx.ones((1024 // scale,))
    row(
        f"post_expert_norm_combine, {tokens} tok",
        lambda e=experts, w=weights: muse_kernels.post_expert_norm_combine(e, w, norm_weight=nw, eps=1e-5),
        lambda e=experts, w=weights: (mx.fast.rms_norm(e * nw, None, 1e-5) * w[..., None]).sum(axis=-2),
        "mx.fast.rms_norm + weighted sum",
        repeat,
    )
    logits = mx.random.normal((tokens, 256))
    bias = mx.zeros((256,))

    def ops_routing(logits: mx.array = logits) -> Any:
        score = mx.sigmoid(logits)
        inds = mx.argpartition(-(score + bias), kth=7, axis=-1)[..., :8]
        w = mx.take_along_axis(score, inds, axis=-1)
        return inds, w / w.sum(axis=-1, keepdims=True)

    row(
        f"expert_routing 256 experts top 8, {tokens} tok",
        lambda logits=logits: muse_kernels.expert_routing(
            logits, bias, top_k=8, multiplier=1.0, score_eps=1e-15, route_scale=1.0
        ),
        ops_routing,
        "sigmoid + argpartition (unordered)",
        repeat,
    )


def bench_losses(scale: int, repeat: int) -> None:
    vocab = 32000 // scale
    q = mx.random.normal((16, vocab)).astype(mx.bfloat16)
    p = mx.random.normal((16, vocab)).astype(mx.bfloat16)

    def lm_js(q: mx.array = q, p: mx.array = p) -> mx.array:
        # mlx-lm 0.32.2's non-Metal js_div_loss, in the logits' dtype.
        lp = p - mx.logsumexp(p, axis=-1, keepdims=True)
        lq = q - mx.logsumexp(q, axis=-1, keepdims=True)
        lm = lp + mx.log(1 + mx.exp(lq - lp)) - mx.log(2).astype(q.dtype)
        kl_p = nn.losses.kl_div_loss(lm, lp, axis=-1, reduction="none")
        kl_q = nn.losses.kl_div_loss(lm, lq, axis=-1, reduction="none")
        return 0.5 * (kl_p + kl_q)

    def lm_kl(q: mx.array = q, p: mx.array = p) -> mx.array:
        return nn.losses.kl_div_loss(
            q - mx.logsumexp(q, axis=-1, keepdims=True),
            p - mx.logsumexp(p, axis=-1, keepdims=True),
            axis=-1,
            reduction="none",
        )

    row(
        f"kl_div_loss 16 x {vocab} bf16",
        lambda: losses.kl_div_loss(q, p),
        lm_kl,
        "mlx-lm ops path (bf16 math)",
        repeat,
    )
    row(
        f"js_div_loss 16 x {vocab} bf16",
        lambda: losses.js_div_loss(q, p),
        lm_js,
        "mlx-lm ops path (bf16 math)",
        repeat,
    )
    grad_fb = mx.grad(lambda a: losses.js_div_loss(a, p).astype(mx.float32).sum())
    grad_lm = mx.grad(lambda a: lm_js(a, p).astype(mx.float32).sum())
    row(
        f"grad js_div_loss 16 x {vocab} bf16",
        lambda: grad_fb(q),
        lambda: grad_lm(q),
        "mlx-lm ops path (bf16 math)",
        repeat,
    )


def bench_gated_delta(scale: int, repeat: int) -> None:
    try:
        from mlx_lm.models.gated_delta import gated_delta_ops
    except Exception as exc:  # mlx-lm missing, or not importable on this mlx
        print(f"gated delta: mlx-lm's gated_delta_ops unavailable ({type(exc).__name__}: {exc})")
        return
    for steps in (1, 16, 128 // scale, 512 // scale):
        bench_gated_delta_steps(gated_delta_ops, steps, repeat)


def bench_gated_delta_steps(gated_delta_ops: Any, steps: int, repeat: int) -> None:
    hk, hv, dk, dv = 4, 8, 128, 128
    k = mx.random.normal((1, steps, hk, dk))
    k = k / mx.linalg.norm(k, axis=-1, keepdims=True)
    q = mx.random.normal((1, steps, hk, dk)) * dk**-0.5
    v = mx.random.normal((1, steps, hv, dv))
    g = mx.random.uniform(0.5, 1.0, (1, steps, hv))
    beta = mx.random.uniform(0.0, 1.0, (1, steps, hv))
    state = mx.zeros((1, hv, dv, dk))
    name = f"gated delta chunked, {steps} tok ({hv} heads 128x128)"
    row(
        name,
        lambda q=q, k=k, v=v, g=g, b=beta: gated_delta.gated_delta_chunked(q, k, v, g, b, state),
        lambda q=q, k=k, v=v, g=g, b=beta: gated_delta_ops(q, k, v, g, b, state),
        "mlx-lm gated_delta_ops (loop)",
        repeat,
    )
    fast = getattr(mx.fast, "gated_delta_update", None)
    if fast is not None:
        row(
            name,
            lambda q=q, k=k, v=v, g=g, b=beta: gated_delta.gated_delta_chunked(q, k, v, g, b, state),
            lambda q=q, k=k, v=v, g=g, b=beta: fast(q, k, v, g, b, state),
            "mx.fast.gated_delta_update",
            repeat,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    args = parser.parse_args()
    scale, repeat = (4, 3) if args.quick else (1, 5)
    mx.set_default_device(mx.cpu)
    print(
        f"mlx {mx.__version__}, device {mx.default_device()}; best of {repeat}; ratio = baseline / fallback"
    )
    print(f"{'fallback':<44} {'time':>12}  {'nearest ops path':<34} {'time':>12}  ratio")
    bench_bitlinear(scale, repeat)
    bench_muse(scale, repeat)
    bench_losses(scale, repeat)
    bench_gated_delta(scale, repeat)


if __name__ == "__main__":
    main()
