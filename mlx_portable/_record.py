"""``Record``: a frozen, slotted value class -- what ``@dataclass(frozen=True)`` gave, without its cost.

Why hand-written: the report and probe classes are built by every first
``activate()``.  ``dataclasses`` imports ``inspect`` (and with it ``ast``,
``dis``, ``tokenize``, ``re``) and generates each class's methods with
``exec``; together that was the largest part of the first ``activate()``
(about 10 ms of CPU on the 2-core CI machine, for six small classes).
Measured again beside ``import mlx.core`` (``benchmarks/import_and_activate.py``
prints both): with mlx 0.32.4 neither ``import mlx.core`` nor ``activate()``
loads ``dataclasses`` or ``typing``, and importing them costs about 0.4x and
0.2x of ``import mlx.core`` (``dataclasses`` and ``typing``): nearly the whole
first-``activate()`` budget of 0.5x; ``typing.NamedTuple`` needs ``typing`` too.  A
subclass lists its fields in ``__slots__`` (in order; a name starting with ``_``
is private, not a field) and writes its own
``__init__`` with ``object.__setattr__``; equality, hashing, ``repr`` and
immutability come from here.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Record"]


class Record:
    """Frozen value object: equal when of the same class with equal fields."""

    __slots__: tuple[str, ...] = ()
    #: The fields: the class's ``__slots__`` whose names do not start with ``_``.
    _fields: tuple[str, ...] = ()

    def __init_subclass__(cls) -> None:
        if "__slots__" in cls.__dict__:
            cls._fields = tuple(n for n in cls.__slots__ if not n.startswith("_"))

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self).__name__, *(_hashable(v) for v in self._values())))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"

    def _asdict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._fields}

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle would restore slots with setattr, which a frozen record refuses.
        return (_rebuild, (type(self), self._asdict()))


def _rebuild(cls: type[Record], values: dict[str, Any]) -> Record:
    obj = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(obj, name, value)
    return obj


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value
