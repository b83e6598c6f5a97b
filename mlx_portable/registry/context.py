"""What a patch sees while it is checked, applied and reverted, and where it stands.

:class:`PatchContext` is the patch's whole interface to mlx-portable: mlx,
the chosen backend, the module a deferred patch waited for (``when=`` is
the one way to wait for a module), its own
``state`` from check to apply, and the recorded changes that ``deactivate()``
undoes.  :class:`PatchRecord` is the registry's note of one patch.
"""

from __future__ import annotations

import os

from .originals import MISSING, remember
from .patch import PENDING, Patch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

    from ..backends.protocol import Backend

    Action = Callable[["PatchContext"], None]

__all__ = ["PatchContext", "PatchRecord"]


class PatchRecord:
    """Where one patch stands in this process."""

    __slots__ = ("applied_count", "changes", "error", "hook", "patch", "reason", "reverts", "state", "status")

    def __init__(self, patch: Patch) -> None:
        self.patch = patch
        self.status = PENDING
        self.reason = ""
        self.error = ""
        self.changes: list[tuple[str, Any, str, Any]] = []
        self.reverts: list[Action] = []
        self.hook: Any = None
        self.applied_count = 0
        #: What the check found for the apply (``ctx.state``); cleared on revert.
        self.state: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<PatchRecord {self.patch.name} {self.status}>"


class PatchContext:
    """What a patch's ``check`` and ``apply`` see, and how it records changes.

    ``backend`` is the chosen :class:`~mlx_portable.Backend` (``None`` for the
    import-time patches, which run before anything is chosen): ask it
    (``device_type``, ``supports_wired_memory``) rather than comparing names.
    """

    __slots__ = ("_record", "backend", "module")

    def __init__(
        self, record: PatchRecord, backend: Backend | None, module: ModuleType | None = None
    ) -> None:
        self._record = record
        self.backend = backend
        self.module = module

    @property
    def mx(self) -> Any:
        """``mlx.core`` (or the simulated one in tests)."""
        from .. import _mlx

        return _mlx.core()

    @property
    def mlx_version(self) -> str:
        from .. import _mlx

        return _mlx.mlx_version()

    @property
    def name(self) -> str:
        return self._record.patch.name

    @property
    def state(self) -> dict[str, Any]:
        """This patch's own scratch space from check to apply; emptied when it is reverted."""
        return self._record.state

    def set_attr(self, obj: Any, attr: str, value: Any) -> None:
        """Replace (or add) ``obj.attr``; reverted on ``deactivate()``."""
        original = getattr(obj, attr, MISSING)
        remember(obj, attr, original)
        self._record.changes.append(("attr", obj, attr, original))
        setattr(obj, attr, value)

    def wrap(self, owner: Any, name: str, factory: Callable[[Any], Any], *, doc: str = "") -> Any:
        """Replace ``owner.name`` with ``factory(original)``, made to look like the original.

        ``functools.wraps`` gives the replacement the original's name,
        qualified name, module and docstring, and ``__wrapped__`` (so
        ``inspect.signature`` and ``help()`` show the original); ``doc`` is
        appended to the docstring, to say what mlx-portable adds.  Reverted on
        ``deactivate()``, like :meth:`set_attr`.  Returns the replacement.
        """
        import functools  # loaded by mlx.core already: free

        original = getattr(owner, name)
        replacement = functools.wraps(original)(factory(original))
        if doc:
            replacement.__doc__ = (original.__doc__ or "") + doc
        self.set_attr(owner, name, replacement)
        return replacement

    def set_env(self, name: str, value: str) -> None:
        """Set ``os.environ[name]``; reverted on ``deactivate()``."""
        self._record.changes.append(("env", os.environ, name, os.environ.get(name, MISSING)))
        os.environ[name] = value

    def on_revert(self, action: Action) -> None:
        """Run ``action(ctx)`` when this patch is reverted (before attributes are restored)."""
        self._record.reverts.append(action)
