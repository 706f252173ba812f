"""The method table: name -> handler, params model and who may call it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from pydantic import ValidationError

from exchange.api.context import ApiContext
from exchange.api.errors import ApiError, AuthCode, invalid_params
from exchange.api.params import Params
from exchange.api.session import Session


class Access(Enum):
    PUBLIC = "public"
    USER = "user"
    ADMIN = "admin"


P = TypeVar("P", bound=Params)
Handler = Callable[[ApiContext, Session, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    params: type[Params] | None
    access: Access
    handler: Handler


METHODS: dict[str, Method] = {}


def method(
    name: str, params: type[P] | None, access: Access = Access.PUBLIC
) -> Callable[
    [Callable[[ApiContext, Session, P], Awaitable[Any]]],
    Callable[[ApiContext, Session, P], Awaitable[Any]],
]:
    """Register a handler under a method name."""

    def register(
        handler: Callable[[ApiContext, Session, P], Awaitable[Any]],
    ) -> Callable[[ApiContext, Session, P], Awaitable[Any]]:
        if name in METHODS:
            raise ValueError(f"method {name} is registered twice")
        METHODS[name] = Method(name, params, access, handler)
        return handler

    return register


def check_access(method: Method, session: Session) -> None:
    if method.access is Access.USER and session.account_id is None:
        raise ApiError(AuthCode.NOT_LOGGED_IN, f"{method.name} needs auth.login first")
    if method.access is Access.ADMIN and not session.admin:
        raise ApiError(AuthCode.ADMIN_REQUIRED, f"{method.name} needs auth.admin first")


def parse_params(method: Method, raw: dict[str, Any]) -> Any:
    """Validate params, or raise -32602 naming the first field at fault."""
    if method.params is None:
        return raw
    try:
        return method.params.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "params"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown parameter"
        elif first["type"] == "missing":
            message = "missing parameter"
        raise invalid_params(field, f"{field}: {message}") from None
