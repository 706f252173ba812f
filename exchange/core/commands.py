"""Commands: everything that changes the exchange's state, stamped with seq and ts.

The sequencer stamps `seq` (strictly increasing) and `ts` (Unix milliseconds, never
decreasing) before a command reaches `Exchange.apply`. Values are integers in the
instrument's scales: prices in ticks, quantities in lots.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange.core.enums import (
    MarginMode,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerBy,
)
from exchange.core.records import fast_init


@dataclass(frozen=True, slots=True)
class CreateAccount:
    seq: int
    ts: int
    name: str


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    seq: int
    ts: int
    account_id: int
    symbol: str
    side: Side
    order_type: OrderType
    qty: int
    price: int | None = None
    trigger_price: int | None = None
    trigger_by: TriggerBy = TriggerBy.LAST
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    close_position: bool = False
    client_order_id: str | None = None
    self_trade_prevention: SelfTradePrevention | None = None

    # Written out so that mypyc compiles it into a native constructor: the API makes one
    # per order request (interpreted, fast_init replaces it; see events.py, construction).
    def __init__(
        self,
        seq: int,
        ts: int,
        account_id: int,
        symbol: str,
        side: Side,
        order_type: OrderType,
        qty: int,
        price: int | None = None,
        trigger_price: int | None = None,
        trigger_by: TriggerBy = TriggerBy.LAST,
        time_in_force: TimeInForce = TimeInForce.GTC,
        reduce_only: bool = False,
        close_position: bool = False,
        client_order_id: str | None = None,
        self_trade_prevention: SelfTradePrevention | None = None,
    ) -> None:
        self.seq = seq  # type: ignore[misc]
        self.ts = ts  # type: ignore[misc]
        self.account_id = account_id  # type: ignore[misc]
        self.symbol = symbol  # type: ignore[misc]
        self.side = side  # type: ignore[misc]
        self.order_type = order_type  # type: ignore[misc]
        self.qty = qty  # type: ignore[misc]
        self.price = price  # type: ignore[misc]
        self.trigger_price = trigger_price  # type: ignore[misc]
        self.trigger_by = trigger_by  # type: ignore[misc]
        self.time_in_force = time_in_force  # type: ignore[misc]
        self.reduce_only = reduce_only  # type: ignore[misc]
        self.close_position = close_position  # type: ignore[misc]
        self.client_order_id = client_order_id  # type: ignore[misc]
        self.self_trade_prevention = self_trade_prevention  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class CancelOrder:
    seq: int
    ts: int
    account_id: int
    order_id: int | None = None
    client_order_id: str | None = None

    def __init__(  # native when compiled, as PlaceOrder's
        self,
        seq: int,
        ts: int,
        account_id: int,
        order_id: int | None = None,
        client_order_id: str | None = None,
    ) -> None:
        self.seq = seq  # type: ignore[misc]
        self.ts = ts  # type: ignore[misc]
        self.account_id = account_id  # type: ignore[misc]
        self.order_id = order_id  # type: ignore[misc]
        self.client_order_id = client_order_id  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class CancelAllOrders:
    seq: int
    ts: int
    account_id: int
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class AmendOrder:
    seq: int
    ts: int
    account_id: int
    order_id: int | None = None
    client_order_id: str | None = None
    qty: int | None = None
    price: int | None = None


@dataclass(frozen=True, slots=True)
class MarkPrice:
    symbol: str
    index_price: int
    mark_price: int


@dataclass(frozen=True, slots=True)
class UpdateMark:
    seq: int
    ts: int
    prices: tuple[MarkPrice, ...]


@dataclass(frozen=True, slots=True)
class Deposit:
    seq: int
    ts: int
    account_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class Withdraw:
    seq: int
    ts: int
    account_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class SetLeverage:
    seq: int
    ts: int
    account_id: int
    symbol: str
    leverage: int


@dataclass(frozen=True, slots=True)
class SetMarginMode:
    seq: int
    ts: int
    account_id: int
    symbol: str
    margin_mode: MarginMode


@dataclass(frozen=True, slots=True)
class AdjustIsolatedMargin:
    """Move margin into an isolated position (positive amount) or back out (negative)."""

    seq: int
    ts: int
    account_id: int
    symbol: str
    amount: int


@dataclass(frozen=True, slots=True)
class FundingRate:
    symbol: str
    rate: int


@dataclass(frozen=True, slots=True)
class SettleFunding:
    seq: int
    ts: int
    rates: tuple[FundingRate, ...]


@dataclass(frozen=True, slots=True)
class SetTradingStatus:
    """Halt or resume trading in one symbol (None: every symbol); an operator's command."""

    seq: int
    ts: int
    symbol: str | None
    halted: bool


Command = (
    CreateAccount
    | PlaceOrder
    | CancelOrder
    | CancelAllOrders
    | AmendOrder
    | UpdateMark
    | Deposit
    | Withdraw
    | SetLeverage
    | SetMarginMode
    | AdjustIsolatedMargin
    | SettleFunding
    | SetTradingStatus
)

# Built through their slots (records.fast_init), set after the classes rather than as a
# decorator: mypyc compiles a class with an unknown decorator as an ordinary Python class,
# which would make every field read a dictionary lookup.
for _kind in (
    CreateAccount,
    PlaceOrder,
    CancelOrder,
    CancelAllOrders,
    AmendOrder,
    MarkPrice,
    UpdateMark,
    Deposit,
    Withdraw,
    SetLeverage,
    SetMarginMode,
    AdjustIsolatedMargin,
    FundingRate,
    SettleFunding,
    SetTradingStatus,
):
    fast_init(_kind)
