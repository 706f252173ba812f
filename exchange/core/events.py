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
from exchange.core.records import builder, fast_init, is_compiled


@dataclass(frozen=True, slots=True)
class AccountCreated:
    seq: int
    account_id: int
    name: str


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

    def __init__(
        self,
        seq: int,
        order_id: int,
        account_id: int,
        symbol: str,
        side: Side,
        order_type: OrderType,
        qty: int,
        price: int | None,
        client_order_id: str | None,
    ) -> None:
        self.seq = seq  # type: ignore[misc]
        self.order_id = order_id  # type: ignore[misc]
        self.account_id = account_id  # type: ignore[misc]
        self.symbol = symbol  # type: ignore[misc]
        self.side = side  # type: ignore[misc]
        self.order_type = order_type  # type: ignore[misc]
        self.qty = qty  # type: ignore[misc]
        self.price = price  # type: ignore[misc]
        self.client_order_id = client_order_id  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class OrderRejected:
    seq: int
    account_id: int
    symbol: str
    client_order_id: str | None
    code: RejectCode
    reason: str


@dataclass(frozen=True, slots=True)
class OrderTriggered:
    """A conditional order's trigger fired; it now works as a market or limit order."""

    seq: int
    order_id: int
    account_id: int
    symbol: str
    trigger_price: int
    qty: int


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

    def __init__(
        self,
        seq: int,
        order_id: int,
        account_id: int,
        symbol: str,
        side: Side,
        trade_id: int,
        last_px: int,
        last_qty: int,
        leaves_qty: int,
        liquidity_side: LiquiditySide,
        fee: int,
        realized_pnl: int,
    ) -> None:
        self.seq = seq  # type: ignore[misc]
        self.order_id = order_id  # type: ignore[misc]
        self.account_id = account_id  # type: ignore[misc]
        self.symbol = symbol  # type: ignore[misc]
        self.side = side  # type: ignore[misc]
        self.trade_id = trade_id  # type: ignore[misc]
        self.last_px = last_px  # type: ignore[misc]
        self.last_qty = last_qty  # type: ignore[misc]
        self.leaves_qty = leaves_qty  # type: ignore[misc]
        self.liquidity_side = liquidity_side  # type: ignore[misc]
        self.fee = fee  # type: ignore[misc]
        self.realized_pnl = realized_pnl  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class OrderCanceled:
    seq: int
    order_id: int
    account_id: int
    symbol: str
    reason: CancelReason

    def __init__(
        self, seq: int, order_id: int, account_id: int, symbol: str, reason: CancelReason
    ) -> None:
        self.seq = seq  # type: ignore[misc]
        self.order_id = order_id  # type: ignore[misc]
        self.account_id = account_id  # type: ignore[misc]
        self.symbol = symbol  # type: ignore[misc]
        self.reason = reason  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class OrderExpired:
    seq: int
    order_id: int
    account_id: int
    symbol: str
    reason: ExpireReason

    def __init__(
        self, seq: int, order_id: int, account_id: int, symbol: str, reason: ExpireReason
    ) -> None:
        self.seq = seq  # type: ignore[misc]
        self.order_id = order_id  # type: ignore[misc]
        self.account_id = account_id  # type: ignore[misc]
        self.symbol = symbol  # type: ignore[misc]
        self.reason = reason  # type: ignore[misc]


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


@dataclass(frozen=True, slots=True)
class CommandRejected:
    """A command other than a new order was refused (cancel, amend, ...)."""

    seq: int
    account_id: int
    code: RejectCode
    reason: str


@dataclass(frozen=True, slots=True)
class BookUpdated:
    """The levels a command changed, with their new total sizes (0: the level is gone)."""

    seq: int
    symbol: str
    update_id: int
    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]

    def __init__(
        self,
        seq: int,
        symbol: str,
        update_id: int,
        bids: tuple[tuple[int, int], ...],
        asks: tuple[tuple[int, int], ...],
    ) -> None:
        self.seq = seq  # type: ignore[misc]
        self.symbol = symbol  # type: ignore[misc]
        self.update_id = update_id  # type: ignore[misc]
        self.bids = bids  # type: ignore[misc]
        self.asks = asks  # type: ignore[misc]


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

    def __init__(
        self,
        seq: int,
        account_id: int,
        symbol: str,
        qty: int,
        cost: int,
        margin_mode: MarginMode,
        leverage: int,
        isolated_margin: int,
    ) -> None:
        self.seq = seq  # type: ignore[misc]
        self.account_id = account_id  # type: ignore[misc]
        self.symbol = symbol  # type: ignore[misc]
        self.qty = qty  # type: ignore[misc]
        self.cost = cost  # type: ignore[misc]
        self.margin_mode = margin_mode  # type: ignore[misc]
        self.leverage = leverage  # type: ignore[misc]
        self.isolated_margin = isolated_margin  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class BalanceChanged:
    """An account's wallet balance after the command changed it (holds are not changes)."""

    seq: int
    account_id: int
    wallet_balance: int

    def __init__(self, seq: int, account_id: int, wallet_balance: int) -> None:
        self.seq = seq  # type: ignore[misc]
        self.account_id = account_id  # type: ignore[misc]
        self.wallet_balance = wallet_balance  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One movement of money in or out of an account's wallet or isolated margin."""

    seq: int
    account_id: int
    symbol: str | None
    kind: LedgerEntryKind
    amount: int


