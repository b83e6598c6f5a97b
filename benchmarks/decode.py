"""Greedy decode speed (tokens/s) with and without mlx-portable, side by side.

Each measurement runs in a fresh interpreter: ``with`` activates mlx-portable
before importing mlx-lm, ``without`` never imports it.  The two alternate
(with, without, with, ...) so that load on the machine hits both alike; the
script prints the median tokens/s of each and their ratio (goal: >= 0.99,
the shims cost nothing per token).  Where mlx-lm cannot run without
mlx-portable (old mlx), only ``with`` is measured and the reason is printed.

    python benchmarks/decode.py                    # tiny model, 128 tokens, 7 rounds
    python benchmarks/decode.py --size small --tokens 256 --rounds 9
    python benchmarks/decode.py --modes with       # one side only
    python benchmarks/decode.py --json

The tiny model (hidden 64) makes each token cheap, so per-call overhead of a
patched function shows up as strongly as it can; ``--size small`` (hidden
512, 8 layers) is closer to real compute.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

SIZES: dict[str, dict[str, int]] = {
    "tiny": {},
    "small": {
        "hidden_size": 512,
        "num_hidden_layers": 8,
        "intermediate_size": 1536,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
    },
}

_WRITE = """
import json, sys
import mlx_portable
mlx_portable.activate()
from mlx_portable.cli.tiny_model import write_tiny_model
write_tiny_model(sys.argv[1], seed=0, **json.loads(sys.argv[2]))
"""

# One measurement: load, warm up, then time the decode of N tokens (the
# prompt is processed before the first token, so it is not counted), a few
# times; print the best tokens/s of this process, the mlx version and the
# patches applied.
_MEASURE = """
import json, sys, time
model_dir, tokens, inner, portable = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
applied = []
if portable:
    import mlx_portable
    mlx_portable.activate()
import mlx.core as mx
import mlx_lm
from mlx_lm.generate import stream_generate
if portable:
    applied = [p.name for p in mlx_portable.report().patches if p.status == "applied"]
model, tokenizer = mlx_lm.load(model_dir)
prompt = tokenizer.encode("hello")
for _ in stream_generate(model, tokenizer, prompt, max_tokens=16):
    pass
rates = []
for _ in range(inner):
    first = last = None
    count = 0
    for response in stream_generate(model, tokenizer, prompt, max_tokens=tokens):
        now = time.perf_counter()
        if first is None:
            first = now
        last = now
        count += 1
    rates.append((count - 1) / (last - first))
print(json.dumps({"rate": max(rates), "mlx": mx.__version__, "applied": applied}))
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLX_PORTABLE")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(MLX_PORTABLE_BACKEND="cpu", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def _python(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def _measure(model_dir: Path, tokens: int, inner: int, portable: bool) -> dict[str, Any]:
    done = _python(["-c", _MEASURE, str(model_dir), str(tokens), str(inner), "1" if portable else "0"], 600)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit {done.returncode}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(size: str, tokens: int, rounds: int, inner: int, modes: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mlx-portable-bench-") as tmp:
        model_dir = Path(tmp) / "model"
        done = _python(["-c", _WRITE, str(model_dir), json.dumps(SIZES[size])], 600)
        if done.returncode != 0:
            raise SystemExit(f"writing the benchmark model failed:\n{done.stderr[-3000:]}")
        rates: dict[str, list[float]] = {mode: [] for mode in modes}
        errors: dict[str, str] = {}
        mlx_version, applied = "?", []
        for _ in range(rounds):
            for mode in modes:
                if mode in errors:
                    continue
                result = _measure(model_dir, tokens, inner, portable=mode == "with")
                if "error" in result:
                    errors[mode] = result["error"]
                    continue
                rates[mode].append(result["rate"])
                mlx_version = result["mlx"]
                if mode == "with":
                    applied = result["applied"]
    summary: dict[str, Any] = {
        "mlx": mlx_version,
        "size": size,
        "tokens": tokens,
        "rounds": rounds,
        "applied_patches": applied,
        "errors": errors,
    }
    for mode, values in rates.items():
        if values:
            summary[f"{mode}_median_tps"] = statistics.median(values)
            summary[f"{mode}_tps"] = values
    if rates.get("with") and rates.get("without"):
        summary["ratio_with_over_without"] = summary["with_median_tps"] / summary["without_median_tps"]
    return summary


def _print(summary: dict[str, Any]) -> None:
    print(
        f"mlx {summary['mlx']}, {summary['size']} model, "
        f"{summary['tokens']} tokens, {summary['rounds']} rounds"
    )
    print(f"patches applied: {', '.join(summary['applied_patches']) or 'none'}")
    for mode in ("with", "without"):
        if f"{mode}_median_tps" in summary:
            values = ", ".join(f"{v:.0f}" for v in summary[f"{mode}_tps"])
            median = summary[f"{mode}_median_tps"]
            print(f"  {mode:<7} mlx-portable: median {median:8.1f} tokens/s  ({values})")
        elif mode in summary["errors"]:
            print(f"  {mode:<7} mlx-portable: cannot run: {summary['errors'][mode]}")
    if "ratio_with_over_without" in summary:
        print(f"  ratio with/without: {summary['ratio_with_over_without']:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--tokens", type=int, default=128, help="tokens decoded per measurement")
    parser.add_argument("--rounds", type=int, default=7, help="fresh processes per mode, alternating")
    parser.add_argument("--inner", type=int, default=3, help="timed decodes per process (best counts)")
    parser.add_argument("--modes", default="with,without", help="comma list of: with, without")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"with", "without"}:
        parser.error(f"--modes must be a comma list of 'with' and 'without', got {args.modes!r}")
    if args.tokens < 2 or args.rounds < 1 or args.inner < 1:
        parser.error("--tokens must be >= 2, --rounds and --inner >= 1")
    summary = run(args.size, args.tokens, args.rounds, args.inner, modes)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
