"""Typed results and stream data: frozen dataclasses read from the wire's JSON.

Field names are the protocol's (docs/protocol.md). Prices, quantities, money and rates
arrive as decimal strings and become `Decimal`, never `float`; times stay integer Unix
milliseconds. Fields the server adds later are ignored, so an older SDK keeps working.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NamedTuple, TypeVar, Union

from clients.paperex_client.errors import ProtocolError

T = TypeVar("T")

Side = Literal["buy", "sell"]
PositionSide = Literal["long", "short", "flat"]
MarginMode = Literal["cross", "isolated"]
OrderType = Literal[
    "limit",
    "market",
    "stop_market",
    "stop_limit",
    "take_profit_market",
    "take_profit_limit",
]
TimeInForce = Literal["gtc", "ioc", "fok", "post_only"]
TriggerBy = Literal["last", "mark"]


# ---------------------------------------------------------------------------------------------
# Public data
# ---------------------------------------------------------------------------------------------


class Level(NamedTuple):
    """One price level of a book: its price and the quantity resting there."""

    price: Decimal
    qty: Decimal


@dataclass(frozen=True, slots=True)
class ServerTime:
    server_time: int
    seq: int


@dataclass(frozen=True, slots=True)
class Bracket:
    tier: int
    notional_floor: Decimal
    notional_cap: Decimal
    max_leverage: int
    maintenance_margin_rate: Decimal
    maintenance_amount: Decimal


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    max_market_qty: Decimal
    min_notional: Decimal
    price_band: Decimal
    maker_fee: Decimal
    taker_fee: Decimal
    max_open_orders: int
    brackets: tuple[Bracket, ...]


@dataclass(frozen=True, slots=True)
class Book:
    """A book snapshot (`public.book`): levels best first and the update id it reflects."""

    symbol: str
    update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """A `book.SYMBOL` notification: a snapshot, or a delta of changed levels (qty 0 removes)."""

    type: Literal["snapshot", "delta"]
    symbol: str
    update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    mark_price: Decimal | None
    index_price: Decimal | None
    last_price: Decimal | None
    best_bid: Decimal | None
    best_bid_qty: Decimal | None
    best_ask: Decimal | None
    best_ask_qty: Decimal | None
    funding_rate: Decimal
    next_funding_time: int | None
    open_interest: Decimal
    halted: bool


@dataclass(frozen=True, slots=True)
class Trade:
    trade_id: int
    symbol: str
    price: Decimal
    qty: Decimal
    taker_side: Side
    ts: int


@dataclass(frozen=True, slots=True)
class PublicLiquidation:
    """A `liquidations.SYMBOL` notification: no account, no balances."""

    symbol: str
    side: Side
    qty: Decimal
    bankruptcy_price: Decimal
    mark_price: Decimal
    ts: int


@dataclass(frozen=True, slots=True)
class RiskEstimate:
    """One position of `public.liquidation_price`, as `paperex liq --json` prints it."""

    symbol: str
    side: Literal["long", "short"]
    margin_mode: MarginMode
    liquidation_price: Decimal | None
    bankruptcy_price: Decimal | None
    initial_margin: Decimal
    maintenance_margin: Decimal
    margin_balance: Decimal
    margin_ratio: Decimal | None
    distance_to_liquidation_pct: Decimal | None
    risk_level: str
    max_loss: Decimal
    unrealized_pnl: Decimal


@dataclass(frozen=True, slots=True)
class RiskReport:
    positions: tuple[RiskEstimate, ...]


# ---------------------------------------------------------------------------------------------
# Orders, fills, accounts, positions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Order:
    order_id: int
    client_order_id: str | None
    symbol: str
    side: Side
    type: OrderType
    status: Literal["new", "triggered", "partially_filled", "filled", "canceled", "expired"]
    qty: Decimal
    price: Decimal | None
    trigger_price: Decimal | None
    trigger_by: TriggerBy
    time_in_force: TimeInForce
    reduce_only: bool
    close_position: bool
    filled_qty: Decimal
    avg_price: Decimal | None
    fee: Decimal
    reason: str | None
    liquidation: bool
    created_ts: int
    updated_ts: int

    @property
    def is_open(self) -> bool:
        """Tell whether the order can still trade (or trigger)."""
        return self.status in ("new", "triggered", "partially_filled")


@dataclass(frozen=True, slots=True)
class Fill:
    order_id: int
    trade_id: int
    symbol: str
    side: Side
    last_px: Decimal
    last_qty: Decimal
    leaves_qty: Decimal
    liquidity_side: Literal["maker", "taker"]
    fee: Decimal
    realized_pnl: Decimal
    ts: int


@dataclass(frozen=True, slots=True)
class LedgerRow:
    seq: int
    ts: int
    kind: str
    symbol: str | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Position:
    """A position in `account.get`: the calculator's figures plus what the exchange holds."""

    symbol: str
    side: PositionSide
    margin_mode: MarginMode
    liquidation_price: Decimal | None
    bankruptcy_price: Decimal | None
    initial_margin: Decimal
    maintenance_margin: Decimal
    margin_balance: Decimal
    margin_ratio: Decimal | None
    distance_to_liquidation_pct: Decimal | None
    risk_level: str
    max_loss: Decimal
    unrealized_pnl: Decimal
    qty: Decimal
    entry_price: Decimal
    mark_price: Decimal
    notional: Decimal
    leverage: int
    isolated_margin: Decimal


