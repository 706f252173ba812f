"""Faster ways to build the frozen dataclasses made on the hot path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields, is_dataclass
from operator import attrgetter
from types import FunctionType
from typing import Any, ParamSpec, TypeVar, cast

T = TypeVar("T")
P = ParamSpec("P")


def fast_init(cls: type[T]) -> type[T]:
    """Give a frozen slotted dataclass an __init__ that fills the slots directly.

    The generated frozen __init__ calls object.__setattr__ once per field, about 0.1 us each;
    events are built several times per command, so that alone was a fifth of the engine's
    time. Slot descriptors set the same attributes without the detour. Instances stay frozen
    (the class's __setattr__ still refuses), equal, hashable and printable as before. Fields
    may have plain defaults (not factories), which the new __init__ keeps.

    Compiled by mypyc (exchange/accelerator.py) the dataclass's __init__ stays interpreted,
    and its object.__setattr__ calls cost several times more: a PlaceOrder took about six
    microseconds to make. This __init__ sets the attributes through their descriptors there
    too. A class whose source writes its own __init__ keeps it when that was compiled: mypyc
    makes it a native constructor, faster than any of these.

    Either way the class pickles (and copies) as a call to it with its field values: compiled
    it has no slots to pickle, and one form lets either kind of code read what the other wrote.
    """
    names = _field_names(cls)
    if is_compiled(vars(cls)["__init__"]):
        _pickle_by_fields(cls, names)
        return cls
    descriptors: list[Any] = [vars(cls).get(name) for name in names]
    if not all(hasattr(descriptor, "__set__") for descriptor in descriptors):
        raise TypeError(f"{cls.__name__}: fast_init needs a slotted (or compiled) dataclass")
    namespace: dict[str, Any] = {
        f"_set_{name}": descriptor.__set__
        for name, descriptor in zip(names, descriptors, strict=True)
    }
    parameters = []
    for field in fields(cast(Any, cls)):
        if field.default is MISSING:
            parameters.append(field.name)
        else:
            namespace[f"_default_{field.name}"] = field.default
            parameters.append(f"{field.name}=_default_{field.name}")
    body = "".join(f"    _set_{name}(self, {name})\n" for name in names) or "    pass\n"
    source = f"def __init__(self, {', '.join(parameters)}):\n{body}"
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    setattr(cls, "__init__", init)  # noqa: B010 - mypy forbids assigning to a method
    _pickle_by_fields(cls, names)
    return cls


def builder(cls: Callable[P, T]) -> Callable[P, T]:
    """Return a function that builds instances of a frozen slotted dataclass, same arguments.

    It is about three times faster than calling the class, even after fast_init: calling a
    class goes through type.__call__ and then one slot descriptor call per field. The builder
    fills an unfrozen twin class with the same slots, whose plain attribute stores CPython
    specialises, then hands the object to the frozen class. The layouts are identical, so
    that is only a change of type pointer; the result is an ordinary instance of cls (frozen,
    equal, hashable, picklable). The matching code builds several events per command.
    """
    frozen: Any = cls
    if not hasattr(frozen, "__slots__"):
        raise TypeError(f"{frozen.__name__}: builder needs a slotted dataclass")
    names = _field_names(frozen)
    if any(field.default is not MISSING for field in fields(frozen)):
        raise TypeError(f"{frozen.__name__}: builder does not support defaults")
    slots = tuple(frozen.__slots__)
    if frozen.__bases__ != (object,) or slots != tuple(names):
        raise TypeError(f"{frozen.__name__}: builder needs exactly one slot per field")
    twin = type(f"_{frozen.__name__}Twin", (), {"__slots__": slots})
    namespace: dict[str, Any] = {"_twin": twin, "_frozen": frozen}
    body = "".join(f"    record.{name} = {name}\n" for name in names)
    # Calling the twin, which has neither __new__ nor __init__ of its own, is about 80 ns
    # cheaper than object.__new__(twin), whose wrapper parses its arguments first.
    source = (
        f"def build_{frozen.__name__}({', '.join(names)}):\n"
        "    record = _twin()\n"
        f"{body}"
        "    record.__class__ = _frozen\n"
        "    return record\n"
    )
    exec(source, namespace)
    build: Callable[P, T] = namespace[f"build_{frozen.__name__}"]
    return build


def is_compiled(function: object) -> bool:
    """Tell whether a function or method is compiled (by mypyc) rather than Python code."""
    return not isinstance(function, FunctionType)


def _pickle_by_fields(cls: type[Any], names: list[str]) -> None:
    # attrgetter of several names gives a tuple of their values; of one name, the value.
    values = attrgetter(*names) if len(names) > 1 else _few_values(names)

    def reduce(self: Any) -> tuple[type[Any], tuple[Any, ...]]:
        return type(self), values(self)

    setattr(cls, "__reduce__", reduce)  # noqa: B010 - mypy forbids assigning to a method


def _few_values(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    def values(record: Any) -> tuple[Any, ...]:
        return tuple(getattr(record, name) for name in names)

    return values


def _field_names(cls: type[Any]) -> list[str]:
    if not is_dataclass(cls):
        raise TypeError(f"{cls.__name__} must be a dataclass")
    if any(field.default_factory is not MISSING for field in fields(cls)):
        raise TypeError(f"{cls.__name__}: fast construction does not support default factories")
    return [field.name for field in fields(cls)]
