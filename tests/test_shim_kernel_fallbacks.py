"""The kernels_* patches: where they apply, what they route, what they restore.

Real mlx-lm on the real CPU wheel.  Metal is simulated in the tests named so,
by making the per-call check say a Metal kernel can run: the original
mlx-lm function must then be the one called (it fails here with mlx's own
error, which is how the test knows).
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
from types import SimpleNamespace
from typing import Any

import pytest
from helpers.subproc import child_env, run_python

mx = pytest.importorskip("mlx.core")
np = pytest.importorskip("numpy")
# find_spec, not an import: on mlx < 0.31.2 mlx-lm 0.32 imports only with mlx-portable active.
if importlib.util.find_spec("mlx_lm") is None:
    pytest.skip("mlx_lm is not installed", allow_module_level=True)

import mlx_portable  # noqa: E402
from mlx_portable.backend_table import backend_class  # noqa: E402
from mlx_portable.fallbacks import dispatch  # noqa: E402
from mlx_portable.patches.mlx_lm import bitlinear_fallback as kernels_bitlinear  # noqa: E402
from mlx_portable.patches.mlx_lm import gated_delta as kernels_gated_delta  # noqa: E402
from mlx_portable.patches.mlx_lm import muse_spark_kernels_fallback as kernels_muse_spark  # noqa: E402
from mlx_portable.registry.registry import PatchContext, PatchRecord  # noqa: E402

TIMEOUT = 240


def _status(name: str) -> Any:
    return next(p for p in mlx_portable.report().patches if p.name == name)


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        pytest.skip(f"this mlx-lm has no {exc.name}")


def _env() -> dict[str, str]:
    return child_env(clear=())


def _child(code: str) -> subprocess.CompletedProcess[str]:
    return run_python(code, env=_env(), timeout=TIMEOUT)


def _metal_error() -> str:
    return (
        "No GPU back-end."
        if tuple(int(p) for p in mx.__version__.split(".")[:2]) < (0, 29)
        else "No Metal back-end."
    )


# -- BitLinear ---------------------------------------------------------------


def test_bitlinear_routes_to_the_fallback_and_deactivate_restores_it(activated: None) -> None:
    module = _import("mlx_lm.models.bitlinear_layers")
    original = mlx_portable.get_original(module.BitLinear, "execute_matmul_kernel")
    assert _status("bitlinear_fallback").status == "applied"
    layer = module.BitLinear(64, 8, bias=True)
    layer.weight = mx.array(np.full((2, 64), 0b10_10_10_10, dtype=np.uint8))  # every weight +1
    layer.bias = mx.arange(8).astype(mx.float32)
    y = layer(mx.ones((3, 64)))
    assert np.array(y).tolist() == [[64.0 + i for i in range(8)]] * 3
    mlx_portable.deactivate()
    assert module.BitLinear.execute_matmul_kernel is original
    with pytest.raises(RuntimeError, match=r"\[metal_kernel\]"):
        mx.eval(layer(mx.ones((3, 64))))
    mlx_portable.activate()


def test_simulated_metal_bitlinear_keeps_the_metal_kernel(
    activated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _import("mlx_lm.models.bitlinear_layers")
    monkeypatch.setattr(dispatch, "metal_kernels_usable", lambda: True)
    layer = module.BitLinear(64, 8, bias=False)
    # The original kernel call is what runs: here it raises mlx's own error.
    with pytest.raises(RuntimeError, match=_metal_error()):
        mx.eval(layer(mx.ones((1, 64))))


def _ctx(module: Any) -> PatchContext:
    return PatchContext(PatchRecord(kernels_bitlinear.bitlinear_fallback), backend_class("cpu")(), module)


def test_bitlinear_check_skips_an_unexpected_signature_and_obsoletes_an_own_fallback() -> None:
    class Changed:
        def execute_matmul_kernel(self, x: Any, packed_weights: Any, scale: Any) -> Any: ...

    verdict = kernels_bitlinear._check(_ctx(SimpleNamespace(BitLinear=Changed)))
    assert (
        verdict is not None
        and verdict.status == "skipped"
        and "(self, x, packed_weights, scale)" in verdict.reason
    )

    class Fixed:
        def execute_matmul_kernel(self, x: Any, packed_weights: Any) -> Any:
            return x if mx.metal.is_available() else packed_weights

    verdict = kernels_bitlinear._check(_ctx(SimpleNamespace(BitLinear=Fixed)))
    assert verdict is not None and verdict.status == "obsolete"
    verdict = kernels_bitlinear._check(_ctx(SimpleNamespace()))
    assert verdict is not None and verdict.status == "skipped" and "no BitLinear" in verdict.reason


# -- mlx_lm.kernels ----------------------------------------------------------


def test_muse_spark_kernels_are_routed_everywhere_they_are_bound(activated: None) -> None:
    kernels = _import("mlx_lm.kernels")
    muse = _import("mlx_lm.models.muse_spark")
    assert _status("muse_spark_kernels_fallback").status == "applied"
    for name in kernels_muse_spark.FUNCTIONS:
        routed = getattr(kernels, name)
        assert getattr(muse, name, routed) is routed, name
        assert routed.__wrapped__ is mlx_portable.get_original(kernels, name)
    qkvg = mx.random.normal((1, 3, 2 * (2 + 1) * 16))
    q, k = muse.qk_norm(qkvg, n_heads=2, n_kv_heads=1, head_dim=16, eps=1e-5, query_scale=1.0)
    assert q.shape == (1, 3, 2, 16) and k.shape == (1, 3, 1, 16)


@pytest.mark.slow
def test_muse_spark_imported_before_activation_is_rebound_too() -> None:
    """A module that copied the kernels by name before the patch gets the routed ones."""
    done = _child(
        "import mlx_portable, mlx.core as mx\n"
        "try:\n"
        "    import mlx_lm.models.muse_spark as m\n"
        "except Exception as exc:\n"
        "    print('IMPORT', type(exc).__name__, exc); raise SystemExit(0)\n"
        "mlx_portable.activate()\n"
        "import mlx_lm.kernels as k\n"
        "print('SAME', m.qk_norm is k.qk_norm and hasattr(m.qk_norm, '__wrapped__'))\n"
        "i, w = m.expert_routing(mx.zeros((2, 4)), mx.zeros(4), top_k=2, multiplier=1.0, score_eps=0.0,"
        " route_scale=1.0)\n"
        "print('ROUTE', i.tolist())\n"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    if "IMPORT" in done.stdout:
        pytest.skip(
            f"mlx_lm.models.muse_spark cannot be imported without mlx-portable here: {done.stdout.strip()}"
        )
    assert "SAME True" in done.stdout and "ROUTE [[0, 1], [0, 1]]" in done.stdout


def test_simulated_metal_muse_kernels_keep_the_metal_kernel(
    activated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernels = _import("mlx_lm.kernels")
    monkeypatch.setattr(dispatch, "metal_kernels_usable", lambda: True)
    with pytest.raises(RuntimeError, match=_metal_error()):
        mx.eval(
            kernels.expert_routing(
                mx.zeros((1, 4)), mx.zeros(4), top_k=1, multiplier=1.0, score_eps=0.0, route_scale=1.0
            )
        )


def test_muse_check_skips_changed_signatures() -> None:
    def qk_norm(qkvg: Any, *, n_heads: int) -> Any: ...

    from mlx_portable.fallbacks import muse_kernels

    fake = SimpleNamespace(**{n: getattr(muse_kernels, n) for n in kernels_muse_spark.FUNCTIONS})
    fake.qk_norm = qk_norm
    ctx = PatchContext(
        PatchRecord(kernels_muse_spark.muse_spark_kernels_fallback), backend_class("cpu")(), fake
    )
    verdict = kernels_muse_spark._check(ctx)
    assert verdict is not None and verdict.status == "skipped" and "mlx_lm.kernels.qk_norm" in verdict.reason


def test_muse_kernels_patch_waits_where_mlx_lm_has_no_kernels_package(activated: None) -> None:
    import importlib.util

    if importlib.util.find_spec("mlx_lm.kernels") is not None:
        pytest.skip("this mlx-lm has mlx_lm.kernels")
    entry = _status("muse_spark_kernels_fallback")
    assert entry.status == "deferred" and "mlx_lm.kernels" in entry.reason


# -- tuner losses ------------------------------------------------------------


CONFIDENT = (
    "import mlx.core as mx\n"
    "mx.random.seed(3)\n"
    "q = mx.random.normal((4, 1000)) * 20\n"
    "p = mx.random.normal((4, 1000)) * 20\n"
)


@pytest.mark.slow
@pytest.mark.parametrize("portable", [True, False])
def test_js_divergence_is_finite_with_and_nan_without(portable: bool) -> None:
    activate = "import mlx_portable; mlx_portable.activate()\n" if portable else ""
    done = _child(
        activate
        + CONFIDENT
        + (
            "try:\n"
            "    from mlx_lm.tuner.losses import js_div_loss\n"
            "except Exception as exc:\n"
            "    print('IMPORT', type(exc).__name__); raise SystemExit(0)\n"
            "print('NAN', bool(mx.isnan(js_div_loss(q, p)).any()))\n"
        )
    )
    assert done.returncode == 0, done.stderr[-2000:]
    if "IMPORT" in done.stdout:
        assert not portable, done.stdout
        pytest.skip(f"mlx-lm cannot be imported without mlx-portable on mlx {mx.__version__}")
    assert ("NAN False" if portable else "NAN True") in done.stdout


def test_losses_route_and_teacher_gets_no_gradient(activated: None) -> None:
    losses = _import("mlx_lm.tuner.losses")
    assert _status("tuner_divergence_losses").status == "applied"
    q = mx.random.normal((2, 50)).astype(mx.bfloat16)
    p = mx.random.normal((2, 50)).astype(mx.bfloat16)
    assert losses.kl_div_loss(q, p).dtype == mx.bfloat16
    _, dp = mx.grad(lambda a, b: losses.js_div_loss(a, b).astype(mx.float32).sum(), argnums=(0, 1))(q, p)
    assert float(mx.abs(dp.astype(mx.float32)).max()) == 0.0


# -- gated delta -------------------------------------------------------------


def _gd_inputs() -> tuple[Any, ...]:
    mx.random.seed(0)
    q = mx.random.normal((1, 5, 1, 32)) * 0.2
    k = mx.random.normal((1, 5, 1, 32)) * 0.2
    v = mx.random.normal((1, 5, 2, 8))
    g = mx.random.uniform(0.5, 1.0, (1, 5, 2))
    beta = mx.random.uniform(0.0, 1.0, (1, 5, 2))
    return q, k, v, g, beta, mx.zeros((1, 2, 8, 32))


@pytest.mark.slow
@pytest.mark.parametrize("portable", [True, False])
def test_gated_delta_kernel_works_with_and_fails_without(portable: bool) -> None:
    activate = "import mlx_portable; mlx_portable.activate()\n" if portable else ""
    done = _child(
        activate
        + (
            "import mlx.core as mx\n"
            "try:\n"
            "    from mlx_lm.models.gated_delta import gated_delta_kernel, gated_delta_ops\n"
            "except Exception as exc:\n"
            "    print('IMPORT', type(exc).__name__); raise SystemExit(0)\n"
            "q = mx.random.normal((1, 5, 1, 32)); k = q / mx.linalg.norm(q, axis=-1, keepdims=True)\n"
            "v = mx.random.normal((1, 5, 2, 8)); g = mx.full((1, 5, 2), 0.9); b = mx.full((1, 5, 2), 0.5)\n"
            "s = mx.zeros((1, 2, 8, 32))\n"
            "y, st = gated_delta_kernel(q, k, v, g, b, s)\n"
            "y2, st2 = gated_delta_ops(q, k, v, g, b, s)\n"
            "print('DIFF', float(mx.abs(y - y2).max()), float(mx.abs(st - st2).max()))\n"
        )
    )
    if "IMPORT" in done.stdout:
        assert not portable, done.stdout
        pytest.skip(f"mlx-lm cannot be imported without mlx-portable on mlx {mx.__version__}")
    if portable:
        assert done.returncode == 0, done.stderr[-2000:]
        diff = [float(x) for x in done.stdout.split("DIFF ")[1].split()]
        assert max(diff) < 1e-5
    else:
        assert done.returncode != 0
        assert "TypeError: 'NoneType' object is not callable" in done.stderr


@pytest.mark.slow_every_mlx
def test_simulated_metal_gated_delta_keeps_the_kernel_path(
    activated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _import("mlx_lm.models.gated_delta")
    monkeypatch.setattr(dispatch, "metal_kernels_usable", lambda: True)
    # Metal usable now, but this process built no kernels (None): the fallback
    # still runs, where the original would call None.
    y, _ = module.gated_delta_kernel(*_gd_inputs())
    assert y.shape == (1, 5, 2, 8)
    monkeypatch.setattr(module, "_gated_delta_kernel", lambda **kw: ("metal", kw["grid"]))
    out = module.gated_delta_kernel(*_gd_inputs())
    assert out[0] == "metal"


def test_gated_delta_check_skips_without_the_kernel_function() -> None:
    ctx = PatchContext(
        PatchRecord(kernels_gated_delta.gated_delta_kernel_fallback),
        backend_class("cpu")(),
        SimpleNamespace(),
    )
    verdict = kernels_gated_delta._check(ctx)
    assert verdict is not None and verdict.status == "skipped"


# -- lazy kernel build (mlx < 0.32) -------------------------------------------


def test_metal_kernel_lazy_build_status_matches_this_mlx(activated: None) -> None:
    entry = _status("metal_kernel_lazy_build")
    version = tuple(int(p) for p in mx.__version__.split(".")[:2])
    if version >= (0, 32):
        assert entry.status == "obsolete"
        return
    assert entry.status == "applied"
    kernel = mx.fast.metal_kernel(name="k", input_names=["a"], output_names=["b"], source="b[0] = a[0];")
    with pytest.raises(RuntimeError, match=r"\[metal_kernel\] " + _metal_error()):
        kernel(
            inputs=[mx.ones(1)],
            grid=(1, 1, 1),
            threadgroup=(1, 1, 1),
            output_shapes=[(1,)],
            output_dtypes=[mx.float32],
        )


def test_gated_delta_ops_runs_on_every_mlx(activated: None) -> None:
    """mlx-lm's gated_delta_ops hands mask=None to mx.compile; mlx < 0.29 rejects it (compile_constants)."""
    module = _import("mlx_lm.models.gated_delta")
    from mlx_portable.fallbacks.gated_delta import gated_delta_ops

    entry = _status("compile_constants")
    old_mlx = tuple(int(p) for p in mx.__version__.split(".")[:2]) < (0, 29)
    assert entry.status == ("applied" if old_mlx else "obsolete"), entry
    q, k, v, g, beta, state = _gd_inputs()
    mask = mx.array([[True, False, True, True, False]])
    for m in (None, mask):
        y, _state = module.gated_delta_update(
            q, k, v, mx.log(g), beta, mx.zeros((2,)), mx.zeros((2,)), state, m
        )
        assert y.shape == (1, 5, 2, 8) and bool(mx.isfinite(y).all())
        if not old_mlx:
            # Same contract as mlx-lm's own loop (masked steps still output y).
            want_y, want_s = mlx_portable.get_original(module, "gated_delta_ops")(q, k, v, g, beta, state, m)
            got_y, got_s = gated_delta_ops(q, k, v, g, beta, state, m)
            assert float(mx.abs(got_y - want_y).max()) < 1e-6 and float(mx.abs(got_s - want_s).max()) < 1e-6


