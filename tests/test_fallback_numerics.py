"""The pure-MLX fallbacks against float64 NumPy references written from the Metal kernels' sources.

Real mlx (the CPU wheel of whichever version runs the tests); no mlx-lm
needed.  Errors are measured relative to the largest reference value, with a
threshold per dtype: the fallbacks do float32 math and round to the dtype
where the kernels do, so a miss means wrong semantics, not rounding.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

mx = pytest.importorskip("mlx.core")
np = pytest.importorskip("numpy")

from mlx_portable.fallbacks import bitlinear, gated_delta, losses, muse_kernels  # noqa: E402

DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
#: Largest relative error accepted per dtype (a few roundings of the dtype).
TOLERANCE = {"float32": 2e-5, "float16": 4e-3, "bfloat16": 3e-2}


def rng(seed: int = 0) -> Any:
    return np.random.default_rng(seed)


def to_mx(a: Any, dtype: Any = None) -> Any:
    out = mx.array(np.asarray(a, dtype=np.float32))
    return out if dtype is None else out.astype(dtype)


def f64(a: Any) -> Any:
    """An mlx array as float64 NumPy (through float32: NumPy has no bfloat16)."""
    return np.array(a.astype(mx.float32), dtype=np.float64)


def rel_err(got: Any, want: Any) -> float:
    got = f64(got) if isinstance(got, mx.array) else np.asarray(got, dtype=np.float64)
    scale = max(float(np.abs(want).max()), 1e-30)
    return float(np.abs(got - want).max() / scale)


# -- BitLinear ---------------------------------------------------------------


def ternary_reference(x: Any, packed: Any, scale: float, out_features: int, invert: bool) -> Any:
    """Row i * P + r of W holds bits 2i..2i+1 of packed[r], minus 1; y = x W^T (* or /) scale."""
    p = np.asarray(packed).astype(np.int64)
    w = np.concatenate([((p >> (2 * i)) & 3) - 1 for i in range(4)], axis=0)[:out_features]
    y = f64(x) @ w.T.astype(np.float64)
    return y / scale if invert else y * scale


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("batch", "in_features", "out_features"),
    # (3, 11): 33 tokens and (2, 5): 10, past bitlinear.QMM_UP_TO (5 for bfloat16, 12
    # otherwise): the unpack-then-GEMM routes.
    [((1,), 256, 64), ((3,), 96, 8), ((2, 5), 128, 36), ((7,), 40, 12), ((1,), 64, 6), ((3, 11), 128, 36)],
)
@pytest.mark.parametrize("invert", [False, True])
def test_bitlinear_matches_reference(
    dtype: str, batch: tuple[int, ...], in_features: int, out_features: int, invert: bool
) -> None:
    r = rng(in_features + out_features)
    packed = mx.array(r.integers(0, 256, ((out_features + 3) // 4, in_features)).astype(np.uint8))
    x = to_mx(r.standard_normal((*batch, in_features)), DTYPES[dtype])
    scale = mx.array([0.37]).astype(DTYPES[dtype])
    got = bitlinear.bitlinear_matmul(x, packed, scale, out_features=out_features, invert_weight_scales=invert)
    assert got.shape == (*batch, out_features) and got.dtype == DTYPES[dtype]
    want = ternary_reference(x, packed, float(f64(scale)[0]), out_features, invert)
    assert rel_err(got, want) < TOLERANCE[dtype]


class _Owner:
    """Stands for a BitLinear layer: the fallback keeps its re-packed weights on it."""


def test_bitlinear_quantized_and_dense_paths_agree_and_cache_follows_the_weights() -> None:
    r = rng(1)
    packed = mx.array(r.integers(0, 256, (16, 128)).astype(np.uint8))
    x = to_mx(r.standard_normal((4, 128)))
    scale = mx.array([1.0])

    owner = _Owner()
    quantized = bitlinear.bitlinear_matmul(
        x, packed, scale, out_features=64, invert_weight_scales=False, cache_owner=owner
    )
    cached = owner._mlx_portable_ternary  # type: ignore[attr-defined]
    with mx.stream(mx.cpu):
        again = bitlinear.bitlinear_matmul(
            x, packed, scale, out_features=64, invert_weight_scales=False, cache_owner=owner
        )
    assert owner._mlx_portable_ternary is cached  # type: ignore[attr-defined]
    dense = x @ (bitlinear.unpack_ternary(packed, 64).astype(mx.float32) - 1.0).T
    assert rel_err(quantized, f64(dense)) < 1e-6 and rel_err(again, f64(quantized)) == 0.0
    # New weights (as after load_weights) are re-packed, not served stale.
    other = mx.array(r.integers(0, 256, (16, 128)).astype(np.uint8))
    fresh = bitlinear.bitlinear_matmul(
        x, other, scale, out_features=64, invert_weight_scales=False, cache_owner=owner
    )
    assert rel_err(fresh, ternary_reference(x, other, 1.0, 64, False)) < 1e-6


def _bf16_bits(a: Any) -> Any:
    return np.array(a.view(mx.int16)).astype(np.int64)


@pytest.mark.parametrize("invert", [False, True])
def test_bitlinear_bfloat16_prefill_rounds_once_like_the_kernel(invert: bool) -> None:
    """The bfloat16 GEMM route scales before its one rounding (mlx >= 0.29.4), as the kernel does.

    Kernel semantics: float32 sum, times the float32 factor (``1 / scale`` when
    inverted), one rounding to bfloat16.  Rounding the product first and
    scaling after would put about a quarter of these outputs one ulp off.
    """
    r = rng(7)
    packed = mx.array(r.integers(0, 256, (64, 512)).astype(np.uint8))
    x = to_mx(r.standard_normal((2, 20, 512)), mx.bfloat16)  # 40 tokens: the GEMM route
    scale = mx.array([0.37], dtype=mx.bfloat16)
    got = bitlinear.bitlinear_matmul(x, packed, scale, out_features=256, invert_weight_scales=invert)
    weights = bitlinear.unpack_ternary(packed, 256).astype(mx.float32) - 1.0
    factor = 1.0 / scale.astype(mx.float32)[0] if invert else scale.astype(mx.float32)[0]
    want = ((x.astype(mx.float32) @ weights.T) * factor).astype(mx.bfloat16)
    twice = ((x @ weights.astype(mx.bfloat16).T).astype(mx.float32) * factor).astype(mx.bfloat16)
    ulps = np.abs(_bf16_bits(got) - _bf16_bits(want))
    assert got.dtype == mx.bfloat16 and got.shape == (2, 20, 256)
    assert (_bf16_bits(twice) != _bf16_bits(want)).mean() > 0.1  # the double rounding avoided
    if bitlinear._half_addmm(mx.__version__):
        assert ulps.max() == 0
    else:  # mlx < 0.29.4 has no bfloat16 addmm on the CPU: rounded, then scaled
        assert ulps.max() <= 1


def test_bitlinear_routes_by_token_count_and_keeps_decode_on_the_2bit_weights() -> None:
    r = rng(3)
    packed = mx.array(r.integers(0, 256, (16, 128)).astype(np.uint8))
    scale = mx.array([0.5], dtype=mx.bfloat16)

    for dtype, name in ((mx.bfloat16, "bfloat16"), (mx.float32, "float32")):
        limit = bitlinear.QMM_UP_TO[name]
        for tokens, decode in ((1, True), (limit, True), (limit + 1, False), (64, False)):
            owner = _Owner()
            x = to_mx(r.standard_normal((tokens, 128)), dtype)
            got = bitlinear.bitlinear_matmul(
                x, packed, scale.astype(dtype), out_features=64, invert_weight_scales=False, cache_owner=owner
            )
            # The 2-bit copy is made for decoding only; a prompt never pays the re-pack.
            assert hasattr(owner, "_mlx_portable_ternary") is decode, (dtype, tokens)
            want = ternary_reference(x, packed, 0.5, 64, False)
            assert rel_err(got, want) < TOLERANCE[name]


def test_bitlinear_repacked_weights_are_shared_by_content_and_freed_with_their_layers() -> None:
    import gc

    r = rng(11)
    data = r.integers(0, 256, (16, 256)).astype(np.uint8)
    x = to_mx(r.standard_normal((1, 256)))
    scale = mx.array([1.0])

    def call(owner: Any, packed: Any) -> Any:
        return bitlinear.bitlinear_matmul(
            x, packed, scale, out_features=64, invert_weight_scales=False, cache_owner=owner
        )

    first, second, other = _Owner(), _Owner(), _Owner()
    call(first, mx.array(data))
    call(second, mx.array(data))  # a second load of the same weights: new arrays, same bytes
    a, b = first._mlx_portable_ternary, second._mlx_portable_ternary  # type: ignore[attr-defined]
    assert a.weight is b.weight and a.scales is b.scales
    changed = data.copy()
    changed[0, 0] ^= 1
    got = call(other, mx.array(changed))
    assert other._mlx_portable_ternary.weight is not a.weight  # type: ignore[attr-defined]
    # Constant scales and biases: one pair per shape, whatever the weights.
    assert other._mlx_portable_ternary.scales is a.scales  # type: ignore[attr-defined]
    assert rel_err(got, ternary_reference(x, mx.array(changed), 1.0, 64, False)) < 1e-6
    key = bitlinear._content_key(mx.array(data), 64, 128)
    assert key in bitlinear._BY_CONTENT
    del first, second, a, b
    gc.collect()
    assert key not in bitlinear._BY_CONTENT  # held weakly: gone with the layers


def test_bitlinear_rejects_bad_input_with_a_remedy() -> None:
    packed = mx.zeros((2, 32), dtype=mx.uint8)
    with pytest.raises(TypeError, match="cast the input"):
        bitlinear.bitlinear_matmul(
            mx.ones((1, 32), dtype=mx.float16),
            packed,
            mx.array([1.0]),
            out_features=8,
            invert_weight_scales=False,
        )
    with pytest.raises(ValueError, match="at most 8 outputs"):
        bitlinear.bitlinear_matmul(
            mx.ones((1, 32)), packed, mx.array([1.0]), out_features=9, invert_weight_scales=False
        )
    with pytest.raises(TypeError, match="packed uint8"):
        bitlinear.unpack_ternary(mx.zeros((2, 32)), 8)


# -- mlx_lm.kernels (Muse Spark) ---------------------------------------------


def rms(x: Any, eps: float) -> Any:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)


def qkvg_case(r: Any, tokens: tuple[int, ...], hq: int, hk: int, d: int, dtype: str) -> Any:
    return to_mx(r.standard_normal((*tokens, 2 * (hq + hk) * d)) * 2.0, DTYPES[dtype])


QK_SHAPES = [((1, 1), 4, 2, 16), ((2, 7), 3, 1, 40), ((1, 5), 2, 2, 128), ((3,), 1, 1, 24)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("tokens", "hq", "hk", "d"), QK_SHAPES)
def test_qk_norm(dtype: str, tokens: tuple[int, ...], hq: int, hk: int, d: int) -> None:
    x = qkvg_case(rng(d), tokens, hq, hk, d, dtype)
    q, k = muse_kernels.qk_norm(x, n_heads=hq, n_kv_heads=hk, head_dim=d, eps=1e-5, query_scale=5.47)
    heads = f64(x)[..., : (hq + hk) * d].reshape(*tokens, hq + hk, d)
    normed = rms(heads, 1e-5)
    assert q.shape == (*tokens, hq, d) and k.shape == (*tokens, hk, d) and q.dtype == x.dtype
    assert rel_err(q, normed[..., :hq, :] * 5.47) < TOLERANCE[dtype]
    assert rel_err(k, normed[..., hq:, :]) < TOLERANCE[dtype]


def rope_reference(y: Any, positions: Any, base: float) -> Any:
    """mx.fast.rope(traditional=True): rotate pairs (2i, 2i + 1) by pos * base^(-i / (D / 2))."""
    d = y.shape[-1]
    inv = base ** (-np.arange(d // 2) / (d // 2))
    theta = positions[..., None, None] * inv  # (..., 1, D/2)
    c, s = np.cos(theta), np.sin(theta)
    even, odd = y[..., 0::2], y[..., 1::2]
    out = np.empty_like(y)
    out[..., 0::2] = even * c - odd * s
    out[..., 1::2] = even * s + odd * c
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("tokens", "hq", "hk", "d"), [s for s in QK_SHAPES if len(s[0]) == 2])
@pytest.mark.parametrize("offset_kind", ["int", "scalar_array", "per_row"])
def test_qk_norm_rope(
    dtype: str, tokens: tuple[int, int], hq: int, hk: int, d: int, offset_kind: str
) -> None:
    x = qkvg_case(rng(d + 1), tokens, hq, hk, d, dtype)
    b, seq = tokens
    starts = np.array([3 + 11 * i for i in range(b)])
    offset: int | Any
    if offset_kind == "int":
        offset, starts = 7, np.full(b, 7)
    elif offset_kind == "scalar_array":
        offset, starts = mx.array(5), np.full(b, 5)
    else:
        offset = mx.array(starts.astype(np.int32))
    q, k = muse_kernels.qk_norm_rope(
        x, n_heads=hq, n_kv_heads=hk, head_dim=d, eps=1e-6, query_scale=0.5, rope_base=10000.0, offset=offset
    )
    heads = rms(f64(x)[..., : (hq + hk) * d].reshape(b, seq, hq + hk, d), 1e-6)
    positions = (starts[:, None] + np.arange(seq)[None, :]).astype(np.float64)
    assert rel_err(q, rope_reference(heads[..., :hq, :] * 0.5, positions, 10000.0)) < TOLERANCE[dtype]
    assert rel_err(k, rope_reference(heads[..., hq:, :], positions, 10000.0)) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("b", "h", "seq", "d"), [(1, 4, 1, 16), (2, 3, 5, 40), (1, 2, 9, 128)])
def test_rms_norm_sigmoid_gate(dtype: str, b: int, h: int, seq: int, d: int) -> None:
    r = rng(seq * d)
    # The attention output arrives as (B, H, L, D) from a transpose: strided.
    x = to_mx(r.standard_normal((b, seq, h, d)), DTYPES[dtype]).transpose(0, 2, 1, 3)
    gate = to_mx(r.standard_normal((b, seq, h * d)) * 3, DTYPES[dtype])
    got = muse_kernels.rms_norm_sigmoid_gate(x, gate, eps=1e-5)
    xs = rms(f64(x).transpose(0, 2, 1, 3), 1e-5)
    want = (xs * (1 / (1 + np.exp(-f64(gate).reshape(b, seq, h, d))))).reshape(b, seq, h * d)
    assert got.shape == (b, seq, h * d) and rel_err(got, want) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("shape", [(1, 1, 64), (2, 3, 40), (1, 7, 1000)])
@pytest.mark.parametrize("post_scale", [False, True])
@pytest.mark.parametrize("with_next", [False, True])
def test_norm_add_norm_and_pre_norm(
    dtype: str, shape: tuple[int, ...], post_scale: bool, with_next: bool
) -> None:
    import mlx.nn as nn

    r = rng(shape[-1])
    d = shape[-1]
    branch = to_mx(r.standard_normal(shape) * 3, DTYPES[dtype])
    stream = to_mx(r.standard_normal(shape))
    alpha, beta = to_mx(r.uniform(0.2, 1.0, d)), to_mx(r.uniform(0.2, 1.0, d))
    post_w = to_mx(r.uniform(0.5, 1.5, d), DTYPES[dtype]) if post_scale else None
    norm = nn.RMSNorm(d, eps=1e-5)
    norm.weight = to_mx(r.uniform(0.5, 1.5, d), DTYPES[dtype])
    new_stream, normed = muse_kernels.norm_add_norm(
        branch,
        stream,
        alpha=alpha,
        beta=beta,
        post_weight=post_w,
        post_eps=1e-6,
        next_norm=norm if with_next else None,
    )
    v = f64(branch) * (f64(post_w) if post_w is not None else 1.0)
    want_stream = f64(alpha) * f64(stream) + f64(beta) * rms(v, 1e-6)
    assert new_stream.dtype == mx.float32 and rel_err(new_stream, want_stream) < TOLERANCE[dtype]
    if not with_next:
        assert normed is None
        return
    want_normed = rms(want_stream, 1e-5) * f64(norm.weight)
    assert normed is not None and normed.dtype == branch.dtype
    assert rel_err(normed, want_normed) < TOLERANCE[dtype]
    # pre_norm of the new stream equals the fused pre-norm, as the kernel promises.
    again = muse_kernels.pre_norm(new_stream, norm, dtype=DTYPES[dtype])
    assert rel_err(again, f64(normed)) == 0.0


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize(("lead", "k", "d"), [((1,), 1, 32), ((2, 3), 4, 40), ((5,), 8, 1000)])
def test_post_expert_norm_combine(dtype: str, lead: tuple[int, ...], k: int, d: int) -> None:
    r = rng(k * d)
    experts = to_mx(r.standard_normal((*lead, k, d)) * 4, DTYPES[dtype])
    weights = to_mx(r.uniform(0, 1, (*lead, k)))
    norm_w = to_mx(r.uniform(0.5, 1.5, d), DTYPES[dtype])
    got = muse_kernels.post_expert_norm_combine(experts, weights, norm_weight=norm_w, eps=1e-5)
    normed = rms(f64(experts) * f64(norm_w), 1e-5)
    want = (normed * f64(weights)[..., None]).sum(axis=-2)
    assert got.shape == (*lead, d) and got.dtype == experts.dtype
    # The kernel rounds the running sum to T after each of the k experts.
    assert rel_err(got, want) < TOLERANCE[dtype] * max(1, k // 2)


def routing_reference(
    logits: Any, bias: Any, top_k: int, mult: float, eps: float, scale: float
) -> tuple[Any, Any]:
    score = 1 / (1 + np.exp(-logits * mult))
    biased = score + bias
    # Largest first, the lower index first among equals (a stable sort on -biased).
    order = np.argsort(-biased, axis=-1, kind="stable")[..., :top_k]
    chosen = np.take_along_axis(score, order, axis=-1)
    return order, chosen / (chosen.sum(axis=-1, keepdims=True) + eps) * scale


@pytest.mark.parametrize(("lead", "experts", "top_k"), [((1,), 4, 1), ((2, 3), 16, 4), ((7,), 257, 8)])
def test_expert_routing(lead: tuple[int, ...], experts: int, top_k: int) -> None:
    r = rng(experts)
    logits = to_mx(r.standard_normal((*lead, experts)) * 2)
    bias = to_mx(r.standard_normal(experts) * 0.1)
    inds, weights = muse_kernels.expert_routing(
        logits, bias, top_k=top_k, multiplier=1.3, score_eps=1e-15, route_scale=2.5
    )
    want_inds, want_weights = routing_reference(f64(logits), f64(bias), top_k, 1.3, 1e-15, 2.5)
    assert inds.dtype == mx.uint32 and weights.dtype == mx.float32
    assert np.array_equal(np.array(inds), want_inds)
    assert rel_err(weights, want_weights) < TOLERANCE["float32"]


def test_expert_routing_breaks_ties_by_lowest_index() -> None:
    # A router of zeros (a freshly built model) scores every expert alike.
    inds, weights = muse_kernels.expert_routing(
        mx.zeros((3, 6)), mx.zeros(6), top_k=3, multiplier=1.0, score_eps=0.0, route_scale=1.0
    )
    assert np.array(inds).tolist() == [[0, 1, 2]] * 3
    assert np.allclose(np.array(weights), 1 / 3)


def test_muse_kernels_reject_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"2 \* \(n_heads \+ n_kv_heads\) \* head_dim"):
        muse_kernels.qk_norm(
            mx.zeros((1, 10)), n_heads=1, n_kv_heads=1, head_dim=4, eps=1e-5, query_scale=1.0
        )
    with pytest.raises(ValueError, match="top_k=9"):
        muse_kernels.expert_routing(
            mx.zeros((1, 8)), mx.zeros(8), top_k=9, multiplier=1.0, score_eps=0.0, route_scale=1.0
        )


# -- tuner losses ------------------------------------------------------------


def log_softmax(x: Any) -> Any:
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def kl_reference(q: Any, p: Any) -> Any:
    lq, lp = log_softmax(q), log_softmax(p)
    return (np.exp(lp) * (lp - lq)).sum(-1)


def js_reference(q: Any, p: Any) -> Any:
    lq, lp = log_softmax(q), log_softmax(p)
    lm = np.logaddexp(lq, lp) - math.log(2)
    return 0.5 * ((np.exp(lp) * (lp - lm)).sum(-1) + (np.exp(lq) * (lq - lm)).sum(-1))


LOSS_SHAPES = [((1,), 5), ((3,), 1000), ((2, 3), 4099), ((2,), 32000)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("lead", "vocab"), LOSS_SHAPES)
@pytest.mark.parametrize("name", ["kl", "js"])
def test_divergence_forward(dtype: str, lead: tuple[int, ...], vocab: int, name: str) -> None:
    r = rng(vocab)
    q = to_mx(r.standard_normal((*lead, vocab)) * 2, DTYPES[dtype])
    p = to_mx(r.standard_normal((*lead, vocab)) * 2, DTYPES[dtype])
    fn, ref = (losses.kl_div_loss, kl_reference) if name == "kl" else (losses.js_div_loss, js_reference)
    got = fn(q, p)
    assert got.shape == lead and got.dtype == q.dtype
    assert rel_err(got, ref(f64(q), f64(p))) < TOLERANCE[dtype]


def test_divergences_stay_finite_for_confident_distributions() -> None:
    # Student and teacher each sure of a different token: log q - log p ~ 400 nats.
    r = rng(3)
    q = to_mx(r.standard_normal((4, 1000)) * 20)
    p = to_mx(r.standard_normal((4, 1000)) * 20)
    got_js, got_kl = losses.js_div_loss(q, p), losses.kl_div_loss(q, p)
    assert np.isfinite(np.array(got_js)).all() and np.isfinite(np.array(got_kl)).all()
    assert rel_err(got_js, js_reference(f64(q), f64(p))) < 1e-5
    assert rel_err(got_kl, kl_reference(f64(q), f64(p))) < 1e-5


@pytest.mark.parametrize(("lead", "vocab"), [((1,), 5), ((2, 3), 77)])
@pytest.mark.parametrize("name", ["kl", "js"])
def test_divergence_gradients(lead: tuple[int, ...], vocab: int, name: str) -> None:
    """mx.grad w.r.t. the student logits matches central differences of the float64 reference;
    the teacher logits get zeros, as from the Metal kernels' vjp."""
    r = rng(vocab + 1)
    q = r.standard_normal((*lead, vocab)) * 2
    p = r.standard_normal((*lead, vocab)) * 2
    cot = r.standard_normal(lead)
    fn, ref = (losses.kl_div_loss, kl_reference) if name == "kl" else (losses.js_div_loss, js_reference)

    def loss(a: Any, b: Any) -> Any:
        return (fn(a, b) * to_mx(cot)).sum()

    dq, dp = mx.grad(loss, argnums=(0, 1))(to_mx(q), to_mx(p))
    h = 1e-6
    want = np.zeros_like(q)
    for idx in np.ndindex(q.shape):
        up, down = q.copy(), q.copy()
        up[idx] += h
        down[idx] -= h
        want[idx] = ((ref(up, p) - ref(down, p)) * cot).sum() / (2 * h)
    assert rel_err(dq, want) < 1e-4
    assert float(mx.abs(dp).max()) == 0.0


