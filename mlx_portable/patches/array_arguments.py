"""Arguments one mlx accepts and another rejects: boolean-mask assignment, array scalars in ``tile``.

Found by a client model or by the grown behaviour sweep
(``tools.apidiff.behaviour``, the ``edge_*`` probes); the version ranges
were measured on the real mlx-cpu wheels of every matrix mlx (0.26.5 0.27.1
0.28.0 0.29.4 0.30.0 0.30.6 0.31.2 0.32.0 0.32.4), and where a fix's first
release lies between two matrix versions the upstream commit names it.

``bool_mask_assign`` -- why: on mlx < 0.30.0 ``x[mask] = values`` with a
boolean mask raises ``ValueError: [broadcast_shapes] ...`` (an array of
values) or ``SystemError: nanobind ... could not be translated`` (a scalar);
mlx 0.30.0 added ``masked_scatter`` for it (ml-explore/mlx#2832).  The shim
computes the same result with ``cumsum``/``take``/``where`` (values taken in
order for the true positions, broadcast as ``masked_scatter`` does) and
writes it with ``x[:] = ...``, with ``masked_scatter``'s error texts.

``tile_array_reps`` -- why: mlx 0.32.4's ``mx.tile`` rejects an array scalar
among the repetitions (``mx.tile(a, [mx.array(2.0), 1])``: ``TypeError:
tile(): incompatible function arguments``) that every earlier mlx accepted,
converting it as ``int()`` does (qwen2_vl: old code on new mlx).  The shim
converts array scalars (and a 0-d array as the whole ``reps``) with ``int()``.

All: every backend (the CPU stream exists on every backend, and the Python
argument handling is common); each applies at import and only adds checks.
"""

from __future__ import annotations

from ..registry.registry import Patch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..registry.registry import PatchContext

__all__ = [
    "PATCHES",
    "bool_mask_assign",
    "masked_assign",
    "tile_array_reps",
]

_PLAIN_KEYS = (int, slice, type(None), type(Ellipsis))


# -- bool_mask_assign -------------------------------------------------------------------


def _mask_of(mx: Any, key: Any) -> Any:
    """``key`` as a boolean mx.array when it is a boolean mask (mlx or NumPy), else None."""
    if isinstance(key, mx.array):
        return key if key.dtype == mx.bool_ else None
    if not isinstance(key, (tuple, list, *_PLAIN_KEYS)) and str(getattr(key, "dtype", "")) == "bool":
        return mx.array(key)
    return None


def masked_assign(mx: Any, x: Any, mask: Any, values: Any) -> Any:
    """What mlx >= 0.30's ``masked_scatter(x, mask, values)`` computes, from older ops."""
    if mask.ndim == 0:
        raise ValueError("[masked_scatter] Scalar masks are not supported.")
    if mask.ndim > x.ndim:
        raise ValueError("[masked_scatter] The mask cannot have more dimensions than the target.")
    unmasked = x.ndim - mask.ndim
    values = values if isinstance(values, mx.array) else mx.array(values)
    if values.ndim > unmasked + 1:
        raise ValueError(
            "[masked_scatter] Value array shape must be broadcastable with the last "
            f"{unmasked} dimensions of the input."
        )
    if tuple(mask.shape) != tuple(x.shape[: mask.ndim]):
        raise ValueError(
            "[masked_scatter] The boolean mask should have the same shape as the beginning of the "
            f"indexed array but the mask has shape {tuple(mask.shape)} and the array has shape "
            f"{tuple(x.shape)}"
        )
    trailing = tuple(x.shape[mask.ndim :])
    values = values.astype(x.dtype)
    if values.ndim < unmasked + 1:
        values = values.reshape((1,) * (unmasked + 1 - values.ndim) + tuple(values.shape))
        values = mx.broadcast_to(values, (mask.size, *trailing))
    elif tuple(values.shape[1:]) != trailing:
        values = mx.broadcast_to(values, (values.shape[0], *trailing))
    if mask.size == 0 or values.shape[0] == 0:
        return x
    flat = mask.reshape(-1)
    rows = mx.minimum(mx.cumsum(flat.astype(mx.int32)) - 1, values.shape[0] - 1)
    rows = mx.maximum(rows, 0)
    picked = mx.take(values, rows, axis=0).reshape(x.shape)
    return mx.where(mask.reshape(tuple(mask.shape) + (1,) * unmasked), picked, x)


def _mask_apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    setitem = mx.array.__setitem__
    array = mx.array
    everything = slice(None)

    def __setitem__(self: Any, key: Any, value: Any) -> None:
        """``mx.array.__setitem__`` with boolean-mask assignment (mlx >= 0.30's, added by mlx-portable)."""
        if isinstance(key, _PLAIN_KEYS) or (type(key) is array and key.dtype != mx.bool_):
            setitem(self, key, value)
            return
        mask = _mask_of(mx, key)
        if mask is None:
            setitem(self, key, value)
            return
        setitem(self, everything, masked_assign(mx, self, mask, value))

    ctx.set_attr(array, "__setitem__", __setitem__)


bool_mask_assign = Patch(
    name="bool_mask_assign",
    summary="x[bool_mask] = values (values in order for the true positions, as masked_scatter)",
    why=(
        "x[mask] = values: ValueError: [broadcast_shapes] ... (SystemError for a scalar) on "
        "mlx < 0.30.0 (mlx-vlm muse_glimmer)."
    ),
    apply=_mask_apply,
    mlx_versions="<0.30.0",
    when="import",
    upstream="https://github.com/ml-explore/mlx/pull/2832",
)


# -- tile_array_reps --------------------------------------------------------------------


def _tile_apply(ctx: PatchContext) -> None:
    mx = ctx.mx
    array = mx.array
    tile = mx.tile

    def tile_(a: Any, reps: Any, /, *, stream: Any = None) -> Any:
        """``mx.tile`` accepting array scalars among ``reps``, as mlx < 0.32.4 did (mlx-portable)."""
        if type(reps) is array:
            if reps.ndim == 0:
                reps = int(reps)
        elif type(reps) in (list, tuple):
            for r in reps:
                if type(r) is array:
                    reps = [int(r) if type(r) is array and r.ndim == 0 else r for r in reps]
                    break
        return tile(a, reps, stream=stream)

    ctx.set_attr(mx, "tile", tile_)


tile_array_reps = Patch(
    name="tile_array_reps",
    summary="mx.tile accepts array scalars among the repetitions again",
    why=(
        "mx.tile(a, [mx.array(2.0), 1]): TypeError: tile(): incompatible function arguments on "
        "mlx 0.32.4 (older mlx accepted it; qwen2_vl)."
    ),
    apply=_tile_apply,
    mlx_versions=">=0.32.4",
    when="import",
    upstream="https://github.com/ml-explore/mlx/releases/tag/v0.32.4",
)


PATCHES = (bool_mask_assign, tile_array_reps)
