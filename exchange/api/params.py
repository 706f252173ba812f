"""Params of every method as pydantic models: shapes and types only, numbers left as text.

Decimal values arrive as strings (JSON numbers are tolerated and read exactly); turning them
into ticks, lots and atoms is done by the core's converters, which reject NaN, 1e400,
negatives and values off the tick or lot with the core's own codes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StrictBool, StrictInt, StrictStr

from exchange.core.enums import MarginMode, OrderType, TimeInForce, TriggerBy

DecimalValue = StrictStr | StrictInt | Annotated[Decimal, Strict()]
"""A decimal as text (or an exact JSON number); converted later by the core's rules."""

Symbol = Annotated[StrictStr, Field(min_length=1, max_length=32)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=64)]
ClientOrderId = Annotated[StrictStr, Field(min_length=1, max_length=64)]
OrderId = Annotated[StrictInt, Field(ge=1)]
AccountId = Annotated[StrictInt, Field(ge=1)]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class NoParams(Params):
    pass


# ---------------------------------------------------------------------------- public


class BookParams(Params):
    symbol: Symbol
    depth: Annotated[StrictInt, Field(ge=1, le=1000)] | None = None


class SymbolParams(Params):
    symbol: Symbol


class TradesParams(Params):
    symbol: Symbol
    limit: Annotated[StrictInt, Field(ge=1, le=1000)] = 100


# ---------------------------------------------------------------------------- auth, streams


class LoginParams(Params):
    api_key: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    timestamp: Annotated[StrictInt, Field(ge=0, le=10**15)]
    signature: Annotated[StrictStr, Field(min_length=1, max_length=128)]


class AdminLoginParams(Params):
    token: Annotated[StrictStr, Field(min_length=1, max_length=256)]


class ChannelsParams(Params):
    channels: Annotated[list[StrictStr], Field(min_length=1, max_length=64)]


# ---------------------------------------------------------------------------- orders


class PlaceParams(Params):
    symbol: Symbol
    side: Literal["buy", "sell"]
    type: OrderType
    qty: DecimalValue | None = None
    price: DecimalValue | None = None
    trigger_price: DecimalValue | None = None
    trigger_by: TriggerBy = TriggerBy.LAST
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: StrictBool = False
    close_position: StrictBool = False
    client_order_id: ClientOrderId | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class OrderRefParams(Params):
    order_id: OrderId | None = None
    client_order_id: ClientOrderId | None = None


class CancelAllParams(Params):
    symbol: Symbol | None = None


class AmendParams(Params):
    order_id: OrderId | None = None
    client_order_id: ClientOrderId | None = None
    qty: DecimalValue | None = None
    price: DecimalValue | None = None


class OpenOrdersParams(Params):
    symbol: Symbol | None = None


class HistoryParams(Params):
    symbol: Symbol | None = None
    limit: Annotated[StrictInt, Field(ge=1, le=1000)] = 100


# ---------------------------------------------------------------------------- positions


class LeverageParams(Params):
    symbol: Symbol
    leverage: Annotated[StrictInt, Field(ge=1, le=125)]


class MarginModeParams(Params):
    symbol: Symbol
    margin_mode: MarginMode

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class AdjustMarginParams(Params):
    symbol: Symbol
    amount: DecimalValue


# ---------------------------------------------------------------------------- admin


class CreateAccountParams(Params):
    name: Name
    deposit: DecimalValue | None = None


class AmountParams(Params):
    account_id: AccountId
    amount: DecimalValue


class SetIndexParams(Params):
    symbol: Symbol
    price: DecimalValue


class ShockParams(Params):
    symbol: Symbol
    pct: DecimalValue
    duration_s: DecimalValue | None = None


class HaltParams(Params):
    symbol: Symbol | None = None
