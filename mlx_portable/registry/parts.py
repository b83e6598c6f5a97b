"""A patch that is ``part_of=`` another: decided after it, left out unless it is applied.

A patch whose second half must wait for another module is two patches (the
second with ``when="<phase>:<module>"``): ``when=`` is the one way to wait
for a module.
"""

from __future__ import annotations

from .patch import APPLIED, DEFERRED, OBSOLETE, obsolete, skip

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from .context import PatchRecord
    from .patch import Patch, Verdict

__all__ = ["parent_verdict", "parent_wait"]


def parent_verdict(records: Mapping[str, PatchRecord], parent: str) -> Verdict | None:
    """``None`` once ``parent`` is applied, else why its part is not (a parent disabled disables it)."""
    record = records.get(parent)
    if record is None:
        return skip(f"part of {parent}, which is not registered")
    if record.status == APPLIED:
        return None
    why = f"part of {parent}, which is {record.status}" + (f": {record.reason}" if record.reason else "")
    return obsolete(why) if record.status == OBSOLETE else skip(why)


def parent_wait(records: Mapping[str, PatchRecord], patch: Patch, module: str) -> tuple[str, ...]:
    """What a part that fired for ``module`` still waits for: its parent's module, then ``module`` again.

    Empty unless ``patch`` is a part whose parent still waits for a module:
    a part is decided after its parent.
    """
    from ..import_hooks import HookHandle

    record = records.get(patch.part_of) if patch.part_of else None
    if record is not None and record.status == DEFERRED and isinstance(record.hook, HookHandle):
        return (record.hook.module, module)
    return ()
