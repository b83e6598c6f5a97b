"""Build, quantize and run one tiny model family; shared by the test and the regeneration script.

One *case* is a family and a variant (``plain``, or a quantization mode).
:func:`run_case` returns what the case produced on the installed mlx: the
greedy tokens of ``generate_step`` for one prompt, the token ids of
``batch_generate`` for two prompts of different lengths, or the error.
:func:`within_tolerance` decides whether tokens that differ from mlx
0.32.4's are a near-tie the older kernels may legitimately break the other
way (see ``TOLERANCE``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from family_configs import tiny_config

PROMPT = [104, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100]  # "hello world", one token per byte
BATCH_PROMPTS = [[104, 105], [116, 104, 101, 32, 113, 117, 105, 99, 107, 32, 102, 111, 120]]
MAX_TOKENS = 8
BATCH_TOKENS = 6
SEED = 0
#: variant -> (group size, bits, mode); plain is the float32 model.
VARIANTS: dict[str, tuple[int, int, str] | None] = {
    "plain": None,
    "affine": (64, 4, "affine"),
    "mxfp4": (32, 4, "mxfp4"),
    "mxfp8": (32, 8, "mxfp8"),
    "nvfp4": (16, 4, "nvfp4"),
}
#: How far below the best logit mlx 0.32.4's token may fall on another mlx
#: (teacher-forced on 0.32.4's tokens): float32 kernels differ by summation
#: order (~1e-6 relative); quantized kernels also round the activations or
#: the product differently per version.
TOLERANCE = {"plain": 1e-3, "quantized": 5e-2}

_TOKENIZER: Any = None


def tokenizer() -> Any:
    global _TOKENIZER
    if _TOKENIZER is None:
        from mlx_lm.utils import load_tokenizer

        from mlx_portable.cli import tiny_model

        with tempfile.TemporaryDirectory(prefix="mlx-portable-families-") as tmp:
            tiny_model._write_tokenizer(Path(tmp))
            _TOKENIZER = load_tokenizer(Path(tmp))
    return _TOKENIZER


def build(family: str, variant: str) -> Any:
    import importlib

    import mlx.nn as nn

    module = importlib.import_module(f"mlx_lm.models.{family}")
    model = module.Model(module.ModelArgs.from_dict(tiny_config(family)))
    model.load_weights(list(_random_weights(model).items()))
    model.eval()
    quant = VARIANTS[variant]
    if quant is not None:
        group_size, bits, mode = quant

        def fits(_path: str, m: Any) -> bool:
            weight = getattr(m, "weight", None)
            return hasattr(m, "to_quantized") and weight is not None and weight.shape[-1] % group_size == 0

        nn.quantize(model, group_size, bits, mode=mode, class_predicate=fits)
    return model


def _random_weights(model: Any) -> dict[str, Any]:
    """The tiny model's seeded weights (``mlx_portable.cli.tiny_model``); 0-d parameters keep their value."""
    from mlx.utils import tree_flatten

    from mlx_portable.cli import tiny_model

    scalars = {name for name, p in tree_flatten(model.parameters()) if p.ndim == 0}
    if not scalars:
        return _packed_as_loaded(model, dict(tiny_model._random_weights(model, SEED)))
    saved = dict(tree_flatten(model.parameters()))
    # tiny_model draws per sorted name and skips nothing: hide the scalars while it draws.
    weights: dict[str, Any] = {}
    for name, value in tiny_model._random_weights(_Without(model, scalars), SEED).items():
        weights[name] = value
    weights.update({name: saved[name] for name in scalars})
    return _packed_as_loaded(model, weights)


def _packed_as_loaded(model: Any, weights: dict[str, Any]) -> dict[str, Any]:
    """Integer (packed) parameters as a checkpoint holds them; the float draws are kept for the rest.

    ``tiny_model`` draws floats for every parameter.  A layer that stores packed
    integers (bitnet's ``BitLinear``: four ternary 2-bit codes per uint8;
    prism's Hadamard 2-bit affine uint32) refuses float weights, so those get
    seeded integers of their own dtype, and the model's other parameters keep
    the dtype its checkpoint would give them (e.g. float16 scales).
    """
    import mlx.core as mx
    import numpy as np
    from mlx.utils import tree_flatten

    declared = dict(tree_flatten(model.parameters()))
    packed = sorted(n for n, p in declared.items() if mx.issubdtype(p.dtype, mx.integer))
    if not packed:
        return weights
    rng = np.random.default_rng(SEED)
    for name in packed:
        shape, dtype = tuple(declared[name].shape), declared[name].dtype
        if dtype == mx.uint8:  # four 2-bit codes 0, 1, 2 (= -1, 0, +1) per byte
            codes = rng.integers(0, 3, size=(*shape, 4), dtype=np.uint8)
            value = codes[..., 0] | codes[..., 1] << 2 | codes[..., 2] << 4 | codes[..., 3] << 6
        else:
            value = rng.integers(0, 2**32, size=shape, dtype=np.uint64).astype(np.uint32)
        weights[name] = mx.array(value).astype(dtype)
    return {n: w.astype(declared[n].dtype) if n in declared else w for n, w in weights.items()}


