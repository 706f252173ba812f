"""One pickled form for the core's stateful objects, interpreted or compiled.

Snapshots pickle the whole exchange. Interpreted, CPython pickles a slotted object as
(None, {slot: value}); compiled by mypyc (see exchange/accelerator.py) a class has no slots,
and without help it cannot be pickled at all, since unpickling would call its __init__ with
no arguments. `Picklable` gives both the same form, a dict of attributes, so a snapshot
written by an interpreted server loads in a compiled one and the other way round; it also
reads the form older snapshots hold.
"""

from __future__ import annotations

from typing import Any


class Picklable:
    """A base class whose instances pickle as a dict of their attributes.

    Compiled, unpickling must make an instance without running __init__ with arguments it
    does not have. A subclass that only compiled code constructs says
    `@mypyc_attr(serializable=True)`, written out on the class (mypyc reads it there): mypyc
    2.4 then skips __init__ when interpreted code calls the class too, so a class that the
    shell constructs (Exchange) instead takes no required arguments, and unpickling calls it
    with none before restoring its attributes.
    """

    __slots__ = ()

    def __getstate__(self) -> dict[str, object]:
        names = attribute_names(type(self))
        if names is None:
            return dict(vars(self))
        return {name: getattr(self, name) for name in names if hasattr(self, name)}

    def __setstate__(self, state: object) -> None:
        for name, value in attributes_in(state).items():
            setattr(self, name, value)


def attribute_names(cls: type[Any]) -> tuple[str, ...] | None:
    """Return a class's attribute names, or None when its instances keep them in __dict__."""
    compiled: tuple[str, ...] | None = getattr(cls, "__mypyc_attrs__", None)
    if compiled is not None:
        return compiled
    names: list[str] = []
    for klass in cls.__mro__:
        if "__slots__" not in vars(klass):
            if klass is not object:
                return None  # a class without slots gives its instances a __dict__
            continue
        slots = vars(klass)["__slots__"]
        names.extend((slots,) if isinstance(slots, str) else slots)
    return tuple(names)


def attributes_in(state: object) -> dict[str, Any]:
    """Return the attributes in a pickled state of either form."""
    if isinstance(state, tuple):
        # CPython's default form: (__dict__ or None, {slot: value} or None).
        merged: dict[str, Any] = {}
        for part in state:
            if part:
                merged.update(part)
        return merged
    if not isinstance(state, dict):
        raise TypeError(f"cannot restore from a pickled state of type {type(state).__name__}")
    return state
