"""Commands to and from JSON-ready dicts, exactly.

    encode(PlaceOrder(...)) == {"type": "PlaceOrder", "seq": 7, "ts": ..., "side": 1, ...}
    decode(encode(command)) == command

Every field is written, defaults included, so a record does not change meaning if a default
does. Enums travel by value, nested `MarkPrice` and `FundingRate` as dicts, tuples as lists.
Decoding is strict: an unknown type or field, a missing field or a value of the wrong type
raises `CodecError`; nothing is coerced (no "7" for 7, no true for 1).
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import operator
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from exchange.core import commands as command_module
from exchange.core.commands import Command, FundingRate, MarkPrice

COMMAND_TYPES: dict[str, type[Any]] = {
    kind.__name__: kind for kind in typing.get_args(command_module.Command)
}
"""Every command class by name: the `type` field of an encoded command."""

_NESTED_TYPES: dict[type[Any], str] = {MarkPrice: "MarkPrice", FundingRate: "FundingRate"}

_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {
    kind: tuple(field.name for field in dataclasses.fields(kind)) for kind in COMMAND_TYPES.values()
}
_PLAIN = (int, str, bool, type(None))

_COMMANDS_SOURCE = Path(__file__).resolve().parents[1] / "core" / "commands.py"


def declared_field_types() -> dict[type[Any], dict[str, Any]]:
    """Return every command class's field types as its source declares them.

    Not from the classes: compiled by mypyc (exchange/accelerator.py), a dataclass keeps only
    runtime classes in its annotations (`int | None` becomes `type`), and the decoders need
    the declared types to be exact.
    """
    namespace = vars(command_module)
    module = ast.parse(_COMMANDS_SOURCE.read_text(), str(_COMMANDS_SOURCE))
    declared: dict[type[Any], dict[str, Any]] = {}
    for node in module.body:
        if not isinstance(node, ast.ClassDef):
            continue
        kind: Any = namespace.get(node.name)
        if not isinstance(kind, type) or not dataclasses.is_dataclass(kind):
            continue
        declared[kind] = {
            statement.target.id: eval(ast.unparse(statement.annotation), namespace)
            for statement in node.body
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
        }
    return declared


_FIELD_TYPES = declared_field_types()


class CodecError(ValueError):
    """A dict that is not an exact encoding of a command."""


# ---------------------------------------------------------------------- encoding


def encode(command: Command) -> dict[str, Any]:
    """Return the command as a dict of JSON values, with its class name under `type`."""
    encoder = _ENCODERS.get(type(command))
    if encoder is None:
        raise CodecError(f"not a command: {type(command).__name__}")
    return encoder(command)


def encode_generic(command: Command) -> dict[str, Any]:
    """Encode field by field without the per-class encoders (the reference `encode` equals)."""
    kind = type(command)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        raise CodecError(f"not a command: {kind.__name__}")
    data: dict[str, Any] = {"type": kind.__name__}
    for name in names:
        data[name] = _encode_any(getattr(command, name))
    return data


def _encode_any(value: Any) -> Any:
    return value if type(value) in _PLAIN else _encode_value(value)


def _encode_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_encode_value(item) for item in value]
    if type(value) in _NESTED_TYPES:
        return {
            field.name: _encode_value(getattr(value, field.name))
            for field in dataclasses.fields(value)
        }
    if value is None or isinstance(value, bool | int | str):
        return value
    raise CodecError(f"cannot encode {type(value).__name__}")


def _field_expression(name: str, hint: Any, namespace: dict[str, Any]) -> str:
    """Return Python source encoding `name` as `_encode_any` would, fast for its declared type.

    The declared type is only a guess tried first: any other value falls through to
    `_encode_any`, so the result (and the CodecError for what cannot be encoded) is the
    same whatever the value.
    """
    optional = False
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        options = [option for option in typing.get_args(hint) if option is not type(None)]
        optional = len(options) == 1 and len(typing.get_args(hint)) == 2
        hint = options[0] if optional else hint
    fallback = f"_encode_any({name})"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        namespace[f"_{hint.__name__}"] = hint
        # `_value_` is what the `value` property returns, read without the property's cost.
        fast = f"{name}._value_ if type({name}) is _{hint.__name__} else {fallback}"
    elif hint in (int, str, bool):
        fast = f"{name} if type({name}) is {hint.__name__} else {fallback}"
    else:
        fast = fallback
    return f"(None if {name} is None else {fast})" if optional else f"({fast})"


_RESERVED = frozenset(("command", "type", "int", "str", "bool", "None"))
"""Names the generated source uses besides the fields' own."""