class _Without:
    """``model`` as ``tiny_model._random_weights`` sees it, minus some parameters."""

    def __init__(self, model: Any, hidden: set[str]) -> None:
        self._model, self._hidden = model, hidden

    def parameters(self) -> Any:
        from mlx.utils import tree_flatten, tree_unflatten

        kept = [(n, p) for n, p in tree_flatten(self._model.parameters()) if n not in self._hidden]
        return tree_unflatten(kept)


def greedy(model: Any) -> list[int]:
    import mlx.core as mx
    from mlx_lm.generate import generate_step

    steps = generate_step(mx.array(PROMPT), model, max_tokens=MAX_TOKENS)
    return [int(token) for token, _ in steps]


def batch(model: Any) -> list[list[int]]:
    from mlx_lm.generate import batch_generate

    out = batch_generate(
        model, tokenizer(), [list(p) for p in BATCH_PROMPTS], max_tokens=BATCH_TOKENS, return_token_ids=True
    )
    ids = out.token_ids if hasattr(out, "token_ids") else out.tokens
    return [[int(t) for t in row] for row in ids]


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}"


def run_case(family: str, variant: str) -> dict[str, Any]:
    """``{"tokens": [...], "batch": [[...], [...]]}``; ``"error"`` / ``"batch_error"`` where one failed."""
    result: dict[str, Any] = {}
    try:
        model = build(family, variant)
    except Exception as exc:
        return {"error": "build: " + _error(exc)}
    try:
        result["tokens"] = greedy(model)
    except Exception as exc:
        result["error"] = "generate: " + _error(exc)
    try:
        result["batch"] = batch(model)
    except Exception as exc:
        result["batch_error"] = "batch_generate: " + _error(exc)
    return result


def worst_gap(family: str, variant: str, prompt: list[int], tokens: list[int]) -> float:
    """The largest (best logit - logit of ``tokens[i]``) when ``tokens`` is fed back as the answer."""
    import mlx.core as mx

    model = build(family, variant)
    if not tokens:
        return 0.0
    logits = model(mx.array([prompt + tokens[:-1]]))[0, len(prompt) - 1 :].astype(mx.float32)
    chosen = mx.take_along_axis(logits, mx.array(tokens)[:, None], axis=-1)[:, 0]
    gaps = mx.max(logits, axis=-1) - chosen
    scale = mx.maximum(mx.max(mx.abs(logits), axis=-1), 1.0)
    return float(mx.max(gaps / scale).item())


def within_tolerance(family: str, variant: str, prompt: list[int], tokens: list[int]) -> tuple[bool, float]:
    """Whether mlx 0.32.4's ``tokens`` are greedy choices here too, within ``TOLERANCE``."""
    tol = TOLERANCE["plain" if variant == "plain" else "quantized"]
    gap = worst_gap(family, variant, prompt, tokens)
    return gap <= tol, gap


def compare(family: str, variant: str, want: dict[str, Any], got: dict[str, Any]) -> tuple[str, str]:
    """``("exact" | "tolerance" | "fail" | "recorded", why)`` for one case against mlx 0.32.4's."""
    if "error" in want:
        return "recorded", f"mlx 0.32.4 itself: {want['error']}"
    if "error" in got:
        return "fail", got["error"]
    status, notes = "exact", []
    pairs = [(PROMPT, want["tokens"], got["tokens"], "generate")]
    if "batch_error" in want:
        notes.append(f"batch recorded (mlx 0.32.4 itself: {want['batch_error']})")
    elif "batch_error" in got:
        return "fail", got["batch_error"]
    else:
        pairs += [
            (p, w, g, f"batch row {i}")
            for i, (p, w, g) in enumerate(zip(BATCH_PROMPTS, want["batch"], got["batch"], strict=True))
        ]
    for prompt, w, g, what in pairs:
        if w == g:
            continue
        ok, gap = within_tolerance(family, variant, prompt, w)
        if not ok:
            return "fail", f"{what}: tokens {g} != mlx 0.32.4's {w}; worst relative logit gap {gap:.3g}"
        status = "tolerance"
        notes.append(f"{what} within tolerance (gap {gap:.2g})")
    return status, "; ".join(notes)
