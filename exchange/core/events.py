"""Events: what happened, in order, each carrying the seq of the command that caused it.

Order lifecycle events map one to one onto order statuses (see orders.TRANSITIONS):
accepted -> NEW, triggered -> TRIGGERED, filled -> PARTIALLY_FILLED or FILLED,
canceled -> CANCELED, expired -> EXPIRED, rejected -> REJECTED; amended keeps the status.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange.core.codes import RejectCode
from exchange.core.enums import (
    CancelReason,
    ExpireReason,
    LedgerEntryKind,
    LiquiditySide,
    MarginMode,
    OrderType,
    Side,
)
from exchange.core.records import builder, fast_init


@fast_init
@dataclass(frozen=True, slots=True)
class AccountCreated:
    seq: int
    account_id: int
    name: str


@fast_init
@dataclass(frozen=True, slots=True)
class OrderAccepted:
    seq: int
    order_id: int
    account_id: int
    symbol: str
    side: Side
    order_type: OrderType
    qty: int
    price: int | None
    client_order_id: str | None


@fast_init
@dataclass(frozen=True, slots=True)
class OrderRejected:
    seq: int
    account_id: int
    symbol: str
    client_order_id: str | None
    code: RejectCode
    reason: str


@fast_init
@dataclass(frozen=True, slots=True)
class OrderTriggered:
    """A conditional order's trigger fired; it now works as a market or limit order."""

    seq: int
    order_id: int
    account_id: int
    symbol: str
    trigger_price: int
    qty: int


@fast_init
@dataclass(frozen=True, slots=True)
class OrderFilled:
    """One side of one trade. The taker's fill doubles as the public trade print."""

    seq: int
    order_id: int
    account_id: int
    symbol: str
    side: Side
    trade_id: int
    last_px: int
    last_qty: int
    leaves_qty: int
    liquidity_side: LiquiditySide
    fee: int
    realized_pnl: int


@fast_init
@dataclass(frozen=True, slots=True)
class OrderCanceled:
    seq: int
    order_id: int
    account_id: int
    symbol: str
    reason: CancelReason


@fast_init
@dataclass(frozen=True, slots=True)
class OrderExpired:
    seq: int
    order_id: int
    account_id: int
    symbol: str
    reason: ExpireReason


@fast_init
@dataclass(frozen=True, slots=True)
class OrderAmended:
    seq: int
    order_id: int
    account_id: int
    symbol: str
    price: int
    qty: int
    leaves_qty: int
    priority_kept: bool


@fast_init
@dataclass(frozen=True, slots=True)
class CommandRejected:
    """A command other than a new order was refused (cancel, amend, ...)."""

    seq: int
    account_id: int
    code: RejectCode
    reason: str


@fast_init
@dataclass(frozen=True, slots=True)
class BookUpdated:
    """The levels a command changed, with their new total sizes (0: the level is gone)."""

    seq: int
    symbol: str
    update_id: int
    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]


@fast_init
@dataclass(frozen=True, slots=True)
class PositionChanged:
    """A position or its settings after the command; cost and isolated margin in atoms."""

    seq: int
    account_id: int
    symbol: str
    qty: int
    cost: int
    margin_mode: MarginMode
    leverage: int
    isolated_margin: int


@fast_init
@dataclass(frozen=True, slots=True)
class BalanceChanged:
    """An account's wallet balance after the command changed it (holds are not changes)."""

    seq: int
    account_id: int
    wallet_balance: int


@fast_init
@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One movement of money in or out of an account's wallet or isolated margin."""

    seq: int
    account_id: int
    symbol: str | None
    kind: LedgerEntryKind
    amount: int


@fast_init
@dataclass(frozen=True, slots=True)
class MarginCall:
    """The margin ratio crossed the warning threshold (symbol None: the cross account)."""

    seq: int
    account_id: int
    symbol: str | None
    margin_ratio: int
    margin_balance: int
    maintenance_margin: int


@fast_init
@dataclass(frozen=True, slots=True)
class MarkUpdated:
    seq: int
    symbol: str
    index_price: int
    mark_price: int


@fast_init
@dataclass(frozen=True, slots=True)
class Liquidated:
    """Why and how a position was liquidated, every step with its numbers.

    Money in atoms, prices in ticks. margin_balance and maintenance_margin are at the mark
    that triggered it (the account's cross figures for a cross position). The position left
    through the book (book_qty), then to the insurance fund (insurance_qty) and then by
    auto-deleveraging opposite positions at the bankruptcy price (adl: account id, qty).
    """

    seq: int
    account_id: int
    symbol: str
    margin_mode: MarginMode
    order_id: int
    side: Side
    qty: int
    mark_price: int
    margin_balance: int
    maintenance_margin: int
    tier: int
    liquidation_price: int | None
    bankruptcy_price: int
    book_qty: int
    insurance_qty: int
    adl: tuple[tuple[int, int], ...]
    clearance_fee: int
    insurance_fund_before: int
    insurance_fund_after: int


@fast_init
@dataclass(frozen=True, slots=True)
class AutoDeleveraged:
    """An opposite position was closed at a liquidated position's bankruptcy price."""

    seq: int
    account_id: int
    symbol: str
    qty: int
    price: int
    liquidated_account_id: int


@fast_init
@dataclass(frozen=True, slots=True)
class TradingStatusChanged:
    seq: int
    symbol: str
    halted: bool


Event = (
    AccountCreated
    | OrderAccepted
    | OrderRejected
    | OrderTriggered
    | OrderFilled
    | OrderCanceled
    | OrderExpired
    | OrderAmended
    | CommandRejected
    | BookUpdated
    | PositionChanged
    | MarkUpdated
    | BalanceChanged
    | LedgerEntry
    | MarginCall
    | Liquidated
    | AutoDeleveraged
    | TradingStatusChanged
)

# ---------------------------------------------------------------------- hot-path builders

# The events a trading command makes, built about three times faster than by calling the
# class (see records.builder); the result is the same frozen instance.
build_order_accepted = builder(OrderAccepted)
build_order_filled = builder(OrderFilled)
build_order_canceled = builder(OrderCanceled)
build_order_expired = builder(OrderExpired)
build_book_updated = builder(BookUpdated)
build_position_changed = builder(PositionChanged)
build_balance_changed = builder(BalanceChanged)