def _build_encoder(kind: type[Any]) -> Callable[[Any], dict[str, Any]]:
    """Compile one straight-line function per command class.

    The journal encodes every command before it is acknowledged; a loop over the fields with
    a getattr and a type test each was most of that cost, so each class gets a function
    that reads all its fields at once and builds the dict in one expression.
    """
    hints = _FIELD_TYPES[kind]
    names = _FIELD_NAMES[kind]
    if any(name.startswith("_") or name in _RESERVED for name in names):
        # A field that would shadow a name the generated source relies on.
        return encode_generic
    namespace: dict[str, Any] = {
        "_encode_any": _encode_any,
        "_get": operator.attrgetter(*names) if len(names) > 1 else None,
    }
    if len(names) > 1:
        read = f"    {', '.join(names)} = _get(command)"
    else:
        read = f"    {names[0]} = command.{names[0]}"
    items = ", ".join(
        f"{name!r}: {_field_expression(name, hints[name], namespace)}" for name in names
    )
    source = (
        f"def encode_{kind.__name__}(command):\n{read}\n"
        f"    return {{'type': {kind.__name__!r}, {items}}}\n"
    )
    # The source is built above from the dataclass fields only, never from input.
    exec(source, namespace)
    encoder: Callable[[Any], dict[str, Any]] = namespace[f"encode_{kind.__name__}"]
    return encoder


_ENCODERS: dict[type[Any], Callable[[Any], dict[str, Any]]] = {
    kind: _build_encoder(kind) for kind in COMMAND_TYPES.values()
}


# ---------------------------------------------------------------------- decoding

Decoder = Callable[[Any, str], Any]


def decode(data: Mapping[str, Any]) -> Command:
    """Return the command a dict from `encode` describes, or raise CodecError."""
    if not isinstance(data, Mapping):
        raise CodecError("a command must be an object")
    name = data.get("type")
    kind = COMMAND_TYPES.get(name) if isinstance(name, str) else None
    if kind is None or not isinstance(name, str):
        raise CodecError(f"unknown command type {name!r}")
    command: Command = _decode_dataclass(kind, data, name, skip=("type",))
    return command


def _decode_dataclass(kind: type[Any], data: Any, where: str, skip: tuple[str, ...] = ()) -> Any:
    if not isinstance(data, Mapping):
        raise CodecError(f"{where}: expected an object")
    decoders = _field_decoders(kind)
    unknown = sorted(set(data) - set(decoders) - set(skip))
    if unknown:
        raise CodecError(f"{where}: unknown field {unknown[0]!r}")
    values: dict[str, Any] = {}
    for name, decoder in decoders.items():
        if name not in data:
            raise CodecError(f"{where}: missing field {name!r}")
        values[name] = decoder(data[name], f"{where}.{name}")
    return kind(**values)


def _field_decoders(kind: type[Any]) -> dict[str, Decoder]:
    decoders = _DECODERS.get(kind)
    if decoders is None:
        decoders = _DECODERS[kind] = _build_decoders(kind)
    return decoders


_DECODERS: dict[type[Any], dict[str, Decoder]] = {}


def _build_decoders(kind: type[Any]) -> dict[str, Decoder]:
    hints = _FIELD_TYPES[kind]
    return {field.name: _decoder(hints[field.name]) for field in dataclasses.fields(kind)}


def _decoder(hint: Any) -> Decoder:
    origin = typing.get_origin(hint)
    if origin is types.UnionType or origin is typing.Union:
        options = typing.get_args(hint)
        if type(None) in options:
            inner = _decoder(next(option for option in options if option is not type(None)))
            return lambda value, where: None if value is None else inner(value, where)
        raise CodecError(f"unsupported union {hint}")
    if origin is tuple:
        item_type, ellipsis = typing.get_args(hint)
        assert ellipsis is Ellipsis
        item = _decoder(item_type)

        def decode_tuple(value: Any, where: str) -> tuple[Any, ...]:
            if not isinstance(value, list | tuple):
                raise CodecError(f"{where}: expected a list")
            return tuple(item(entry, f"{where}[{index}]") for index, entry in enumerate(value))

        return decode_tuple
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        enum_type = hint

        def decode_enum(value: Any, where: str) -> enum.Enum:
            # Side is an IntEnum: a bool would pass as 1, so it is refused first.
            if isinstance(value, bool):
                raise CodecError(f"{where}: not a {enum_type.__name__}: {value!r}")
            try:
                return enum_type(value)
            except ValueError:
                raise CodecError(f"{where}: not a {enum_type.__name__}: {value!r}") from None

        return decode_enum
    if hint in _NESTED_TYPES:
        nested = hint
        return lambda value, where: _decode_dataclass(nested, value, where)
    if hint is bool:
        return _exact(bool)
    if hint is int:
        return _exact(int)
    if hint is str:
        return _exact(str)
    raise CodecError(f"unsupported field type {hint}")


def _exact(kind: type[Any]) -> Decoder:
    def check(value: Any, where: str) -> Any:
        if type(value) is not kind:
            raise CodecError(f"{where}: expected {kind.__name__}, got {type(value).__name__}")
        return value

    return check
