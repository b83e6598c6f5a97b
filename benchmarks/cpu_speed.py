"""The CPU backend, plain mlx against mlx-portable activated: models and GEMMs side by side.

    python benchmarks/cpu_speed.py [--prompt 128] [--decode 16] [--kinds float32,bfloat16,4bit]
                                   [--blas-threads N]

One run prints, for a llama-style model built from mlx-lm's own classes
(1024 wide, 4 layers, 2816 MLP, 16 heads of 64 with 4 key/value heads, 32k
vocabulary, random weights) in float32, bfloat16 and 4-bit (affine, group
64), the prefill rate of a ``--prompt``-token prompt and the greedy decode
rate of ``--decode`` tokens, both with mlx alone ("plain": a process that
never imports mlx-portable) and after ``mlx_portable.activate()``; the GEMM
rate of a 256x1024x2816 product in each dtype both ways; NumPy's float32
GEMM on the same shape as the machine's yardstick; and whether the greedy
tokens agree.  Every side runs in its own subprocess, so each starts clean;
``--blas-threads`` sets ``OPENBLAS_NUM_THREADS``/``MKL_NUM_THREADS`` for
both sides (the bound BLAS follows it; the reference BLAS is single-threaded).
Nothing is asserted: the figures are for reading, next to the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SHAPE = (256, 1024, 2816)
KINDS = ("float32", "bfloat16", "4bit")


def _best(run: object, calls: int) -> float:
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def _child(side: str, kind: str, prompt: int, decode: int) -> dict[str, object]:
    """Runs in the subprocess: one side, one kind."""
    if side == "activated":
        import mlx_portable

        mlx_portable.activate()
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_lm.models import llama
    from mlx_lm.models.cache import make_prompt_cache

    mx.random.seed(0)
    m, k, n = SHAPE
    a = mx.random.normal((m, k)) * 0.05
    b = mx.random.normal((n, k)) * 0.05
    gemm: dict[str, float] = {}
    for name, dtype in (("float32", mx.float32), ("bfloat16", mx.bfloat16)):
        x, w = a.astype(dtype), b.astype(dtype)
        mx.eval(x, w)
        mx.eval(x @ w.T)
        gemm[name] = 2.0 * m * k * n / _best(lambda x=x, w=w: mx.eval(x @ w.T), 3) / 1e9
    wq = mx.quantize(b.astype(mx.bfloat16), 64, 4)
    xq = a.astype(mx.bfloat16)
    mx.eval(wq, xq)

    def qmm() -> None:
        mx.eval(mx.quantized_matmul(xq, *wq, True, 64, 4))

    qmm()
    gemm["4bit"] = 2.0 * m * k * n / _best(qmm, 2) / 1e9

    args = llama.ModelArgs(
        model_type="llama",
        hidden_size=1024,
        num_hidden_layers=4,
        intermediate_size=2816,
        num_attention_heads=16,
        num_key_value_heads=4,
        rms_norm_eps=1e-5,
        vocab_size=32000,
        tie_word_embeddings=False,
    )
    model = llama.Model(args)
    mx.eval(model.parameters())
    if kind == "bfloat16":
        model.set_dtype(mx.bfloat16)
    elif kind == "4bit":
        model.set_dtype(mx.bfloat16)
        nn.quantize(model, group_size=64, bits=4)
    mx.eval(model.parameters())
    tokens = mx.random.randint(0, args.vocab_size, (1, prompt), key=mx.random.key(1))

    def prefill() -> tuple[object, object]:
        cache = make_prompt_cache(model)
        logits = model(tokens, cache=cache)
        mx.eval(logits)
        return cache, logits

    warm = make_prompt_cache(model)
    mx.eval(model(tokens[:, :8], cache=warm))
    start = time.perf_counter()
    cache, logits = prefill()
    prefill_s = time.perf_counter() - start
    token = mx.argmax(logits[:, -1, :], axis=-1)  # type: ignore[index]
    out = [int(token.item())]
    mx.eval(model(token[:, None], cache=cache))  # one step unmeasured: first-call costs
    token = mx.argmax(model(token[:, None], cache=cache)[:, -1, :], axis=-1)
    start = time.perf_counter()
    for _ in range(decode):
        token = mx.argmax(model(token[:, None], cache=cache)[:, -1, :], axis=-1)
        out.append(int(token.item()))
    decode_s = time.perf_counter() - start
    return {
        "prefill": prompt / prefill_s,
        "decode": decode / decode_s,
        "gemm": gemm,
        "tokens": out,
        "mlx": mx.__version__,
    }


def _numpy_gemm() -> tuple[float, str]:
    import numpy as np

    m, k, n = SHAPE
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    a @ b
    rate = 2.0 * m * k * n / _best(lambda: a @ b, 5) / 1e9
    config = np.show_config(mode="dicts") if "mode" in np.show_config.__code__.co_varnames else {}
    blas = config.get("Build Dependencies", {}).get("blas", {}) if isinstance(config, dict) else {}
    return rate, f"{blas.get('name', 'BLAS')} {blas.get('version', '')}".strip()


def _run_side(side: str, kind: str, prompt: int, decode: int) -> dict[str, object]:
    command = [sys.executable, __file__, "--child", side, kind, str(prompt), str(decode)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=os.environ.copy())
    if done.returncode != 0:
        raise SystemExit(f"{side} {kind} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _report() -> str:
    import mlx_portable

    mlx_portable.activate()
    from mlx_portable.activation import report
    from mlx_portable.fallbacks import cpu_routes

    blas = report().details.get("cpu_blas", {})
    fast = cpu_routes.fast_float32_gemm()
    if isinstance(blas, dict) and blas.get("library"):
        where = f"{blas['library']} {blas.get('version', '')}, {blas.get('threads')} threads"
    else:
        where = f"no BLAS bound ({blas.get('state') if isinstance(blas, dict) else blas})"
    return f"activated: {where}; fast float32 GEMM measured: {fast}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--prompt", type=int, default=128, help="prompt tokens (default 128)")
    parser.add_argument("--decode", type=int, default=16, help="decoded tokens (default 16)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="float32,bfloat16,4bit")
    parser.add_argument(
        "--blas-threads", type=int, default=0, help="threads of the bound BLAS (default: its own)"
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.blas_threads < 0:
        parser.error(f"--blas-threads takes a count >= 1 (0: the library's default), not {args.blas_threads}")
    if args.blas_threads:
        for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(args.blas_threads)
    if args.child:
        side, kind, prompt, decode = args.child
        print(json.dumps(_child(side, kind, int(prompt), int(decode))))
        return
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or args.prompt < 9 or args.decode < 1:
        parser.error(f"--kinds takes {','.join(KINDS)}; --prompt >= 9; --decode >= 1 (got {args.kinds!r})")
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load:.1f} before the run; {_report()}")
    numpy_rate, numpy_blas = _numpy_gemm()
    results = {}
    for kind in kinds:
        for side in ("plain", "activated"):
            results[(side, kind)] = _run_side(side, kind, args.prompt, args.decode)
    first = results[("plain", kinds[0])]
    m, k, n = SHAPE
    print(
        f"mlx {first['mlx']}; model: llama 1024 wide, 4 layers, 32k vocabulary; "
        f"prompt {args.prompt}, decode {args.decode}"
    )
    print(f"\n{'':<10}{'prefill tok/s':>28}{'decode tok/s':>28}   greedy tokens")
    print(f"{'':<10}{'plain':>9}{'activated':>11}{'ratio':>8}{'plain':>9}{'activated':>11}{'ratio':>8}")
    for kind in kinds:
        p, a = results[("plain", kind)], results[("activated", kind)]
        same = "identical" if p["tokens"] == a["tokens"] else f"differ ({p['tokens']} / {a['tokens']})"
        pf, af, pd, ad = float(p["prefill"]), float(a["prefill"]), float(p["decode"]), float(a["decode"])  # type: ignore[arg-type]
        print(f"{kind:<10}{pf:9.1f}{af:11.1f}{af / pf:7.1f}x{pd:9.1f}{ad:11.1f}{ad / pd:7.1f}x   {same}")
    print(f"\nGEMM {m}x{k}x{n}, GFLOP/s (best of 3){'':<6}plain  activated   ratio")
    p, a = results[("plain", kinds[0])]["gemm"], results[("activated", kinds[0])]["gemm"]
    for name in ("float32", "bfloat16", "4bit"):
        label = {"4bit": "4-bit (g64) quantized_matmul, bf16"}.get(name, f"{name} matmul")
        pr, ar = float(p[name]), float(a[name])  # type: ignore[index]
        print(f"  {label:<36}{pr:9.1f}{ar:11.1f}{ar / pr:7.1f}x")
    print(
        f"  NumPy float32 ({numpy_blas}){'':<6}{numpy_rate:9.1f}   "
        f"(activated float32 / NumPy = {float(a['float32']) / numpy_rate:.2f})"
    )  # type: ignore[index]
    print(f"\nload average {os.getloadavg()[0]:.1f} after the run")


if __name__ == "__main__":
    main()
