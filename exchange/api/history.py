"""What the API must show that the core does not keep: finished orders, fills, the ledger.

The core forgets an order once it is finished and keeps no trade or money history; these
read models are built from the events the sequencer publishes, in order, and bounded.
Nothing here decides anything: it records what the core said.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, fields
from typing import Final

from exchange.core.commands import Command, PlaceOrder, SettleFunding
from exchange.core.enums import (
    LiquiditySide,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    TriggerBy,
)
from exchange.core.events import (
    AutoDeleveraged,
    Event,
    LedgerEntry,
    MarkUpdated,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderTriggered,
)
from exchange.core.records import fast_init

FINISHED_ORDERS_KEPT = 1_000
"""Finished orders remembered per account for order.get."""

FILLS_KEPT = 1_000
LEDGER_KEPT = 1_000
TRADES_KEPT = 1_000
FUNDING_KEPT = 1_000
"""Settled funding rates remembered per symbol."""
DELEVERAGED_KEPT = 1_000
"""Positions closed by auto-deleveraging remembered per account."""


@dataclass(slots=True)
class OrderView:
    """An order as its owner sees it, open or finished."""

    order_id: int
    account_id: int
    symbol: str
    side: Side
    order_type: OrderType
    qty: int
    price: int | None
    trigger_price: int | None = None
    trigger_by: TriggerBy = TriggerBy.LAST
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    close_position: bool = False
    client_order_id: str | None = None
    status: OrderStatus = OrderStatus.NEW
    filled_qty: int = 0
    filled_ticks_lots: int = 0
    fee: int = 0
    reason: str | None = None
    liquidation: bool = False
    created_ts: int = 0
    updated_ts: int = 0
    triggered_ts: int = 0
    """When a conditional order's trigger fired; 0 until it does."""

    # Written out so that mypyc compiles it into a native constructor (one per order).
    def __init__(
        self,
        order_id: int,
        account_id: int,
        symbol: str,
        side: Side,
        order_type: OrderType,
        qty: int,
        price: int | None,
        trigger_price: int | None = None,
        trigger_by: TriggerBy = TriggerBy.LAST,
        time_in_force: TimeInForce = TimeInForce.GTC,
        reduce_only: bool = False,
        close_position: bool = False,
        client_order_id: str | None = None,
        status: OrderStatus = OrderStatus.NEW,
        filled_qty: int = 0,
        filled_ticks_lots: int = 0,
        fee: int = 0,
        reason: str | None = None,
        liquidation: bool = False,
        created_ts: int = 0,
        updated_ts: int = 0,
        triggered_ts: int = 0,
    ) -> None:
        self.order_id = order_id
        self.account_id = account_id
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.qty = qty
        self.price = price
        self.trigger_price = trigger_price
        self.trigger_by = trigger_by
        self.time_in_force = time_in_force
        self.reduce_only = reduce_only
        self.close_position = close_position
        self.client_order_id = client_order_id
        self.status = status
        self.filled_qty = filled_qty
        self.filled_ticks_lots = filled_ticks_lots
        self.fee = fee
        self.reason = reason
        self.liquidation = liquidation
        self.created_ts = created_ts
        self.updated_ts = updated_ts
        self.triggered_ts = triggered_ts

    def __reduce__(self) -> tuple[type[OrderView], tuple[object, ...]]:
        # A call with every field: compiled, the class has no slots to pickle.
        return (OrderView, tuple(getattr(self, name) for name in _ORDER_VIEW_FIELDS))

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        # Snapshots written before __reduce__ pickled the slots; the oldest lack triggered_ts.
        self.triggered_ts = 0
        for name, value in state[1].items():
            setattr(self, name, value)


_ORDER_VIEW_FIELDS: Final = tuple(field.name for field in fields(OrderView))


@dataclass(frozen=True, slots=True)
class Fill:
    event: OrderFilled
    ts: int


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    trade_id: int
    price: int
    qty: int
    taker_side: Side
    ts: int


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One money movement of an account: kind, signed amount in atoms, symbol, seq, ts."""

    seq: int
    ts: int
    kind: str
    symbol: str | None
    amount: int


@dataclass(frozen=True, slots=True)
class FundingSettlement:
    """One symbol's settled funding: the rate (RATE_SCALE), the mark (ticks), seq and ts."""

    symbol: str
    rate: int
    mark_price: int | None
    seq: int
    ts: int


