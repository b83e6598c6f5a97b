"""Which backend this process runs on: one choice, one cache, shared by everyone.

Priority is the backend table's order (Metal, then CUDA, then CPU);
``MLX_PORTABLE_BACKEND`` or ``activate(backend=...)`` names one backend or an
order.  Every probe's answer is kept with its reason so the report can say
why each backend was or was not picked.

:func:`current_backend`, ``activate()``, ``report()`` and the patches (through
``PatchContext.backend``) all read the same cached :class:`Selection`: once
``activate()`` has chosen, changing ``MLX_PORTABLE_BACKEND`` changes nothing
until ``deactivate()``, so the backend named, the one reported and the device
the patches set cannot disagree.
"""

from __future__ import annotations

import _thread

from ..backend_table import backend_class, backend_names
from ..errors import BackendUnavailableError
from ..settings import ENV_BACKEND, Settings, read_settings
from ._common import logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from .protocol import Backend
    from .results import ProbeResult

__all__ = [
    "Selection",
    "cached_selection",
    "current_backend",
    "current_selection",
    "pin",
    "reset_current_backend",
    "select_backend",
]


class Selection:
    """The chosen backend with every probe made on the way."""

    __slots__ = ("backend", "forced", "probes")

    def __init__(self, backend: Backend, probes: list[ProbeResult], forced: bool) -> None:
        self.backend = backend
        self.probes = probes
        self.forced = forced


def select_backend(
    order: Sequence[str] | None = None,
    *,
    forced: bool | None = None,
    mx: Any | None = None,
    settings: Settings | None = None,
) -> Selection:
    """Pick the first available backend in ``order``.

    In automatic mode (no ``MLX_PORTABLE_BACKEND``) CPU always answers.  When
    the order was given explicitly and none of it is available, raise
    :class:`BackendUnavailableError` with each probe's reason and a remedy.
    """
    if order is None:
        settings = settings or read_settings()
        order, forced = settings.backend_order, settings.backend_forced
    forced = bool(forced) if forced is not None else tuple(order) != backend_names()
    by_name = {name: backend_class(name)(mx) for name in backend_names()}
    probes = {name: by_name[name].probe() for name in backend_names()}
    for name in order:
        result = probes[name]
        if result.available:
            logger.debug("backend %s chosen: %s", name, result.reason)
            return Selection(by_name[name], list(probes.values()), forced)
        logger.debug("backend %s not chosen: %s", name, result.reason)
    failed = [probes[name] for name in order]
    first = failed[0]
    details = "; ".join(f"{p.name}: {p.reason}" for p in failed)
    remedies = "; ".join(f"{p.name}: {p.remedy}" for p in failed if p.remedy)
    raise BackendUnavailableError(
        f"{ENV_BACKEND}={','.join(order)} asks for a backend that is not available here "
        f"({details}). To fix: {remedies or 'install a matching mlx'}; or unset {ENV_BACKEND} "
        "to choose automatically.",
        backend=first.name,
        reason=first.reason,
        remedy=first.remedy,
    )


_lock = _thread.allocate_lock()
_current: Selection | None = None
_pinned = False  # activate() chose: the cache stays until deactivate()


def current_selection() -> Selection:
    """The cached :class:`Selection`, probed once on first use (thread-safe)."""
    global _current
    sel = _current
    if sel is not None:
        return sel
    with _lock:
        if _current is None:
            _current = select_backend()
        return _current


def cached_selection() -> Selection | None:
    """The cached :class:`Selection`, or ``None`` when nothing has chosen yet (probes nothing)."""
    return _current


def pin(selection: Selection | None) -> None:
    """``activate()``'s choice becomes the cache, kept until ``pin(None)`` (``deactivate()``)."""
    global _current, _pinned
    with _lock:
        _current, _pinned = selection, selection is not None


def current_backend() -> Backend:
    """The backend mlx-portable runs on: the one ``activate()`` chose, else probed once and cached."""
    return current_selection().backend


def reset_current_backend() -> None:
    """Forget the cached choice (after changing ``MLX_PORTABLE_BACKEND``), before ``activate()``.

    While mlx-portable is active its patches have set mlx up for the chosen
    backend, so forgetting the choice then would let :func:`current_backend`
    disagree with them: that raises, saying to ``deactivate()`` first.
    """
    global _current
    with _lock:
        if _pinned and _current is not None:
            raise RuntimeError(
                f"mlx-portable is active on the {_current.backend.name} backend; call "
                "mlx_portable.deactivate() before choosing another backend"
            )
        _current = None
