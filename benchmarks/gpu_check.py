"""Check mlx-portable on a real NVIDIA GPU; on any other machine, the CPU part only.

On an NVIDIA machine with mlx, ``mlx-cuda-*`` and ``mlx-lm`` installed in a
site folder other than the NVIDIA pip libraries (the layout of
``../shared/gpu/README.md``: ``pip install --target /tmp/site``), each step
runs in a fresh interpreter:

1. ``plain-import``: ``import mlx.core`` alone (expected to fail there with
   ``libcublasLt.so.13: cannot open shared object file``, mlx-compat B16);
2. ``activated``: ``import mlx_portable`` first, then ``import mlx.core``,
   ``activate()``; prints the report, the CUDA status, and runs an
   ``mx.compile``d function on the GPU (NVRTC needs the CUDA headers: B17);
3. ``model``: the tiny llama model (``mlx_portable.cli.tiny_model``), one forward
   pass on CUDA and on the CPU (relative error of the logits; CUDA float32
   matmuls use TF32 unless ``MLX_ENABLE_TF32=0``, so ~1e-3 is expected),
   greedy generation on both (tokens compared), and decode tokens/s on CUDA;
4. ``model-plain``: decode tokens/s on CUDA without mlx-portable
   (``MLX_PORTABLE=0``; the child gets the NVIDIA folders from
   ``mlx_portable.subprocess_env()`` instead, as it could not import mlx.core
   otherwise).

Without a CUDA backend package or an NVIDIA driver, steps 1, 2 and 4 are
skipped with a line saying so, and step 3 runs on the CPU only.  Prints a
table; ``--json PATH`` also writes the results.

    python benchmarks/gpu_check.py [--tokens 128] [--json results.json]

On the project's NVIDIA machine (see ../shared/gpu/README.md; nothing to
install beyond the prepared wheels):

    . .gpu-wheels/b/install-on-device.sh && python3 benchmarks/gpu_check.py --json "$OUT/gpu_check.json"
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROMPT = "The quick brown fox jumps over the lazy dog. "
STEP_TIMEOUT = 240


# -- steps (each runs in its own interpreter) ------------------------------------------


def step_plain_import() -> dict[str, Any]:
    try:
        import mlx.core as mx
    except ImportError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "mlx": str(getattr(mx, "__version__", "?"))}


def step_activated() -> dict[str, Any]:
    import mlx.core as mx

    import mlx_portable

    report = mlx_portable.activate()
    from mlx_portable.cuda.runtime import cuda_status

    out: dict[str, Any] = {"ok": True, "report": report.to_dict(), "cuda_status": cuda_status()}
    out["report_text"] = str(report)
    x = mx.arange(1024, dtype=mx.float32) / 1024
    fn = mx.compile(lambda a: mx.exp(a) * 2.0 + mx.sin(a))
    try:
        got = fn(x)
        mx.eval(got)
        want = mx.exp(x) * 2.0 + mx.sin(x)
        out["compile"] = {
            "ok": bool(mx.allclose(got, want, rtol=1e-4, atol=1e-4).item()),
            "device": str(mx.default_device()),
        }
    except Exception as exc:  # the check reports it
        out["compile"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    out["cuda_home"] = os.environ.get("CUDA_HOME")
    return out


def _greedy(model: Any, ids: list[int], n: int) -> tuple[list[int], float]:
    import mlx.core as mx
    from mlx_lm.generate import generate_step

    prompt = mx.array(ids)
    tokens: list[int] = []
    # warm-up (compilation, allocation), then the timed decode
    for token, _ in generate_step(prompt, model, max_tokens=4):
        mx.eval(token)
    first_at = None
    for token, _ in generate_step(prompt, model, max_tokens=n):
        tokens.append(int(token))
        if first_at is None:
            first_at = time.perf_counter()
    end = time.perf_counter()
    decode = (len(tokens) - 1) / (end - first_at) if first_at and len(tokens) > 1 and end > first_at else 0.0
    return tokens, decode


def step_model(n_tokens: int, activate: bool, backends: list[str]) -> dict[str, Any]:
    if activate:
        import mlx_portable

        mlx_portable.activate()
    import mlx.core as mx

    from mlx_portable.cli.tiny_model import build_tiny_model

    model, tokenizer = build_tiny_model(seed=0)
    ids = tokenizer.encode(PROMPT)
    out: dict[str, Any] = {"ok": True, "tf32": os.environ.get("MLX_ENABLE_TF32", "1") != "0"}
    logits: dict[str, Any] = {}
    for name in backends:
        device = mx.gpu if name == "cuda" else mx.cpu
        mx.set_default_device(device)
        forward = model(mx.array([ids]))[0, -1].astype(mx.float32)
        mx.eval(forward)
        logits[name] = forward
        tokens, tps = _greedy(model, ids, n_tokens)
        out[name] = {"tokens": tokens, "distinct": len(set(tokens)), "decode_tokens_per_s": round(tps, 1)}
    if "cuda" in logits and "cpu" in logits:
        a, b = logits["cuda"], logits["cpu"]
        rel = mx.linalg.norm(a - b) / mx.linalg.norm(b)
        out["logits_rel_error"] = rel.item()
        same = sum(1 for p, q in zip(out["cuda"]["tokens"], out["cpu"]["tokens"], strict=False) if p == q)
        out["tokens_equal"] = f"{same}/{len(out['cpu']['tokens'])}"
    return out


# -- driver ---------------------------------------------------------------------------------


def _run_step(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--step", *args]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {STEP_TIMEOUT} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)  # type: ignore[no-any-return]
    return {"ok": False, "error": (done.stderr or done.stdout)[-2000:], "returncode": done.returncode}


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLX_PORTABLE")}
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(REPO) not in parts:
        parts.append(str(REPO))
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def _cuda_here() -> tuple[bool, str]:
    sys.path.insert(0, str(REPO))
    from mlx_portable.cuda.layout import cuda_backend_package
    from mlx_portable.install_hint import nvidia_driver_version

    if not sys.platform.startswith("linux"):
        return False, f"not Linux ({sys.platform})"
    backend = cuda_backend_package()
    if backend is None:
        return False, "no CUDA backend package (mlx-cuda, mlx-cuda-12, mlx-cuda-13) is installed"
    if nvidia_driver_version() is None:
        return False, f"{backend.name} {backend.version} is installed but no NVIDIA driver is loaded"
    return (
        True,
        f"{backend.name} {backend.version} (CUDA {backend.cuda_major}), driver {nvidia_driver_version()}",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128, help="tokens to generate per device")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        name, rest = args.step[0], args.step[1:]
        if name == "plain-import":
            result = step_plain_import()
        elif name == "activated":
            result = step_activated()
        else:
            result = step_model(int(rest[0]), rest[1] == "1", rest[2].split(","))
        print(json.dumps(result, default=str))
        return 0

    cuda, why = _cuda_here()
    env = _base_env()
    results: dict[str, Any] = {"machine": {"python": sys.version.split()[0], "cuda": why}}
    rows: list[tuple[str, str]] = [("CUDA", why)]
    if not cuda:
        print(f"SKIP CUDA parts: {why}. Running the CPU part only.")
        model = _run_step(["model", str(args.tokens), "1", "cpu"], env)
        results["model"] = model
        cpu = model.get("cpu", {})
        rows += [
            ("tiny model on CPU", "ok" if model.get("ok") else f"FAILED: {model.get('error')}"),
            ("CPU greedy distinct tokens", str(cpu.get("distinct"))),
            ("CPU decode tokens/s (activated)", str(cpu.get("decode_tokens_per_s"))),
        ]
    else:
        plain = _run_step(["plain-import"], env)
        activated = _run_step(["activated"], env)
        model = _run_step(["model", str(args.tokens), "1", "cuda,cpu"], env)
        from mlx_portable.cuda.runtime import subprocess_env

        plain_env = subprocess_env(env)
        plain_env["MLX_PORTABLE"] = "0"
        unpatched = _run_step(["model", str(args.tokens), "0", "cuda"], plain_env)
        results.update(plain_import=plain, activated=activated, model=model, model_plain=unpatched)
        if activated.get("report_text"):
            print(activated["report_text"])
        compile_result = activated.get("compile", {})
        rows += [
            (
                "plain import mlx.core",
                "works" if plain.get("ok") else f"fails: {plain.get('error', '')[:160]}",
            ),
            (
                "import mlx_portable first",
                "works" if activated.get("ok") else f"FAILED: {activated.get('error')}",
            ),
            (
                "preloaded",
                ", ".join(
                    Path(p).name
                    for p in activated.get("report", {})
                    .get("details", {})
                    .get("cuda_libraries", {})
                    .get("preloaded", [])
                )
                or "-",
            ),
            ("CUDA_HOME", str(activated.get("cuda_home"))),
            (
                "mx.compile on GPU",
                "ok" if compile_result.get("ok") else f"FAILED: {compile_result.get('error')}",
            ),
            (
                "logits rel. error CUDA vs CPU",
                f"{model.get('logits_rel_error', float('nan')):.2e}"
                + (" (TF32 on)" if model.get("tf32") else ""),
            ),
            ("greedy tokens equal CUDA vs CPU", str(model.get("tokens_equal"))),
            ("CUDA decode tokens/s, activated", str(model.get("cuda", {}).get("decode_tokens_per_s"))),
            (
                "CUDA decode tokens/s, not activated",
                str(unpatched.get("cuda", {}).get("decode_tokens_per_s")),
            ),
            ("CPU decode tokens/s, activated", str(model.get("cpu", {}).get("decode_tokens_per_s"))),
        ]
        if not model.get("ok") or not unpatched.get("ok"):
            rows.append(("model errors", f"{model.get('error')} / {unpatched.get('error')}"))
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    failed = cuda and not (results.get("activated", {}).get("ok") and results.get("model", {}).get("ok"))
    return 1 if failed or not results.get("model", {}).get("ok") else 0


if __name__ == "__main__":
    sys.exit(main())