@dataclass(frozen=True, slots=True)
class Deleveraged:
    """Part of a position closed by auto-deleveraging: the closing side, qty and price."""

    symbol: str
    side: Side
    qty: int
    price: int
    seq: int
    ts: int


# Built through their slots and pickled as calls with their fields, in either kind of code;
# set after the classes, not as a decorator, which mypyc would compile as a Python class.
for _kind in (Fill, Trade, LedgerRow, FundingSettlement, Deleveraged):
    fast_init(_kind)


class AccountHistory:
    """One account's recent fills and ledger rows, and the ids of its finished orders."""

    __slots__ = ("fills", "finished", "ledger")

    def __init__(
        self,
        fills: deque[Fill] | None = None,
        ledger: deque[LedgerRow] | None = None,
        finished: deque[int] | None = None,
    ) -> None:
        self.fills: deque[Fill] = deque(maxlen=FILLS_KEPT) if fills is None else fills
        self.ledger: deque[LedgerRow] = deque(maxlen=LEDGER_KEPT) if ledger is None else ledger
        self.finished: deque[int] = deque() if finished is None else finished

    def __reduce__(self) -> tuple[type[AccountHistory], tuple[object, ...]]:
        return (AccountHistory, (self.fills, self.ledger, self.finished))

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        # Snapshots written before __reduce__ pickled the slots.
        for name, value in state[1].items():
            setattr(self, name, value)


