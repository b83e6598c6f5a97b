"""``graph_depends`` and ``nn_relu2``: small mlx APIs that mlx-lm 0.32 uses and
mlx < 0.29 lacks.

``graph_depends`` -- why: mlx-lm's ``BatchRotatingKVCache`` (batch generation
with sliding-window models such as Gemma and Mistral) calls
``mx.depends(keys, (left_padding, offset))`` so that the bookkeeping arrays
are evaluated together with the keys.  On mlx < 0.29 that dies with::

    AttributeError: module 'mlx.core' has no attribute 'depends'

The outputs of ``mx.depends`` are identical to its inputs but carry the
dependencies in their graph, so evaluating an output evaluates them too;
nothing is evaluated when it is called.  The stand-in builds each output as
``mx.where(flag, x, x)`` where ``flag`` is ``mx.any`` of an empty slice of
every dependency (always ``False``): the values, dtype, shape, signed zeros
and NaNs of ``x`` are kept exactly, and the dependencies join the graph
without being read.  Its cost is one elementwise copy of each input, where
mlx's own primitive copies nothing.  (An earlier stand-in evaluated the
dependencies at once with ``mx.async_eval``; that forced, among others, a
float16 ``gather_mm`` these versions' CPU cannot run: ``[GatherMM::eval]
Currently only supports float32``.)

``nn_relu2`` -- why: mlx-lm 0.32's BitNet, nanochat, Nemotron-H and RWKV-7
call ``nn.relu2`` / ``nn.ReLU2`` (the squared ReLU, added in mlx 0.29.0).  On
older mlx the model cannot even be built::

    AttributeError: module 'mlx.nn' has no attribute 'relu2'

The shim adds ``relu2(x) = relu(x)**2`` and the ``ReLU2`` module where
missing.  It waits for ``mlx.nn`` to be imported, so ``import mlx_portable``
does not import it.

Both: mlx < 0.29.0, every backend; each name is added only where missing.
Upstream: ml-explore/mlx 0.29.0 added ``mx.depends`` and ``nn.relu2``.
"""

from __future__ import annotations

from ..registry.registry import Patch, obsolete

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext, Verdict

__all__ = ["PATCHES", "graph_depends", "nn_relu2"]


def _depends_check(ctx: PatchContext) -> Verdict | None:
    if hasattr(ctx.mx, "depends"):
        return obsolete(f"mlx {ctx.mlx_version} has mx.depends")
    return None


def _depends_apply(ctx: PatchContext) -> None:
    mx = ctx.mx

    def depends(inputs: Any, dependencies: Any) -> Any:
        """Return ``inputs`` made to depend on ``dependencies`` in the graph (nothing is evaluated).

        Stand-in for mlx >= 0.29's ``mx.depends`` (added by mlx-portable):
        the outputs equal the inputs exactly; evaluating them evaluates the
        dependencies.
        """
        deps = list(dependencies) if isinstance(dependencies, (list, tuple)) else [dependencies]
        if not deps or any(not isinstance(d, mx.array) for d in deps):
            bad = next((type(d).__name__ for d in deps if not isinstance(d, mx.array)), "nothing")
            raise TypeError(f"depends(): dependencies must be arrays, got {bad}")
        many = isinstance(inputs, (list, tuple))
        items = list(inputs) if many else [inputs]
        if any(not isinstance(x, mx.array) for x in items):
            bad = next(type(x).__name__ for x in items if not isinstance(x, mx.array))
            raise TypeError(f"depends(): inputs must be arrays, got {bad}")
        flag = mx.array(False)
        for d in deps:
            flag = mx.logical_or(flag, mx.any(d.reshape(-1)[:0]))
        outs = [mx.where(flag, x, x) for x in items]
        return outs if many else outs[0]  # a list for any sequence, as mlx's

    ctx.set_attr(mx, "depends", depends)


graph_depends = Patch(
    name="graph_depends",
    summary="adds mx.depends (outputs equal the inputs and carry the dependencies in the graph, lazily)",
    why=(
        "mlx-lm 0.32's BatchRotatingKVCache calls mx.depends: AttributeError: module 'mlx.core' has "
        "no attribute 'depends' on mlx < 0.29.0 (batch generation with sliding-window models)."
    ),
    apply=_depends_apply,
    check=_depends_check,
    mlx_versions="<0.29.0",
    when="import",
    upstream="https://github.com/ml-explore/mlx/releases/tag/v0.29.0",
)


def _relu2_check(ctx: PatchContext) -> Verdict | None:
    nn = ctx.module
    if nn is not None and hasattr(nn, "relu2") and hasattr(nn, "ReLU2"):
        return obsolete(f"mlx {ctx.mlx_version} has nn.relu2 and nn.ReLU2")
    return None


def _relu2_apply(ctx: PatchContext) -> None:
    nn = ctx.module
    assert nn is not None
    mx = ctx.mx

    def relu2(x: Any) -> Any:
        """Squared ReLU, ``max(x, 0) ** 2`` (mlx >= 0.29's ``nn.relu2``, added by mlx-portable)."""
        return mx.square(mx.maximum(x, 0))

    class ReLU2(nn.Module):  # type: ignore[misc, name-defined]
        """Applies the squared ReLU (mlx >= 0.29's ``nn.ReLU2``, added by mlx-portable)."""

        def __call__(self, x: Any) -> Any:
            return relu2(x)

    if not hasattr(nn, "relu2"):
        ctx.set_attr(nn, "relu2", relu2)
    if not hasattr(nn, "ReLU2"):
        ctx.set_attr(nn, "ReLU2", ReLU2)


nn_relu2 = Patch(
    name="nn_relu2",
    summary="adds mlx.nn.relu2 and mlx.nn.ReLU2 (squared ReLU)",
    why=(
        "mlx-lm 0.32's BitNet, nanochat, Nemotron-H and RWKV-7 call nn.relu2: AttributeError: module "
        "'mlx.nn' has no attribute 'relu2' on mlx < 0.29.0."
    ),
    apply=_relu2_apply,
    check=_relu2_check,
    mlx_versions="<0.29.0",
    when="import:mlx.nn",
    upstream="https://github.com/ml-explore/mlx/releases/tag/v0.29.0",
)

PATCHES = (graph_depends, nn_relu2)
