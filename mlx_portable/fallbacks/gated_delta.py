"""The gated delta rule (``mlx_lm.models.gated_delta``) without Metal, and faster on the CPU.

The recurrence, per batch row and value head, with state ``S`` (Dv x Dk):

    S <- g_t * S;  delta_t = beta_t * (v_t - S k_t);  S <- S + delta_t k_t^T;  y_t = S q_t

mlx-lm's Metal kernel runs it token by token; its ops path
(``gated_delta_ops``) runs one compiled step per token from Python, which is
what every non-Metal device gets for a prompt.

``gated_delta_chunked`` computes the same thing a chunk of ``C`` tokens at a
time with matrix products (the WY form of Yang, Kautz & Hatamizadeh, "Gated
Delta Networks", ICLR 2025): inside a chunk the deltas solve a unit
lower-triangular system, inverted by block doubling (``log2 C`` levels of
batched products, each an exact block forward substitution), and only the
state is carried from chunk to chunk.  Decays enter as ``exp`` of differences
of cumulative log-gates, masked before the ``exp`` so nothing overflows.

Mask semantics follow the Metal kernel: a masked-out step leaves the state
untouched and outputs zeros.  (mlx-lm's ops path instead still outputs the
step's value for masked tokens; ``gated_delta_ops_chunked`` keeps that path
for masked input.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache, lru_cache

import mlx.core as mx

__all__ = [
    "CHUNK",
    "choose_route",
    "gated_delta_chunked",
    "gated_delta_fastest",
    "gated_delta_kernel",
    "gated_delta_ops",
    "gated_delta_recurrent",
]

#: Tokens per chunk (a power of two).  64 balances the C x C products against
#: the per-chunk Python work on CPUs; FLA uses the same size on GPUs.
CHUNK = 64

_F32 = mx.float32
# log(g) is clamped here so that g == 0 (exp underflow in the gate) gives a
# decay of exactly 0 over any span containing it, without -inf - -inf.
_MIN_LOG_GATE = -88.0


def _check_shapes(q: mx.array, k: mx.array, v: mx.array, g: mx.array, beta: mx.array) -> None:
    if q.ndim != 4 or k.shape != q.shape or v.ndim != 4 or v.shape[:2] != q.shape[:2]:
        raise ValueError(
            f"expected q, k (B, T, Hk, Dk) and v (B, T, Hv, Dv); got q {q.shape}, k {k.shape}, v {v.shape}"
        )
    B, T, Hk, _ = q.shape
    Hv = v.shape[2]
    if Hv % Hk:
        raise ValueError(f"value heads ({Hv}) must be a multiple of key heads ({Hk})")
    if beta.shape != (B, T, Hv) or g.shape[:3] != (B, T, Hv) or g.ndim not in (3, 4):
        raise ValueError(
            f"expected g (B, T, Hv) or (B, T, Hv, Dk) and beta (B, T, Hv); got {g.shape}, {beta.shape}"
        )


def _heads_first(q: mx.array, k: mx.array, v: mx.array) -> tuple[mx.array, mx.array, mx.array]:
    """(B, H, T, D) float32, q and k repeated to the value heads as the kernel indexes them."""
    repeat = v.shape[2] // q.shape[2]
    if repeat > 1:
        q = mx.repeat(q, repeat, axis=2)
        k = mx.repeat(k, repeat, axis=2)
    return tuple(a.astype(_F32).transpose(0, 2, 1, 3) for a in (q, k, v))  # type: ignore[return-value]


@lru_cache(maxsize=16)
def _level_masks(chunk: int) -> tuple[mx.array, ...]:
    """For each doubling level b: the lower-left (b x b) blocks of the (2b x 2b) diagonal blocks."""
    rows = mx.arange(chunk).reshape(chunk, 1)
    cols = mx.arange(chunk).reshape(1, chunk)
    masks = []
    b = 1
    while b < chunk:
        same_pair = (rows // (2 * b)) == (cols // (2 * b))
        lower_half = (rows // b) % 2 == 1
        upper_half = (cols // b) % 2 == 0
        masks.append((same_pair & lower_half & upper_half).astype(_F32))
        b *= 2
    return tuple(masks)


def _unit_lower_inverse(a: mx.array) -> mx.array:
    """(I + a)^-1 for strictly lower-triangular a (..., C, C), C a power of two."""
    chunk = a.shape[-1]
    if _use_lapack():
        return mx.linalg.tri_inv(a + mx.eye(chunk, dtype=_F32), upper=False, stream=mx.cpu)
    inv = mx.broadcast_to(mx.eye(chunk, dtype=_F32), a.shape)
    for mask in _level_masks(chunk):
        # inv is block diagonal with blocks b; joining pairs of blocks fills
        # their lower-left block with -inv22 @ a21 @ inv11.
        inv = inv - inv @ (a * mask) @ inv
    return inv


def _use_lapack() -> bool:
    # On the CPU, LAPACK's triangular inverse is ~50x faster than the batched
    # products of block doubling (small batched matmuls run far below peak);
    # on a GPU the products stay on the device.
    return bool(mx.default_device() == mx.cpu)


def _chunk_size(steps: int) -> int:
    return min(CHUNK, 1 << max(0, math.ceil(math.log2(max(steps, 1)))))


def gated_delta_chunked(
    q: mx.array,
    k: mx.array,
    v: mx.array,
    g: mx.array,
    beta: mx.array,
    state: mx.array,
    mask: mx.array | None = None,
) -> tuple[mx.array, mx.array]:
    """The gated delta rule for scalar gates g (B, T, Hv), chunk by chunk; float32 results.

    q, k (B, T, Hk, Dk); v (B, T, Hv, Dv); beta (B, T, Hv); state (B, Hv, Dv, Dk);
    mask (B, T) or None.  Returns y (B, T, Hv, Dv) and the new state, float32.
    """
    _check_shapes(q, k, v, g, beta)
    if g.ndim != 3:
        raise ValueError("gated_delta_chunked takes scalar gates (B, T, Hv); use gated_delta_recurrent")
    B, T, _, Dk = q.shape
    Hv, Dv = v.shape[2:]
    qh, kh, vh = _heads_first(q, k, v)
    lg = mx.maximum(mx.log(g.astype(_F32)), _MIN_LOG_GATE).transpose(0, 2, 1)  # (B, H, T)
    bt = beta.astype(_F32).transpose(0, 2, 1)
    if mask is not None:
        keep = mask.reshape(B, 1, T)
        lg = mx.where(keep, lg, 0.0)
        bt = mx.where(keep, bt, 0.0)

    C = _chunk_size(T)
    n = -(-T // C)
    pad = n * C - T
    if pad:
        # Padded steps decay by 1 and update nothing, so the state passes through.
        qh, kh, vh = (mx.pad(a, [(0, 0), (0, 0), (0, pad), (0, 0)]) for a in (qh, kh, vh))
        lg, bt = (mx.pad(a, [(0, 0), (0, 0), (0, pad)]) for a in (lg, bt))
    qc = qh.reshape(B, Hv, n, C, Dk)
    kc = kh.reshape(B, Hv, n, C, Dk)
    vc = vh.reshape(B, Hv, n, C, Dv)
    bc = bt.reshape(B, Hv, n, C, 1)
    cum = mx.cumsum(lg.reshape(B, Hv, n, C), axis=-1)
    gamma = mx.exp(cum)[..., None]  # (B, H, n, C, 1): decay from the chunk start
    lower = mx.tril(mx.ones((C, C), dtype=mx.bool_))
    diff = cum[..., :, None] - cum[..., None, :]
    decay = mx.exp(mx.where(lower, diff, -math.inf))  # L[t, s] for s <= t, else 0
    strict = decay * (1.0 - mx.eye(C, dtype=_F32))
    kt = kc.swapaxes(-1, -2)
    a = bc * strict * (kc @ kt)
    tinv = _unit_lower_inverse(a)
    u = tinv @ (bc * vc)  # (B, H, n, C, Dv)
    w = tinv @ (bc * gamma * kc)  # (B, H, n, C, Dk)
    qk = decay * (qc @ kt)  # (B, H, n, C, C)
    gq = gamma * qc
    last = decay[..., -1, :, None]  # L[C-1, s], (B, H, n, C, 1)
    chunk_gamma = gamma[..., -1, :]  # (B, H, n, 1)

    s = state.astype(_F32)  # (B, H, Dv, Dk)
    ys = []
    for i in range(n):
        st = s.swapaxes(-1, -2)  # (B, H, Dk, Dv)
        delta = u[:, :, i] - w[:, :, i] @ st
        ys.append(gq[:, :, i] @ st + qk[:, :, i] @ delta)
        s = chunk_gamma[:, :, i, :, None] * s + (delta * last[:, :, i]).swapaxes(-1, -2) @ kc[:, :, i]
    y = mx.concatenate(ys, axis=2)[:, :, :T] if n > 1 else ys[0][:, :, :T]
    y = y.transpose(0, 2, 1, 3)  # (B, T, H, Dv)
    if mask is not None:
        y = mx.where(mask.reshape(B, T, 1, 1), y, 0.0)
    return y, s


def _step(
    q: mx.array, k: mx.array, v: mx.array, g: mx.array, beta: mx.array, state: mx.array
) -> tuple[mx.array, mx.array]:
    decay = g[..., None, None] if g.ndim == 2 else g[..., None, :]
    state = state * decay
    kv_mem = (state * k[..., None, :]).sum(axis=-1)
    delta = (v - kv_mem) * beta[..., None]
    state = state + k[..., None, :] * delta[..., None]
    return (state * q[..., None, :]).sum(axis=-1), state


_compiled_step: Callable[..., tuple[mx.array, mx.array]] = mx.compile(_step)


def gated_delta_recurrent(
    q: mx.array,
    k: mx.array,
    v: mx.array,
    g: mx.array,
    beta: mx.array,
    state: mx.array,
    mask: mx.array | None = None,
) -> tuple[mx.array, mx.array]:
    """Token by token, scalar (B, T, Hv) or vector (B, T, Hv, Dk) gates; float32 results."""
    _check_shapes(q, k, v, g, beta)
    qh, kh, vh = _heads_first(q, k, v)
    gf = g.astype(_F32)
    bf = beta.astype(_F32)
    s = state.astype(_F32)
    ys = []
    for t in range(q.shape[1]):
        y, new = _compiled_step(qh[:, :, t], kh[:, :, t], vh[:, :, t], gf[:, t], bf[:, t], s)
        if mask is not None:
            keep = mask[:, t].reshape(-1, 1, 1)
            new = mx.where(keep.reshape(-1, 1, 1, 1), new, s)
            y = mx.where(keep, y, 0.0)
        ys.append(y)
        s = new
    return mx.stack(ys, axis=1), s


def gated_delta_ops(
    q: mx.array,
    k: mx.array,
    v: mx.array,
    g: mx.array,
    beta: mx.array,
    state: mx.array | None = None,
    mask: mx.array | None = None,
) -> tuple[mx.array, mx.array]:
    """mlx-lm's ``gated_delta_ops`` contract: a masked step keeps the state but still outputs y.

    Its compiled step takes ``mask=None``, which ``mx.compile`` rejects below
    mlx 0.29; this loop never hands ``None`` to a compiled function.  Without
    a mask it takes the fastest route (:func:`gated_delta_fastest`).
    """
    _check_shapes(q, k, v, g, beta)
    B, T, _, Dk = q.shape
    Hv, Dv = v.shape[2:]
    if state is None:
        state = mx.zeros((B, Hv, Dv, Dk), dtype=_F32)
    if mask is None:  # no masked step: every route gives the loop's values
        y, s = gated_delta_fastest(q, k, v, g, beta, state)
        return y.astype(q.dtype), s
    qh, kh, vh = _heads_first(q, k, v)
    gf, bf, s = g.astype(_F32), beta.astype(_F32), state.astype(_F32)
    ys = []
    for t in range(T):
        y, new = _compiled_step(qh[:, :, t], kh[:, :, t], vh[:, :, t], gf[:, t], bf[:, t], s)
        if mask is not None:
            new = mx.where(mask[:, t].reshape(-1, 1, 1, 1), new, s)
        ys.append(y)
        s = new
    return mx.stack(ys, axis=1).astype(q.dtype), s


#: Crossovers, measured with ``benchmarks/gated_delta.py`` (Qwen3-Next-like
#: heads: 4 key / 8 value heads of 128 x 128, float32, CPU, mlx 0.32.4 and
#: 0.28.0 on 2 shared cores; figures in ``docs/models.md``).
#: Without ``mx.fast.gated_delta_update``: the chunked form from this many
#: tokens on the CPU (mlx 0.28.0: 0.41x the loop's time at 3 tokens, 0.25-0.28x
#: at 4-8, 0.4-0.5x up to 1024; 1.3-1.7x at 1-2, where the compiled per-token
#: step stays) ...
CHUNKED_FROM_CPU = 4
#: ... and on a GPU, where each per-token step is a round of kernel launches.
CHUNKED_FROM_GPU = 2
#: With ``mx.fast.gated_delta_update`` (mlx >= 0.32.3): the chunked form from
#: this many tokens instead (``None``: the fast op at every length; on mlx
#: 0.32.4 it took 0.72-0.87x the loop's time at 1-256 tokens, the chunked form
#: 0.73-2.5x).
CHUNKED_OVER_FAST_FROM: int | None = None
#: ... but on the CPU with a fast float32 GEMM (a real BLAS under mlx, see
#: ``mlx_portable.fallbacks.cpu_routes.fast_float32_gemm``) the chunked form's
#: batched products win from this many tokens (mlx 0.32.4, OpenBLAS 1 thread,
#: loaded 2-core machine; time / loop: chunked 0.66, 0.42, 0.15, 0.09, 0.11,
#: 0.15, 0.09 at 2, 4, 8, 16, 32, 64, 256 tokens, the fast op 0.74, 0.81, 0.95,
#: 0.80, 0.89, 1.36, 0.81).
CHUNKED_OVER_FAST_FROM_BLAS = 4


@cache
def _fast_op() -> Callable[..., list[mx.array]] | None:
    """``mx.fast.gated_delta_update`` where this mlx has it (0.32.3 and later).

    It takes (B, T, Hk, Dk) queries and keys with any ``Hv`` multiple of ``Hk``,
    scalar or per-key gates, an optional state and a mask with the Metal
    kernel's semantics (masked steps keep the state and output zeros), on
    every device; ``tests/test_fallback_numerics.py`` checks it against the
    per-token recurrence.  It is handed float32 inputs (see below).
    """
    return getattr(mx.fast, "gated_delta_update", None)  # cached: a missing name costs ~2 us per lookup


def choose_route(steps: int, *, vector_gates: bool, on_cpu: bool, fast: bool, fast_gemm: bool = False) -> str:
    """``"fast"``, ``"chunked"`` or ``"recurrent"``: the fastest for ``steps`` tokens.

    ``fast_gemm``: the CPU has a fast float32 GEMM (only read with ``on_cpu``).
    """
    if fast:
        over = CHUNKED_OVER_FAST_FROM_BLAS if on_cpu and fast_gemm else CHUNKED_OVER_FAST_FROM
        if over is not None and not vector_gates and steps >= over:
            return "chunked"
        return "fast"
    if not vector_gates and steps >= (CHUNKED_FROM_CPU if on_cpu else CHUNKED_FROM_GPU):
        return "chunked"
    return "recurrent"


def gated_delta_fastest(
    q: mx.array,
    k: mx.array,
    v: mx.array,
    g: mx.array,
    beta: mx.array,
    state: mx.array,
    mask: mx.array | None = None,
) -> tuple[mx.array, mx.array]:
    """The gated delta rule by the fastest route this mlx offers (see :func:`choose_route`).

    The Metal kernel's contract: masked steps keep the state and output
    zeros.  y comes in float32 or q's dtype, the state in float32.
    """
    fast = _fast_op()
    on_cpu = mx.default_device() == mx.cpu
    vector_gates = g.ndim == 4
    fast_gemm = False
    if on_cpu and fast is not None and not vector_gates and q.shape[1] >= CHUNKED_OVER_FAST_FROM_BLAS:
        from .cpu_routes import fast_float32_gemm

        fast_gemm = fast_float32_gemm()
    route = choose_route(
        q.shape[1], vector_gates=vector_gates, on_cpu=on_cpu, fast=fast is not None, fast_gemm=fast_gemm
    )
    if route == "fast":
        _check_shapes(q, k, v, g, beta)
        # Given bfloat16 inputs the op keeps parts of the update in bfloat16
        # (state error ~1e-3 against float64, where the Metal kernel and
        # mlx-lm's loop stay near 1e-6); in float32 it matches the per-token
        # recurrence exactly, and the casts cost little next to the recurrence.
        args = (a.astype(_F32) for a in (q, k, v, g, beta, state))
        y, s = fast(*args, mask)  # type: ignore[misc]
        return y, s
    if route == "chunked":
        return gated_delta_chunked(q, k, v, g, beta, state, mask)
    return gated_delta_recurrent(q, k, v, g, beta, state, mask)


def gated_delta_kernel(
    q: mx.array,
    k: mx.array,
    v: mx.array,
    g: mx.array,
    beta: mx.array,
    state: mx.array,
    mask: mx.array | None = None,
) -> tuple[mx.array, mx.array]:
    """What mlx-lm's ``gated_delta_kernel`` computes: y in q's dtype, the state in its own dtype."""
    y, s = gated_delta_fastest(q, k, v, g, beta, state, mask)
    return y.astype(q.dtype), s.astype(state.dtype)