class History:
    """Orders, fills, ledger rows, public trades, settled funding and auto-deleveraged
    positions, fed by `record(command, events)`.

    Compiled by mypyc (exchange/accelerator.py), as everything it holds: the sequencer calls
    `record` for every command, and every order reply reads an OrderView.
    """

    def __init__(self, symbols: list[str]) -> None:
        self.orders: dict[int, OrderView] = {}
        self.accounts: dict[int, AccountHistory] = {}
        self.trades: dict[str, deque[Trade]] = {s: deque(maxlen=TRADES_KEPT) for s in symbols}
        self.funding: dict[str, deque[FundingSettlement]] = {
            s: deque(maxlen=FUNDING_KEPT) for s in symbols
        }
        self.deleveraged: dict[int, deque[Deleveraged]] = {}
        self.marks: dict[str, int] = {}

    def __reduce__(self) -> tuple[object, ...]:
        # Compiled, the class has no __dict__ to pickle: it is remade from its symbols, then
        # given its state.
        state = {
            "orders": self.orders,
            "accounts": self.accounts,
            "trades": self.trades,
            "funding": self.funding,
            "deleveraged": self.deleveraged,
            "marks": self.marks,
        }
        return (History, (list(self.trades),), state)

    def __setstate__(self, state: dict[str, object]) -> None:
        # A snapshot taken before funding and auto-deleveraging were recorded lacks them; one
        # taken before __reduce__ was written is restored without __init__.
        trades = state.get("trades")
        symbols = list(trades) if isinstance(trades, dict) else []
        self.funding = {s: deque(maxlen=FUNDING_KEPT) for s in symbols}
        self.deleveraged = {}
        self.marks = {}
        for name, value in state.items():
            setattr(self, name, value)

    def account(self, account_id: int) -> AccountHistory:
        history = self.accounts.get(account_id)
        if history is None:
            history = self.accounts[account_id] = AccountHistory()
        return history

    def record(self, command: Command, events: list[Event]) -> None:
        ts = command.ts
        if type(command) is SettleFunding:
            # The mark a settlement paid at is the last one published before it.
            for item in command.rates:
                self.funding.setdefault(item.symbol, deque(maxlen=FUNDING_KEPT)).append(
                    FundingSettlement(
                        item.symbol, item.rate, self.marks.get(item.symbol), command.seq, ts
                    )
                )
        for event in events:
            kind = type(event)
            if kind is OrderFilled:
                self._filled(event, ts)  # type: ignore[arg-type]
            elif kind is OrderAccepted:
                self._accepted(event, command, ts)  # type: ignore[arg-type]
            elif kind is OrderCanceled or kind is OrderExpired:
                self._ended(event, ts)  # type: ignore[arg-type]
            elif kind is OrderTriggered:
                view = self.orders.get(event.order_id)  # type: ignore[union-attr]
                if view is not None:
                    view.status = OrderStatus.TRIGGERED
                    view.updated_ts = view.triggered_ts = ts
            elif kind is OrderAmended:
                self._amended(event, ts)  # type: ignore[arg-type]
            elif kind is LedgerEntry:
                entry: LedgerEntry = event  # type: ignore[assignment]
                self.account(entry.account_id).ledger.append(
                    LedgerRow(entry.seq, ts, entry.kind.value, entry.symbol, entry.amount)
                )
            elif kind is MarkUpdated:
                mark: MarkUpdated = event  # type: ignore[assignment]
                self.marks[mark.symbol] = mark.mark_price
            elif kind is AutoDeleveraged:
                self._deleveraged(event, events, ts)  # type: ignore[arg-type]

    def _deleveraged(self, event: AutoDeleveraged, events: list[Event], ts: int) -> None:
        # The deleveraged position closes on the other side of the liquidation order, which
        # the same command accepted.
        side = Side.BUY
        for other in events:
            if (
                isinstance(other, OrderAccepted)
                and other.account_id == event.liquidated_account_id
                and other.symbol == event.symbol
            ):
                side = Side.SELL if other.side is Side.BUY else Side.BUY
                break
        rows = self.deleveraged.get(event.account_id)
        if rows is None:
            rows = self.deleveraged[event.account_id] = deque(maxlen=DELEVERAGED_KEPT)
        rows.append(Deleveraged(event.symbol, side, event.qty, event.price, event.seq, ts))

    def _accepted(self, event: OrderAccepted, command: Command, ts: int) -> None:
        view = OrderView(
            event.order_id,
            event.account_id,
            event.symbol,
            event.side,
            event.order_type,
            event.qty,
            event.price,
            client_order_id=event.client_order_id,
            created_ts=ts,
            updated_ts=ts,
        )
        if (
            isinstance(command, PlaceOrder)
            and command.account_id == event.account_id
            and command.client_order_id == event.client_order_id
            and command.symbol == event.symbol
        ):
            view.trigger_price = command.trigger_price
            view.trigger_by = command.trigger_by
            view.time_in_force = command.time_in_force
            view.reduce_only = command.reduce_only
            view.close_position = command.close_position
        else:
            # Only the liquidation engine places orders the command did not ask for.
            view.liquidation = True
            view.time_in_force = TimeInForce.IOC
            view.reduce_only = True
        self.orders[event.order_id] = view

    def _filled(self, event: OrderFilled, ts: int) -> None:
        history = self.account(event.account_id)
        history.fills.append(Fill(event, ts))
        if event.fee:
            history.ledger.append(LedgerRow(event.seq, ts, "fee", event.symbol, -event.fee))
        if event.realized_pnl:
            history.ledger.append(
                LedgerRow(event.seq, ts, "realized_pnl", event.symbol, event.realized_pnl)
            )
        if event.liquidity_side is LiquiditySide.TAKER:
            self.trades[event.symbol].append(
                Trade(event.symbol, event.trade_id, event.last_px, event.last_qty, event.side, ts)
            )
        view = self.orders.get(event.order_id)
        if view is None:
            return
        view.filled_qty += event.last_qty
        view.filled_ticks_lots += event.last_px * event.last_qty
        view.fee += event.fee
        view.updated_ts = ts
        if event.leaves_qty == 0:
            view.status = OrderStatus.FILLED
            self._finish(view)
        else:
            view.status = OrderStatus.PARTIALLY_FILLED

    def _ended(self, event: OrderCanceled | OrderExpired, ts: int) -> None:
        view = self.orders.get(event.order_id)
        if view is None:
            return
        view.status = (
            OrderStatus.CANCELED if isinstance(event, OrderCanceled) else OrderStatus.EXPIRED
        )
        view.reason = event.reason.value
        view.updated_ts = ts
        self._finish(view)

    def _amended(self, event: OrderAmended, ts: int) -> None:
        view = self.orders.get(event.order_id)
        if view is None:
            return
        view.price = event.price
        view.qty = event.qty
        view.updated_ts = ts

    def _finish(self, view: OrderView) -> None:
        finished = self.account(view.account_id).finished
        finished.append(view.order_id)
        if len(finished) > FINISHED_ORDERS_KEPT:
            self.orders.pop(finished.popleft(), None)
