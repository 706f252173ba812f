"""Channels and the publisher that turns each command's events into stream notifications.

The publisher is a sequencer listener: it runs synchronously after each command, records
history, renders each notification's data once and enqueues it on every subscribed session.
It never awaits. Book deltas and tickers may be conflated for a slow reader (the per-channel
seq then shows the gap); trades, liquidations and account events never are.

Each notification is serialised once, as the bytes after its seq (`stream_tail`); a reader
costs only its seq and the bytes around it.
"""

from __future__ import annotations

from typing import Any

from exchange.api import render
from exchange.api.context import ApiContext
from exchange.api.errors import invalid_params
from exchange.api.history import Fill, Trade
from exchange.api.jsonrpc import encode, stream_tail
from exchange.api.session import Session
from exchange.core.commands import Command
from exchange.core.enums import LiquiditySide
from exchange.core.events import (
    AutoDeleveraged,
    BalanceChanged,
    BookUpdated,
    CommandRejected,
    Event,
    LedgerEntry,
    Liquidated,
    MarginCall,
    MarkUpdated,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderTriggered,
    PositionChanged,
    TradingStatusChanged,
)

ACCOUNT = "account"
MARKET_KINDS = ("book", "trades", "ticker", "liquidations")

_ORDER_EVENTS = (
    OrderAccepted,
    OrderTriggered,
    OrderFilled,
    OrderCanceled,
    OrderExpired,
    OrderAmended,
)


def check_channel(context: ApiContext, channel: object, field: str) -> str:
    """Return a valid channel name or raise -32602 naming the field."""
    if not isinstance(channel, str):
        raise invalid_params(field, "a channel must be a string")
    if channel == ACCOUNT:
        return channel
    kind, _, symbol = channel.partition(".")
    if kind not in MARKET_KINDS or symbol not in context.exchange.markets:
        raise invalid_params(
            field,
            f"unknown channel {channel[:64]!r}: account, or book|trades|ticker|"
            "liquidations followed by .SYMBOL",
        )
    return channel


def _tail(data: Any) -> bytes:
    return stream_tail(encode(data))


