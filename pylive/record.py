"""Records (frozen, or mutable) without dataclasses' start-up cost.

`@dataclass` builds each class's methods from generated source with exec() at import time. In the
compiled binary that is most of pylive's own start-up (about 30 ms for the step and decision
classes, measured with PYTHONPROFILEIMPORTTIME). `@record` gives the same frozen value semantics
(positional/keyword init with defaults, __post_init__, eq, hash, repr) with generic methods and no exec;
`@mutable_record` is the same for @dataclass (fields can be reassigned, no hash).
"""

from __future__ import annotations

from collections.abc import Callable

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)
if TYPE_CHECKING:
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
else:
    def dataclass_transform(**kwargs: object) -> Callable[[Callable[..., object]], Callable[..., object]]:
        """Tells type checkers that @record works like @dataclass; nothing to do at run time."""
        return lambda decorator: decorator

_MISSING: Any = object()


class _Field:
    __slots__ = ("default", "factory")

    def __init__(self, default: Any, factory: Any) -> None:
        self.default = default
        self.factory = factory


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] = _MISSING) -> Any:
    return _Field(default, default_factory)


class FrozenInstanceError(AttributeError):
    pass


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    names: tuple[str, ...] = self._fields
    if len(args) > len(names):
        raise TypeError(f"{type(self).__name__}() takes {len(names)} arguments, {len(args)} given")
    values = self.__dict__
    defaults = self._defaults
    for i, name in enumerate(names):
        if i < len(args):
            values[name] = args[i]
        elif name in kwargs:
            values[name] = kwargs.pop(name)
        elif name in defaults:
            d = defaults[name]
            values[name] = d.factory() if d.factory is not _MISSING else d.default
        else:
            raise TypeError(f"{type(self).__name__}() missing argument '{name}'")
    if kwargs:
        raise TypeError(f"{type(self).__name__}() got unexpected arguments {', '.join(kwargs)}")
    if hasattr(self, "__post_init__"):  # as in dataclasses; lark's TextSlice (slim_standalone.py) has one
        self.__post_init__()


def _values(self: Any) -> tuple[Any, ...]:
    return tuple(self.__dict__[n] for n in self._fields)


def _eq(self: Any, other: object) -> bool:
    if type(other) is not type(self):
        # mypy exempts NotImplemented (typed as Any) only in functions *named* __eq__; this one is installed as __eq__.
        return NotImplemented  # type: ignore[no-any-return]
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash((type(self).__name__, _values(self)))


def _repr(self: Any) -> str:
    inner = ", ".join(f"{n}={self.__dict__[n]!r}" for n in self._fields)
    return f"{type(self).__name__}({inner})"


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field '{name}'")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[T]) -> type[T]:
    """A frozen value class from the annotations of `cls` (in order), like @dataclass(frozen=True)."""
    return _make(cls, frozen=True)


@dataclass_transform(field_specifiers=(field,))
def mutable_record(cls: type[T]) -> type[T]:
    """The same with fields that can be reassigned, like @dataclass (and, as there, no hash)."""
    return _make(cls, frozen=False)


def _make(cls: type[T], frozen: bool) -> type[T]:
    names: list[str] = []
    defaults: dict[str, _Field] = {}
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if "ClassVar" in str(annotation):
            continue
        names.append(name)
        value = cls.__dict__.get(name, _MISSING)
        if isinstance(value, _Field):
            defaults[name] = value
            if value.factory is not _MISSING or value.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, value.default)
        elif value is not _MISSING:
            defaults[name] = _Field(value, _MISSING)
    ns: dict[str, Any] = {
        "_fields": tuple(names), "_defaults": defaults, "__init__": _init, "__eq__": _eq, "__repr__": _repr,
        "__match_args__": tuple(names),
    }
    if frozen:
        ns.update(__hash__=_hash, __setattr__=_frozen_setattr, __delattr__=_frozen_setattr)
    else:
        ns.update(__hash__=None)
    for key, value in ns.items():
        setattr(cls, key, value)
    return cls


def fields(obj: Any) -> tuple[str, ...]:
    return tuple(obj._fields)


def replace(obj: T, **changes: Any) -> T:
    """A copy of a record with some fields changed, like dataclasses.replace."""
    values = {name: getattr(obj, name) for name in fields(obj)}
    values.update(changes)
    return type(obj)(**values)