@dataclass(frozen=True, slots=True)
class Account:
    account_id: int
    name: str
    wallet_balance: Decimal
    margin_balance: Decimal
    available_balance: Decimal
    cross_maintenance_margin: Decimal
    cross_margin_ratio: Decimal | None
    order_margin: Decimal
    positions: tuple[Position, ...]

    def position(self, symbol: str) -> Position | None:
        """Return the open position in a symbol, or None."""
        return next((p for p in self.positions if p.symbol == symbol), None)


@dataclass(frozen=True, slots=True)
class PositionSettings:
    """What `position.set_leverage`, `set_margin_mode` and `adjust_margin` return."""

    symbol: str
    qty: Decimal
    margin_mode: MarginMode
    leverage: int
    isolated_margin: Decimal


# ---------------------------------------------------------------------------------------------
# Account stream events (`fill` and `order` events are Fill and Order)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PositionUpdate:
    symbol: str
    side: PositionSide
    qty: Decimal
    entry_price: Decimal | None
    margin_mode: MarginMode
    leverage: int
    isolated_margin: Decimal


@dataclass(frozen=True, slots=True)
class BalanceUpdate:
    wallet_balance: Decimal


@dataclass(frozen=True, slots=True)
class LedgerUpdate:
    kind: str
    symbol: str | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class MarginCall:
    """The margin ratio first crossed the warning level (symbol None: the cross account)."""

    symbol: str | None
    margin_ratio: Decimal
    margin_balance: Decimal
    maintenance_margin: Decimal


@dataclass(frozen=True, slots=True)
class LiquidationRecord:
    symbol: str
    margin_mode: MarginMode
    order_id: int
    side: Side
    qty: Decimal
    mark_price: Decimal
    margin_balance: Decimal
    maintenance_margin: Decimal
    tier: int
    liquidation_price: Decimal | None
    bankruptcy_price: Decimal
    book_qty: Decimal
    insurance_qty: Decimal
    adl_qty: Decimal
    clearance_fee: Decimal
    insurance_fund_before: Decimal
    insurance_fund_after: Decimal


@dataclass(frozen=True, slots=True)
class AutoDeleverage:
    symbol: str
    qty: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused command (`order_rejected` or `rejected`); the reply carries the same error."""

    event: str
    code: int
    reason: str
    symbol: str | None = None
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An account event this SDK does not know yet, kept as raw JSON."""

    event: str
    data: dict[str, Any]


AccountEvent = (
    Fill
    | Order
    | PositionUpdate
    | BalanceUpdate
    | LedgerUpdate
    | MarginCall
    | LiquidationRecord
    | AutoDeleverage
    | Rejection
    | UnknownEvent
)

_ACCOUNT_EVENTS: dict[str, type[Any]] = {
    "fill": Fill,
    "order": Order,
    "position": PositionUpdate,
    "balance": BalanceUpdate,
    "ledger": LedgerUpdate,
    "margin_call": MarginCall,
    "liquidation": LiquidationRecord,
    "adl": AutoDeleverage,
    "order_rejected": Rejection,
    "rejected": Rejection,
}


# ---------------------------------------------------------------------------------------------
# Operator results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewAccount:
    """An account made by `admin.create_account`: the only time its secret is shown."""

    account_id: int
    name: str
    api_key: str
    api_secret: str


@dataclass(frozen=True, slots=True)
class WalletBalance:
    account_id: int
    wallet_balance: Decimal


@dataclass(frozen=True, slots=True)
class ExchangeState:
    seq: int
    ts: int
    state_hash: str
    insurance_fund: Decimal
    fee_pool: Decimal
    funding_pool: Decimal
    deposits: Decimal
    withdrawals: Decimal
    open_interest: dict[str, Decimal]
    halted: dict[str, bool]
    conservation_gap: Decimal
    conservation_holds: bool
    invariants_hold: bool
    accounts: int
    open_orders: int


