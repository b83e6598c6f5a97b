"""The tuner's KL and JS divergence losses (``mlx_lm.tuner.losses``) without Metal.

The Metal kernels compute, per row of logits, in float32 and round once to
the logits' dtype:

* ``kl_div_loss(q, p) = sum softmax(p) * (log_softmax(p) - log_softmax(q))``
* ``js_div_loss(q, p) = (KL(p || m) + KL(q || m)) / 2`` with ``m = (softmax(p) + softmax(q)) / 2``

and their backward passes give the gradient for ``logits_q`` only (the
teacher ``logits_p`` gets zeros).  mlx-lm's own non-Metal path computes in
the logits' dtype (bfloat16 sums over the vocabulary) and forms ``log m``
as ``log_p + log(1 + exp(log_q - log_p))``, which overflows to ``nan`` as
soon as the two distributions disagree by more than ~88 nats on one token
(a confident student against a confident teacher).  Here ``log m`` is a
``logaddexp``, the math is float32, and ``logits_p`` is a constant for
autodiff, as in the kernels.
"""

from __future__ import annotations

import math

import mlx.core as mx

__all__ = ["js_div_loss", "kl_div_loss"]

_LOG2 = math.log(2.0)


def _log_softmax(logits: mx.array) -> mx.array:
    x = logits.astype(mx.float32)
    return x - mx.logsumexp(x, axis=-1, keepdims=True)


def _check(logits_q: mx.array, logits_p: mx.array) -> None:
    if logits_q.shape != logits_p.shape:
        raise ValueError(f"logits_q {logits_q.shape} and logits_p {logits_p.shape} must have the same shape")


def kl_div_loss(logits_q: mx.array, logits_p: mx.array) -> mx.array:
    """KL(p || q) per row, in the dtype of ``logits_q``; differentiable in ``logits_q``."""
    _check(logits_q, logits_p)
    log_q = _log_softmax(logits_q)
    log_p = mx.stop_gradient(_log_softmax(logits_p))
    kl = mx.sum(mx.exp(log_p) * (log_p - log_q), axis=-1)
    return kl.astype(logits_q.dtype)


def js_div_loss(logits_q: mx.array, logits_p: mx.array) -> mx.array:
    """Jensen-Shannon divergence of p and q per row, in the dtype of ``logits_q``."""
    _check(logits_q, logits_p)
    log_q = _log_softmax(logits_q)
    log_p = mx.stop_gradient(_log_softmax(logits_p))
    log_m = mx.logaddexp(log_p, log_q) - _LOG2
    kl_p = mx.sum(mx.exp(log_p) * (log_p - log_m), axis=-1)
    kl_q = mx.sum(mx.exp(log_q) * (log_q - log_m), axis=-1)
    return (0.5 * (kl_p + kl_q)).astype(logits_q.dtype)