@dataclass(frozen=True, slots=True)
class MarginCall:
    """The margin ratio crossed the warning threshold (symbol None: the cross account)."""

    seq: int
    account_id: int
    symbol: str | None
    margin_ratio: int
    margin_balance: int
    maintenance_margin: int


@dataclass(frozen=True, slots=True)
class MarkUpdated:
    seq: int
    symbol: str
    index_price: int
    mark_price: int


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


@dataclass(frozen=True, slots=True)
class AutoDeleveraged:
    """An opposite position was closed at a liquidated position's bankruptcy price."""

    seq: int
    account_id: int
    symbol: str
    qty: int
    price: int
    liquidated_account_id: int


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

# ---------------------------------------------------------------------- construction

# Commands' and events' fields are set through their slots (records.fast_init). Set after the
# classes rather than as a decorator: mypyc compiles a class with an unknown decorator as an
# ordinary Python class, which would make every field read a dictionary lookup.
for _kind in (
    AccountCreated,
    OrderAccepted,
    OrderRejected,
    OrderTriggered,
    OrderFilled,
    OrderCanceled,
    OrderExpired,
    OrderAmended,
    CommandRejected,
    BookUpdated,
    PositionChanged,
    MarkUpdated,
    BalanceChanged,
    LedgerEntry,
    MarginCall,
    Liquidated,
    AutoDeleveraged,
    TradingStatusChanged,
):
    fast_init(_kind)

# ---------------------------------------------------------------------- hot-path builders

# The events every trading command makes, built by the functions below. Compiled by mypyc
# (exchange/accelerator.py), each is a native call into the class's own __init__, about 30 ns,
# its integers never boxed. Interpreted, that __init__ cannot run (the frozen class refuses
# its stores, so fast_init replaced it), and the names are bound instead to records.builder,
# which fills an unfrozen twin: about three times faster than calling the class. Either way
# the result is the same frozen instance.


def build_order_accepted(
    seq: int,
    order_id: int,
    account_id: int,
    symbol: str,
    side: Side,
    order_type: OrderType,
    qty: int,
    price: int | None,
    client_order_id: str | None,
) -> OrderAccepted:
    return OrderAccepted(
        seq, order_id, account_id, symbol, side, order_type, qty, price, client_order_id
    )


def build_order_filled(
    seq: int,
    order_id: int,
    account_id: int,
    symbol: str,
    side: Side,
    trade_id: int,
    last_px: int,
    last_qty: int,
    leaves_qty: int,
    liquidity_side: LiquiditySide,
    fee: int,
    realized_pnl: int,
) -> OrderFilled:
    return OrderFilled(
        seq,
        order_id,
        account_id,
        symbol,
        side,
        trade_id,
        last_px,
        last_qty,
        leaves_qty,
        liquidity_side,
        fee,
        realized_pnl,
    )


def build_order_canceled(
    seq: int, order_id: int, account_id: int, symbol: str, reason: CancelReason
) -> OrderCanceled:
    return OrderCanceled(seq, order_id, account_id, symbol, reason)


def build_order_expired(
    seq: int, order_id: int, account_id: int, symbol: str, reason: ExpireReason
) -> OrderExpired:
    return OrderExpired(seq, order_id, account_id, symbol, reason)


def build_book_updated(
    seq: int,
    symbol: str,
    update_id: int,
    bids: tuple[tuple[int, int], ...],
    asks: tuple[tuple[int, int], ...],
) -> BookUpdated:
    return BookUpdated(seq, symbol, update_id, bids, asks)


def build_position_changed(
    seq: int,
    account_id: int,
    symbol: str,
    qty: int,
    cost: int,
    margin_mode: MarginMode,
    leverage: int,
    isolated_margin: int,
) -> PositionChanged:
    return PositionChanged(
        seq, account_id, symbol, qty, cost, margin_mode, leverage, isolated_margin
    )


def build_balance_changed(seq: int, account_id: int, wallet_balance: int) -> BalanceChanged:
    return BalanceChanged(seq, account_id, wallet_balance)


if not is_compiled(build_order_filled):
    globals().update(
        build_order_accepted=builder(OrderAccepted),
        build_order_filled=builder(OrderFilled),
        build_order_canceled=builder(OrderCanceled),
        build_order_expired=builder(OrderExpired),
        build_book_updated=builder(BookUpdated),
        build_position_changed=builder(PositionChanged),
        build_balance_changed=builder(BalanceChanged),
    )