@dataclass(frozen=True, slots=True)
class AccountEquity:
    account_id: int
    name: str
    wallet_balance: Decimal
    equity: Decimal


# ---------------------------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamUpdate:
    """One notification of a subscribed channel.

    `seq` rises by one per notification on a channel within one connection; `connection`
    counts the client's connections from 1, so after a reconnect the seq starts again at 1
    with a higher `connection`. `data` is typed by channel: BookUpdate, Trade, Ticker,
    PublicLiquidation, or an AccountEvent.
    """

    channel: str
    seq: int
    connection: int
    data: Any


def stream_data(channel: str, data: Any) -> Any:
    """Return a notification's data as the type its channel carries."""
    kind = channel.partition(".")[0]
    if kind == "book":
        return decode(BookUpdate, data)
    if kind == "trades":
        return decode(Trade, data)
    if kind == "ticker":
        return decode(Ticker, data)
    if kind == "liquidations":
        return decode(PublicLiquidation, data)
    if kind == "account":
        return account_event(data)
    return data


def account_event(data: Any) -> AccountEvent:
    """Return an `account` channel object as its event type."""
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise ProtocolError(f"an account event needs an event name: {data!r:.200}")
    kind = data.get("event")
    cls = _ACCOUNT_EVENTS.get(data["event"])
    if cls is None:
        return UnknownEvent(str(kind), data)
    event: AccountEvent = decode(cls, data)
    return event


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def decode(cls: type[T], data: Any) -> T:
    """Build a dataclass from its JSON object, reading decimal strings as Decimal."""
    if not isinstance(data, dict):
        raise ProtocolError(f"{cls.__name__}: expected an object, got {data!r:.200}")
    values: dict[str, Any] = {}
    for name, hint, has_default in _fields(cls):
        if name not in data:
            if has_default:
                continue
            raise ProtocolError(f"{cls.__name__}: missing field {name!r}")
        values[name] = _value(hint, data[name], f"{cls.__name__}.{name}")
    return cls(**values)


def decode_list(cls: type[T], data: Any) -> list[T]:
    """Build a list of dataclasses from a JSON array."""
    if not isinstance(data, list):
        raise ProtocolError(f"expected a list of {cls.__name__}, got {data!r:.200}")
    return [decode(cls, item) for item in data]


_FIELDS: dict[type[Any], tuple[tuple[str, Any, bool], ...]] = {}


def _fields(cls: type[Any]) -> tuple[tuple[str, Any, bool], ...]:
    """Return each field's name, resolved type and whether it has a default, cached."""
    cached = _FIELDS.get(cls)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    cached = _FIELDS[cls] = tuple(
        (
            field.name,
            hints[field.name],
            field.default is not dataclasses.MISSING
            or field.default_factory is not dataclasses.MISSING,
        )
        for field in dataclasses.fields(cls)
    )
    return cached


def to_decimal(value: Any, where: str = "value") -> Decimal:
    """Read a wire decimal (a string, or an exact integer) without going through float."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ProtocolError(f"{where}: expected a decimal string, got {value!r:.50}")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ProtocolError(f"{where}: not a decimal: {value!r:.50}") from None


def _value(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        [inner] = [arg for arg in args if arg is not type(None)]
        return _value(inner, value, where)
    if value is None:
        raise ProtocolError(f"{where}: unexpected null")
    if hint is Decimal:
        return to_decimal(value, where)
    if hint is Level:
        if not isinstance(value, list) or len(value) != 2:
            raise ProtocolError(f"{where}: a level is [price, qty], got {value!r:.50}")
        return Level(to_decimal(value[0], where), to_decimal(value[1], where))
    if origin is tuple:
        if not isinstance(value, list):
            raise ProtocolError(f"{where}: expected a list")
        return tuple(_value(args[0], item, where) for item in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ProtocolError(f"{where}: expected an object")
        return {key: _value(args[1], item, f"{where}.{key}") for key, item in value.items()}
    if origin is Literal or hint is str:
        # Literal values are not checked: a new status or kind must not break an old SDK.
        if not isinstance(value, str):
            raise ProtocolError(f"{where}: expected a string")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ProtocolError(f"{where}: expected a boolean")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError(f"{where}: expected an integer")
        return value
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return decode(hint, value)
    raise ProtocolError(f"{where}: cannot decode {hint!r}")