class Publisher:
    """Who listens to which channel, and the sequencer listener that feeds them."""

    def __init__(self, context: ApiContext) -> None:
        self.context = context
        self.channels: dict[str, set[Session]] = {}
        self.accounts: dict[int, set[Session]] = {}

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, session: Session, channel: str) -> None:
        if channel in session.channels:
            return
        session.channels[channel] = 0
        if channel == ACCOUNT:
            assert session.account_id is not None
            self.accounts.setdefault(session.account_id, set()).add(session)
            return
        self.channels.setdefault(channel, set()).add(session)
        kind, _, symbol = channel.partition(".")
        if kind == "book":
            depth = self.context.exchange.depth(symbol)
            data = render.book(self.context.instrument(symbol), depth)
            session.push_tail(channel, _tail({"type": "snapshot", **data}), conflate=False)
        elif kind == "ticker":
            session.push_tail(channel, _tail(self.context.ticker(symbol)), conflate=True)

    def unsubscribe(self, session: Session, channel: str) -> None:
        if session.channels.pop(channel, None) is None:
            return
        if channel == ACCOUNT:
            if session.account_id is not None:
                self.accounts.get(session.account_id, set()).discard(session)
            return
        self.channels.get(channel, set()).discard(session)

    def drop(self, session: Session) -> None:
        for channel in list(session.channels):
            self.unsubscribe(session, channel)

    # ------------------------------------------------------------------ publishing

    def __call__(self, command: Command, events: list[Event]) -> None:
        context = self.context
        context.history.record(command, events)
        tickers: set[str] = set()
        orders: dict[int, int] = {}
        for event in events:
            if isinstance(event, BookUpdated):
                self._book(event)
                tickers.add(event.symbol)
            # A tuple, not A | B: compiled, the union is built anew on every call.
            elif isinstance(event, (MarkUpdated, TradingStatusChanged)):
                tickers.add(event.symbol)
            elif isinstance(event, OrderFilled):
                self._fill(event, command.ts)
                orders[event.order_id] = event.account_id
            elif isinstance(event, _ORDER_EVENTS):
                orders[event.order_id] = event.account_id
            elif isinstance(event, Liquidated):
                self._liquidated(event, command.ts)
            else:
                self._account_event(event)
        for order_id, account_id in orders.items():
            sessions = self.accounts.get(account_id)
            view = context.history.orders.get(order_id)
            if sessions and view is not None:
                data = {"event": "order", **render.order(context.instrument(view.symbol), view)}
                self._to_account(account_id, data)
        for symbol in tickers:
            channel = f"ticker.{symbol}"
            if self.channels.get(channel):
                self._market(channel, _tail(context.ticker(symbol)), conflate=True)

    def _market(self, channel: str, tail: bytes, *, conflate: bool) -> None:
        for session in self.channels.get(channel, ()):
            session.push_tail(channel, tail, conflate=conflate)

    def _to_account(self, account_id: int, data: dict[str, Any]) -> None:
        sessions = self.accounts.get(account_id)
        if not sessions:
            return
        tail = _tail(data)
        for session in sessions:
            session.push_tail(ACCOUNT, tail)

    def _book(self, event: BookUpdated) -> None:
        channel = f"book.{event.symbol}"
        sessions = self.channels.get(channel)
        if not sessions:
            return
        instrument = self.context.instrument(event.symbol)
        delta = _tail(
            {
                "type": "delta",
                "symbol": event.symbol,
                "update_id": event.update_id,
                "bids": render.levels(instrument, event.bids),
                "asks": render.levels(instrument, event.asks),
            }
        )
        snapshot: bytes | None = None
        for session in sessions:
            if session.outbox.market_waiting(channel):
                # Deltas cannot be merged into the one still queued, and dropping one would
                # break the chain: replace it with the whole book as it is now. Later deltas
                # of the same batch carry update ids the snapshot already includes.
                if snapshot is None:
                    depth = self.context.exchange.depth(event.symbol)
                    snapshot = _tail({"type": "snapshot", **render.book(instrument, depth)})
                session.push_tail(channel, snapshot, conflate=True)
            else:
                session.push_tail(channel, delta, conflate=True)

    def _fill(self, event: OrderFilled, ts: int) -> None:
        instrument = self.context.instrument(event.symbol)
        if event.liquidity_side is LiquiditySide.TAKER:
            channel = f"trades.{event.symbol}"
            if self.channels.get(channel):
                trade = Trade(
                    event.symbol, event.trade_id, event.last_px, event.last_qty, event.side, ts
                )
                self._market(channel, _tail(render.trade(instrument, trade)), conflate=False)
        if self.accounts.get(event.account_id):
            data = {"event": "fill", **render.fill(instrument, Fill(event, ts))}
            self._to_account(event.account_id, data)

    def _liquidated(self, event: Liquidated, ts: int) -> None:
        instrument = self.context.instrument(event.symbol)
        channel = f"liquidations.{event.symbol}"
        if self.channels.get(channel):
            tail = _tail(render.public_liquidation(instrument, event, ts))
            self._market(channel, tail, conflate=False)
        self._to_account(event.account_id, render.liquidation(instrument, event))

    def _account_event(self, event: Event) -> None:
        account_id = getattr(event, "account_id", None)
        if account_id is None or not self.accounts.get(account_id):
            return
        data: dict[str, Any]
        if isinstance(event, PositionChanged):
            data = render.position_changed(self.context.instrument(event.symbol), event)
        elif isinstance(event, BalanceChanged):
            data = render.balance_changed(event)
        elif isinstance(event, LedgerEntry):
            data = render.ledger_entry(event)
        elif isinstance(event, MarginCall):
            data = render.margin_call(event)
        elif isinstance(event, AutoDeleveraged):
            data = render.auto_deleveraged(self.context.instrument(event.symbol), event)
        elif isinstance(event, OrderRejected):
            data = render.order_rejected(event)
        elif isinstance(event, CommandRejected):
            data = render.command_rejected(event)
        else:
            return
        self._to_account(account_id, data)
