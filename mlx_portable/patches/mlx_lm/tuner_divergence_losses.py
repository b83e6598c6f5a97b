"""``tuner_divergence_losses``: the tuner's KL and JS divergences, right on every device.

Why: ``mlx_lm.tuner.losses`` (distillation) computes ``kl_div_loss`` and
``js_div_loss`` with Metal kernels built at import time, but only if Metal
could run *then*; its other path is plain ops in the logits' dtype.  Off
Metal that path

* returns ``nan`` from ``js_div_loss`` as soon as student and teacher
  disagree strongly on one token: it forms ``log m`` as
  ``log_p + log(1 + exp(log_q - log_p))`` and ``exp`` overflows past ~88
  nats (reproduced on the CPU with float32 logits of scale 20);
* sums softmax terms over the vocabulary in bfloat16 for bfloat16 logits
  (~2 % error at a 32k vocabulary, where the kernel sums in float32);
* gives the teacher logits a gradient, where the kernels give zeros.

And on a Mac where the default device was the CPU at import, switching to
the GPU later calls the ``None`` kernel: ``TypeError: 'NoneType' object is
not callable``.  This patch replaces both functions with ones that call the
original where the Metal kernels exist and can run now, and otherwise
``mlx_portable.fallbacks.losses``: float32, ``logaddexp``, teacher logits
held constant, one rounding.

Which: every mlx; mlx-lm with ``kl_div_loss``/``js_div_loss`` (0.31.2 and
0.32.2 in the matrix); CUDA and CPU, and Metal with the CPU default device.
Upstream: ml-explore/mlx-lm ``mlx_lm/tuner/losses.py``.
"""

from __future__ import annotations

from ...registry.registry import Patch, PatchContext, Verdict
from .kernels_checks import check_callable, kernels_usable, route_functions

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["PATCHES", "tuner_divergence_losses"]

MODULE = "mlx_lm.tuner.losses"
_KERNELS = {
    "kl_div_loss": ("_kl_forward_kernel", "_kl_backward_kernel"),
    "js_div_loss": ("_js_forward_kernel", "_js_backward_kernel"),
}


def _expected(logits_q: Any, logits_p: Any) -> Any:  # the signature patched
    raise NotImplementedError


def _check(ctx: PatchContext) -> Verdict | None:
    for name in _KERNELS:
        verdict = check_callable(ctx.module, name, _expected, MODULE)
        if verdict is not None:
            return verdict
    return None


def _apply(ctx: PatchContext) -> None:
    from ...fallbacks import dispatch, losses

    module = ctx.module
    routes = [
        (name, getattr(losses, name), kernels_usable(module, kernels, dispatch.usable_now))
        for name, kernels in _KERNELS.items()
    ]
    route_functions(ctx, module, routes)


tuner_divergence_losses = Patch(
    name="tuner_divergence_losses",
    summary="mlx_lm.tuner.losses kl_div_loss/js_div_loss: float32, nan-free, no teacher gradient off Metal",
    why=(
        "Off Metal, mlx-lm's JS divergence returns nan for confident distributions (exp overflow), "
        "sums in bfloat16, and a device switch after import calls a None kernel."
    ),
    apply=_apply,
    check=_check,
    when=f"activate:{MODULE}",
    upstream="ml-explore/mlx-lm mlx_lm/tuner/losses.py",
)

PATCHES = (tuner_divergence_losses,)