# -- gated delta -------------------------------------------------------------


def gated_delta_reference(
    q: Any, k: Any, v: Any, g: Any, beta: Any, state: Any, mask: Any
) -> tuple[Any, Any]:
    """The Metal kernel's loop: masked steps keep the state and output 0."""
    b_, t_, hk, _ = q.shape
    hv = v.shape[2]
    rep = hv // hk
    y = np.zeros((b_, t_, hv, v.shape[3]))
    s = state.copy()
    for b in range(b_):
        for h in range(hv):
            st = s[b, h]
            for t in range(t_):
                if mask is not None and not mask[b, t]:
                    continue
                st = st * (g[b, t, h] if g.ndim == 3 else g[b, t, h][None, :])
                kk = k[b, t, h // rep]
                delta = beta[b, t, h] * (v[b, t, h] - st @ kk)
                st = st + np.outer(delta, kk)
                y[b, t, h] = st @ q[b, t, h // rep]
            s[b, h] = st
    return y, s


GD_SHAPES = [(1, 1, 1, 1, 32, 8), (2, 7, 1, 2, 16, 12), (1, 70, 2, 4, 32, 16), (1, 129, 1, 1, 64, 64)]


@pytest.mark.parametrize(("b", "t", "hk", "hv", "dk", "dv"), GD_SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("gates", ["scalar", "vector"])
@pytest.mark.parametrize("masked", [False, True])
def test_gated_delta_kernel_fallback(
    b: int, t: int, hk: int, hv: int, dk: int, dv: int, dtype: str, gates: str, masked: bool
) -> None:
    if gates == "vector":
        t = min(t, 33)  # the per-token loop: a shorter sequence tests the same thing
    r = rng(t * dk + hv)
    kk = r.standard_normal((b, t, hk, dk))
    kk /= np.linalg.norm(kk, axis=-1, keepdims=True)  # normalize_qk gives unit keys
    q = to_mx(r.standard_normal((b, t, hk, dk)) * dk**-0.5, DTYPES[dtype])
    k = to_mx(kk, DTYPES[dtype])
    v = to_mx(r.standard_normal((b, t, hv, dv)), DTYPES[dtype])
    g_shape = (b, t, hv) if gates == "scalar" else (b, t, hv, dk)
    g = to_mx(r.uniform(0.2, 1.0, g_shape))
    beta = to_mx(r.uniform(0.0, 1.0, (b, t, hv)), DTYPES[dtype])
    state = to_mx(r.standard_normal((b, hv, dv, dk)) * 0.3)
    mask = mx.array(r.uniform(size=(b, t)) > 0.3) if masked else None
    y, s = gated_delta.gated_delta_kernel(q, k, v, g, beta, state, mask)
    want_y, want_s = gated_delta_reference(
        f64(q), f64(k), f64(v), f64(g), f64(beta), f64(state), None if mask is None else np.array(mask)
    )
    assert y.dtype == q.dtype and s.dtype == state.dtype
    assert rel_err(y, want_y) < TOLERANCE[dtype] and rel_err(s, want_s) < TOLERANCE["float32"] * 5


@pytest.mark.parametrize(("b", "t", "hk", "hv", "dk", "dv"), GD_SHAPES)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("inverse", ["lapack", "block_doubling"])
def test_gated_delta_chunked(
    b: int,
    t: int,
    hk: int,
    hv: int,
    dk: int,
    dv: int,
    masked: bool,
    inverse: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chunked form (the GPU path) with either triangular inverse matches the kernel's loop."""
    monkeypatch.setattr(gated_delta, "_use_lapack", lambda: inverse == "lapack")
    r = rng(t * dk + hv + 1)
    kk = r.standard_normal((b, t, hk, dk))
    kk /= np.linalg.norm(kk, axis=-1, keepdims=True)
    q, k = to_mx(r.standard_normal((b, t, hk, dk)) * dk**-0.5), to_mx(kk)
    v = to_mx(r.standard_normal((b, t, hv, dv)))
    g, beta = to_mx(r.uniform(0.2, 1.0, (b, t, hv))), to_mx(r.uniform(0.0, 2.0, (b, t, hv)))
    state = to_mx(r.standard_normal((b, hv, dv, dk)) * 0.3)
    mask = mx.array(r.uniform(size=(b, t)) > 0.3) if masked else None
    y, s = gated_delta.gated_delta_chunked(q, k, v, g, beta, state, mask)
    want_y, want_s = gated_delta_reference(
        f64(q), f64(k), f64(v), f64(g), f64(beta), f64(state), None if mask is None else np.array(mask)
    )
    assert rel_err(y, want_y) < 1e-4 and rel_err(s, want_s) < 1e-4


def test_gated_delta_chunked_handles_a_zero_gate() -> None:
    # exp underflow in the gate gives g == 0: the state is wiped, nothing is nan.
    r = rng(9)
    b, t, h, d = 1, 40, 1, 16
    q, k, v = (to_mx(r.standard_normal((b, t, h, d)) * 0.3) for _ in range(3))
    g = np.full((b, t, h), 0.9)
    g[0, 17] = 0.0
    beta = to_mx(r.uniform(0, 1, (b, t, h)))
    state = to_mx(r.standard_normal((b, h, d, d)))
    y, s = gated_delta.gated_delta_chunked(q, k, v, to_mx(g), beta, state)
    want_y, want_s = gated_delta_reference(f64(q), f64(k), f64(v), g, f64(beta), f64(state), None)
    assert rel_err(y, want_y) < 1e-4 and rel_err(s, want_s) < 1e-4


def test_gated_delta_rejects_bad_shapes() -> None:
    z = mx.zeros((1, 2, 3, 8))
    with pytest.raises(ValueError, match="multiple of key heads"):
        gated_delta.gated_delta_kernel(
            z, z, mx.zeros((1, 2, 4, 8)), mx.ones((1, 2, 4)), mx.ones((1, 2, 4)), mx.zeros((1, 4, 8, 8))
        )


def test_gated_delta_takes_the_chunked_form_on_a_cpu_with_a_fast_gemm() -> None:
    from mlx_portable.fallbacks import cpu_routes
    from mlx_portable.fallbacks import gated_delta as gd

    assert gd.choose_route(64, vector_gates=False, on_cpu=True, fast=True, fast_gemm=True) == "chunked"
    assert gd.choose_route(2, vector_gates=False, on_cpu=True, fast=True, fast_gemm=True) == "fast"
    assert gd.choose_route(64, vector_gates=False, on_cpu=True, fast=True, fast_gemm=False) == "fast"
    assert gd.choose_route(64, vector_gates=True, on_cpu=True, fast=True, fast_gemm=True) == "fast"
    assert gd.choose_route(64, vector_gates=False, on_cpu=False, fast=True, fast_gemm=True) == "fast"
    keys = mx.random.split(mx.random.key(21), 5)
    b, t, hk, hv, d = 1, 24, 1, 2, 32
    kk = mx.random.normal((b, t, hk, d), key=keys[0])
    k = kk / mx.linalg.norm(kk, axis=-1, keepdims=True)
    q = mx.random.normal((b, t, hk, d), key=keys[1]) * d**-0.5
    v = mx.random.normal((b, t, hv, 16), key=keys[2])
    g = mx.random.uniform(0.5, 1.0, (b, t, hv), key=keys[3])
    beta = mx.random.uniform(0.0, 1.0, (b, t, hv), key=keys[4])
    state = mx.zeros((b, hv, 16, d))
    cpu_routes.assume_fast_float32_gemm(True)
    try:
        y, s = gd.gated_delta_fastest(q, k, v, g, beta, state)
    finally:
        cpu_routes.assume_fast_float32_gemm(None)
    want_y, want_s = gd.gated_delta_recurrent(q, k, v, g, beta, state)
    assert float(mx.abs(y - want_y).max()) < 1e-4
    assert float(mx.abs(s - want_s).max()) < 1e-4