def test_gated_delta_ops_fastest_routes_mlx_lm_loop_with_the_same_values(activated: None) -> None:
    module = _import("mlx_lm.models.gated_delta")
    from mlx_portable.fallbacks import gated_delta

    entry = _status("gated_delta_ops_fastest")
    assert entry.status == "applied", entry  # every mlx (compile_constants covers mask=None below 0.29)
    original = mlx_portable.get_original(module, "gated_delta_ops")
    assert module.gated_delta_ops is not original
    r = mx.random.key(3)
    b, t, hk, hv, d = 1, 40, 1, 2, 32  # long enough for the chunked form where it is chosen
    keys = mx.random.split(r, 5)
    kk = mx.random.normal((b, t, hk, d), key=keys[0])
    k = kk / mx.linalg.norm(kk, axis=-1, keepdims=True)
    q = mx.random.normal((b, t, hk, d), key=keys[1]) * d**-0.5
    v = mx.random.normal((b, t, hv, 16), key=keys[2])
    g = mx.random.uniform(0.5, 1.0, (b, t, hv), key=keys[3])
    beta = mx.random.uniform(0.0, 1.0, (b, t, hv), key=keys[4])
    state = mx.zeros((b, hv, 16, d))
    route = gated_delta.choose_route(
        t,
        vector_gates=False,
        on_cpu=mx.default_device() == mx.cpu,
        fast=hasattr(mx.fast, "gated_delta_update"),
    )
    got_y, got_s = module.gated_delta_ops(q, k, v, g, beta, state)
    want_y, want_s = gated_delta.gated_delta_recurrent(q, k, v, g, beta, state)  # the loop, in float32
    assert float(mx.abs(got_y - want_y).max()) < 1e-4, route
    assert float(mx.abs(got_s - want_s).max()) < 1e-4, route
    loop_y, _ = original(q, k, v, g, beta, state)  # mlx-lm's own loop (mask=None: compile_constants)
    assert float(mx.abs(got_y - loop_y).max()) < 1e-4, route
