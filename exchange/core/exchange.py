"""The exchange: one entry point, `Exchange.apply(command) -> list[Event]`.

Pure and synchronous. Time, ids and ordering come from the commands; the same commands
always give the same events and the same `state_hash()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, ClassVar, Final

from exchange.core import integrity
from exchange.core.codes import RejectCode
from exchange.core.commands import (
    AdjustIsolatedMargin,
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    PlaceOrder,
    SetLeverage,
    SetMarginMode,
    SettleFunding,
    SetTradingStatus,
    UpdateMark,
    Withdraw,
)
from exchange.core.enums import (
    CONDITIONAL_ORDER_TYPES,
    LIMIT_PRICE_ORDER_TYPES,
    CancelReason,
    ExpireReason,
    LedgerEntryKind,
    LiquiditySide,
    MarginMode,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerBy,
)
from exchange.core.events import (
    AccountCreated,
    AutoDeleveraged,
    CommandRejected,
    Event,
    LedgerEntry,
    Liquidated,
    MarginCall,
    MarkUpdated,
    OrderAccepted,
    OrderAmended,
    OrderRejected,
    OrderTriggered,
    TradingStatusChanged,
    build_order_accepted,
    build_order_canceled,
    build_order_expired,
    build_order_filled,
)
from exchange.core.instruments import Instrument
from exchange.core.ledger import Account, Ledger, Position
from exchange.core.liquidation import (
    DEFAULT_MARGIN_CALL_RATIO,
    adl_queue,
    bankruptcy_ticks,
    is_liquidatable,
    is_margin_call,
    liquidation_ticks,
    margin_ratio,
)
from exchange.core.margin import initial_margin
from exchange.core.market import Market
from exchange.core.numbers import RATE_SCALE
from exchange.core.orders import TRANSITIONS, Order, check_transition
from exchange.core.pickling import Picklable
from exchange.core.risk_index import RiskIndex
from exchange.core.validation import check_amend, check_new_order

# Enum members and tables the matching path reads often. In CPython 3.11 `Enum.MEMBER` costs
# about 80 ns through the metaclass; a module global costs 10. Final matters to the mypyc
# build: it reads a Final name from a C static, any other module global (an imported one too)
# through a dict lookup. The event builders are called by their own names instead, which the
# build turns into native calls.
_BUY: Final = Side.BUY
_IOC: Final = TimeInForce.IOC
_FOK: Final = TimeInForce.FOK
_POST_ONLY: Final = TimeInForce.POST_ONLY
_FILLED: Final = OrderStatus.FILLED
_PARTIALLY_FILLED: Final = OrderStatus.PARTIALLY_FILLED
_CANCELED: Final = OrderStatus.CANCELED
_EXPIRED: Final = OrderStatus.EXPIRED
_USER_CANCEL: Final = CancelReason.USER
_OPEN_STATUSES: Final = frozenset(status for status in OrderStatus if status.is_open)
_MAKER: Final = LiquiditySide.MAKER
_TAKER: Final = LiquiditySide.TAKER
_NO_PREVENTION: Final = SelfTradePrevention.NONE
_EXPIRE_MAKER: Final = SelfTradePrevention.EXPIRE_MAKER
_EXPIRE_TAKER: Final = SelfTradePrevention.EXPIRE_TAKER
_EXPIRED_BY_TIME_IN_FORCE: Final = ExpireReason.TIME_IN_FORCE
_EXPIRED_BY_PRICE_BAND: Final = ExpireReason.PRICE_BAND
_CONDITIONAL_TYPES: Final = CONDITIONAL_ORDER_TYPES
_LIMIT_PRICE_TYPES: Final = LIMIT_PRICE_ORDER_TYPES
_TRANSITIONS: Final = TRANSITIONS

_MAX_MARGIN_PASSES = 16
"""Liquidations rarely endanger others at the same mark; a cascade stops after this many."""

DEFAULT_SELF_TRADE_PREVENTION = SelfTradePrevention.EXPIRE_MAKER
"""A self-trade cancels the older resting order and lets the new one trade on."""


class SequenceError(ValueError):
    """A command arrived out of order: the shell's bug, never the user's."""


class Exchange(Picklable):
    """Order books, orders, accounts and positions, changed only through `apply`."""

    size_taker_hold_once: ClassVar[bool] = True
    """Whether matching may size a taker's hold once at its end (see _match); tests compare
    with a subclass that sizes it after every fill."""

    def __init__(
        self,
        instruments: Iterable[Instrument] = (),
        *,
        default_self_trade_prevention: SelfTradePrevention = DEFAULT_SELF_TRADE_PREVENTION,
        margin_call_ratio: int = DEFAULT_MARGIN_CALL_RATIO,
        index_risk: bool = True,
    ) -> None:
        self.markets: dict[str, Market] = {}
        for instrument in instruments:
            if instrument.symbol in self.markets:
                raise ValueError(f"instrument {instrument.symbol} is listed twice")
            self.markets[instrument.symbol] = Market(instrument)
        self.ledger = Ledger({symbol: market.instrument for symbol, market in self.markets.items()})
        self.orders: dict[int, Order] = {}
        self.default_self_trade_prevention = default_self_trade_prevention
        highest_rate = max(
            (
                bracket.maintenance_margin_rate
                for market in self.markets.values()
                for bracket in market.instrument.brackets
            ),
            default=0,
        )
        if not highest_rate < margin_call_ratio <= RATE_SCALE:
            # Below the highest maintenance rate a margin call could come after liquidation.
            raise ValueError("margin_call_ratio must lie above every maintenance margin rate")
        self.margin_call_ratio = margin_call_ratio
        # The naive check (index_risk=False) visits every position: kept as the reference
        # the index is tested and measured against.
        self.risk = RiskIndex(self.ledger, margin_call_ratio) if index_risk else None
        self.last_seq = 0
        self.last_ts = 0
        self.next_account_id = 1
        self.next_order_id = 1
        self.next_trade_id = 1
        self._seq = 0
        self._events: list[Event] = []
        self._touched: dict[str, Market] = {}
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            CreateAccount: self._create_account,
            PlaceOrder: self._place_order,
            CancelOrder: self._cancel_order,
            CancelAllOrders: self._cancel_all_orders,
            AmendOrder: self._amend_order,
            UpdateMark: self._update_mark,
            Deposit: self._deposit,
            Withdraw: self._withdraw,
            SetLeverage: self._set_leverage,
            SetMarginMode: self._set_margin_mode,
            AdjustIsolatedMargin: self._adjust_isolated_margin,
            SettleFunding: self._settle_funding,
            SetTradingStatus: self._set_trading_status,
        }

    # ------------------------------------------------------------------ entry point

    def apply(self, command: Command) -> list[Event]:
        """Apply one sequenced command and return the events it caused, in order."""
        if command.seq <= self.last_seq:
            raise SequenceError(f"seq {command.seq} after {self.last_seq}")
        if command.ts < self.last_ts:
            raise SequenceError(f"ts {command.ts} before {self.last_ts}")
        seq = self.last_seq = self._seq = command.seq
        self.last_ts = command.ts
        events: list[Event] = []
        self._events = events
        # The two commonest commands are called directly: through the table each call goes by
        # a bound method, which the mypyc build cannot call natively.
        if type(command) is PlaceOrder:
            self._place_order(command)
        elif type(command) is CancelOrder:
            self._cancel_order(command)
        else:
            self._handlers[type(command)](command)
        touched = self._touched
        if touched:
            for market in touched.values():
                update = market.book.take_update(seq)
                if update is not None:
                    events.append(update)
            touched.clear()
        ledger = self.ledger
        if ledger.changed_wallets or ledger.changed_positions:
            if self.risk is not None:
                self.risk.note_changes()
            ledger.take_changes(seq, events)
        return events

    # ------------------------------------------------------------------ accounts

    def _create_account(self, command: CreateAccount) -> None:
        account_id = self.next_account_id
        self.next_account_id += 1
        self.ledger.open_account(account_id, command.name)
        self._events.append(AccountCreated(self._seq, account_id, command.name))

    # ------------------------------------------------------------------ new orders

    def _place_order(self, command: PlaceOrder) -> None:
        ledger = self.ledger
        account = ledger.user_account(command.account_id)
        market = self.markets.get(command.symbol)
        if account is None:
            self._reject_order(command, RejectCode.UNKNOWN_ACCOUNT, "unknown account")
            return
        if market is None:
            reason = f"unknown symbol {command.symbol}"
            self._reject_order(command, RejectCode.UNKNOWN_SYMBOL, reason)
            return
        if market.halted:
            self._reject_order(command, RejectCode.SYMBOL_HALTED, f"{command.symbol} is halted")
            return
        problem = check_new_order(command, account, market, ledger)
        if problem is not None:
            self._reject_order(command, *problem)
            return
        order_type = command.order_type
        order = Order(
            self.next_order_id,
            command.account_id,
            command.symbol,
            command.side,
            command.order_type,
            command.qty,
            command.price,
            command.trigger_price,
            command.trigger_by,
            command.time_in_force,
            command.reduce_only or command.close_position,
            command.close_position,
            command.client_order_id,
            command.self_trade_prevention or self.default_self_trade_prevention,
        )
        is_conditional = order_type in _CONDITIONAL_TYPES
        if not is_conditional:
            # A conditional order holds margin only once it fires, as on Binance.
            reference = market.mark_price
            if reference is None:
                reference = self._hold_reference(market, order)
            hold_problem = ledger.hold_for_order(account, market.instrument, order, reference)
            if hold_problem is not None:
                self._reject_order(command, *hold_problem)
                return
        order_id = order.order_id
        self.next_order_id = order_id + 1
        self.orders[order_id] = order
        symbol = order.symbol
        open_here = account.open_orders.get(symbol)
        if open_here is None:
            open_here = account.open_orders[symbol] = {}
        open_here[order_id] = order
        if order.client_order_id is not None:
            account.client_orders[order.client_order_id] = order
        self._events.append(
            build_order_accepted(
                self._seq,
                order_id,
                order.account_id,
                symbol,
                order.side,
                order_type,
                order.qty,
                order.price,
                order.client_order_id,
            )
        )
        if is_conditional:
            market.triggers.add(order)
            return
        ledger.track_order(account, order)
        last_price = market.last_price
        self._execute(order, account, market)
        if market.last_price != last_price:
            self._fire_triggers(market)

    @staticmethod
    def _hold_reference(market: Market, order: Order) -> int | None:
        """Return the price a market order's hold is sized at.

        The reference price once there is one; before any mark or trade a market order is
        unbounded, so it is sized at the worst level it could reach in the book.
        """
        reference = market.reference_price()
        if reference is not None or order.order_type in LIMIT_PRICE_ORDER_TYPES:
            return reference
        needed = order.qty - order.filled_qty
        worst = None
        for level in market.book.opposite(order.side).levels_from_best():
            worst = level.price
            needed -= level.size
            if needed <= 0:
                break
        return worst

    def _reject_order(self, command: PlaceOrder, code: RejectCode, reason: str) -> None:
        self._events.append(
            OrderRejected(
                self._seq,
                command.account_id,
                command.symbol,
                command.client_order_id,
                code,
                reason,
            )
        )

    # ------------------------------------------------------------------ matching

    def _execute(self, order: Order, account: Account, market: Market) -> None:
        """Match an active order against the book; rest or expire what is left."""
        book = market.book
        self._touched[order.symbol] = market
        is_buy = order.side is _BUY
        is_market = order.order_type not in _LIMIT_PRICE_TYPES
        limit: int | None
        if is_market:
            band = market.price_band()
            limit = None if band is None else band[is_buy]
        else:
            limit = order.price
        time_in_force = order.time_in_force
        if time_in_force is _FOK and not self._can_fill_completely(order, market, limit):
            self._expire(order, market, _EXPIRED_BY_TIME_IN_FORCE)
            return
        # OrderBook.crosses, inline: most orders rest without trading.
        best = (book.asks if is_buy else book.bids).best
        crosses = best is not None and (
            limit is None or (best <= limit if is_buy else best >= limit)
        )
        if crosses:
            if time_in_force is _POST_ONLY:
                # Only a triggered stop-limit gets here; a new one was rejected up front.
                self._expire(order, market, _EXPIRED_BY_TIME_IN_FORCE)
                return
            self._match(order, account, market, limit)
            if order.qty == order.filled_qty or order.status not in _OPEN_STATUSES:
                return
        if is_market:
            reason = (
                _EXPIRED_BY_PRICE_BAND
                if book.opposite(order.side).best is not None
                else _EXPIRED_BY_TIME_IN_FORCE
            )
            self._expire(order, market, reason)
        elif time_in_force is _IOC or time_in_force is _FOK:
            self._expire(order, market, _EXPIRED_BY_TIME_IN_FORCE)
        else:
            (book.bids if is_buy else book.asks).add(order)

    def _match(self, taker: Order, account: Account, market: Market, limit: int | None) -> None:
        """Trade the taker against resting orders in price-time priority up to limit."""
        is_buy = taker.side is _BUY
        book = market.book
        opposite = book.asks if is_buy else book.bids
        ledger = self.ledger
        accounts = ledger.accounts
        symbol = taker.symbol
        levels = opposite.levels
        changed = opposite.changed
        # A resize keeps the smaller of the hold and its new size. With a mark to value at and
        # no trade with itself, each fill leaves the taker's new size no larger than the one
        # before: its opening lots only shrink, while its basis, the mark, its leverage and the
        # notional that picks its bracket (position plus what is left) stay put. So sizing once
        # when matching ends gives the same hold as sizing after every fill. Otherwise it is
        # sized after every fill: before any mark the hold is valued at the last trade, which
        # each fill moves (tests/core/test_holds.py shows that case), and a trade with itself
        # shrinks what is left but not the position, which moves that notional.
        per_fill = (
            market.mark_price is None
            or taker.self_trade_prevention is _NO_PREVENTION
            or not self.size_taker_hold_once
        )
        while taker.qty > taker.filled_qty:
            best = opposite.best
            if best is None or (limit is not None and (best > limit if is_buy else best < limit)):
                break
            level = levels[best]
            maker = next(iter(level.orders.values()))
            if (
                maker.account_id == taker.account_id
                and taker.self_trade_prevention is not _NO_PREVENTION
            ):
                prevention = taker.self_trade_prevention
                if prevention is not _EXPIRE_TAKER:
                    self._expire(maker, market, ExpireReason.SELF_TRADE_PREVENTION)
                if prevention is not _EXPIRE_MAKER:
                    self._expire(taker, market, ExpireReason.SELF_TRADE_PREVENTION)
                    break
                continue
            qty = min(taker.qty - taker.filled_qty, maker.qty - maker.filled_qty)
            maker_account = accounts[maker.account_id]
            if maker.reduce_only:
                cap = ledger.reducible_qty(maker_account, symbol, maker.side.value)
                if not cap:
                    self._expire(maker, market, ExpireReason.REDUCE_ONLY)
                    continue
                qty = min(qty, cap)
            if taker.reduce_only:
                cap = ledger.reducible_qty(account, symbol, taker.side.value)
                if not cap:
                    self._expire(taker, market, ExpireReason.REDUCE_ONLY)
                    break
                qty = min(qty, cap)
            trade_id = self.next_trade_id
            self.next_trade_id = trade_id + 1
            # BookSide.reduce, inline: the maker rests at the best level.
            level.size -= qty
            changed.add(best)
            self._fill(maker, maker_account, market, qty, best, trade_id, _MAKER)
            self._fill(taker, account, market, qty, best, trade_id, _TAKER)
            if per_fill and taker.hold:
                self._resize_hold(taker, account, market)
            market.last_price = best
        # A taker that filled or expired holds nothing any more.
        if not per_fill and taker.hold:
            self._resize_hold(taker, account, market)

    def _fill(
        self,
        order: Order,
        account: Account,
        market: Market,
        qty: int,
        price: int,
        trade_id: int,
        liquidity_side: LiquiditySide,
    ) -> None:
        instrument = market.instrument
        ledger = self.ledger
        side = order.side
        is_buy = side is _BUY
        filled = order.filled_qty = order.filled_qty + qty
        order.filled_cost += price * qty
        leaves = order.qty - filled
        # Ledger.track_order, inline: the position's open-order totals follow the fill.
        position = account.positions.get(order.symbol) or ledger.position(account, order.symbol)
        if is_buy:
            position.open_buy_qty += leaves - order.counted
        else:
            position.open_sell_qty += leaves - order.counted
        order.counted = leaves
        fee, realized = ledger.settle_fill(
            account,
            position,
            instrument,
            qty if is_buy else -qty,
            price,
            instrument.maker_fee_rate
            if liquidity_side is _MAKER
            else (0 if order.liquidation else instrument.taker_fee_rate),
        )
        status = _FILLED if leaves == 0 else _PARTIALLY_FILLED
        if status not in _TRANSITIONS[order.status]:
            check_transition(order.status, status)  # raises
        order.status = status
        self._events.append(
            build_order_filled(
                self._seq,
                order.order_id,
                order.account_id,
                order.symbol,
                side,
                trade_id,
                price,
                qty,
                leaves,
                liquidity_side,
                fee,
                realized,
            )
        )
        if leaves == 0:
            if order.resting:
                book = market.book
                (book.bids if is_buy else book.asks).remove(order)
            self._close(order, account)
        elif order.hold and liquidity_side is _MAKER:
            # A taker's hold is _match's business (a liquidation order holds nothing).
            self._resize_hold(order, account, market)

    def _resize_hold(self, order: Order, account: Account, market: Market) -> None:
        """Size a partly filled order's hold again, valued at the mark or the last trade."""
        reference = market.mark_price
        if reference is None:
            reference = market.last_price
        self.ledger.resize_hold(account, market.instrument, order, reference)

    def _can_fill_completely(self, order: Order, market: Market, limit: int | None) -> bool:
        """Tell whether a fill-or-kill order would fill in full right now."""
        needed = order.qty - order.filled_qty
        prevention = order.self_trade_prevention
        for level in market.book.opposite(order.side).levels_from_best(limit):
            for maker in level.orders.values():
                if maker.account_id == order.account_id and prevention is not (
                    SelfTradePrevention.NONE
                ):
                    if prevention is SelfTradePrevention.EXPIRE_MAKER:
                        continue
                    return False
                if maker.reduce_only:
                    # A reduce-only maker may be cut short; count only what it can reduce.
                    cap = self.ledger.reducible_qty(
                        self.ledger.accounts[maker.account_id], maker.symbol, maker.side.value
                    )
                    needed -= min(maker.qty - maker.filled_qty, cap)
                else:
                    needed -= maker.qty - maker.filled_qty
                if needed <= 0:
                    break
            if needed <= 0:
                break
        if needed > 0:
            return False
        if order.reduce_only:
            account = self.ledger.accounts[order.account_id]
            return self.ledger.reducible_qty(account, order.symbol, order.side.value) >= (
                order.qty - order.filled_qty
            )
        return True

    # ------------------------------------------------------------------ endings

    def _expire(self, order: Order, market: Market, reason: ExpireReason) -> None:
        account = self.ledger.accounts[order.account_id]
        self._take_out(order, market)
        order.move_to(_EXPIRED)
        self._events.append(
            build_order_expired(self._seq, order.order_id, order.account_id, order.symbol, reason)
        )
        self._close(order, account)

    def _cancel(self, order: Order, account: Account, reason: CancelReason) -> None:
        market = self.markets[order.symbol]
        self._take_out(order, market)
        order.move_to(_CANCELED)
        self._events.append(
            build_order_canceled(self._seq, order.order_id, order.account_id, order.symbol, reason)
        )
        self._close(order, account)

    def _take_out(self, order: Order, market: Market) -> None:
        """Remove an open order from wherever it waits: the book or the trigger index."""
        if order.resting:
            book = market.book
            (book.bids if order.side is _BUY else book.asks).remove(order)
            self._touched[order.symbol] = market
        elif order.waiting:
            market.triggers.remove(order)

    def _close(self, order: Order, account: Account) -> None:
        """Forget a finished order everywhere it was indexed as open."""
        order_id = order.order_id
        del self.orders[order_id]
        open_orders = account.open_orders
        open_here = open_orders[order.symbol]
        del open_here[order_id]
        if not open_here:
            del open_orders[order.symbol]
        if order.client_order_id is not None:
            del account.client_orders[order.client_order_id]
        # Ledger.untrack_order and release_hold, skipped when there is nothing to give back.
        if order.counted:
            self.ledger.untrack_order(account, order)
        if order.hold:
            account.order_margin -= order.hold
            order.hold = 0

    # ------------------------------------------------------------------ triggers

    def _fire_triggers(self, market: Market) -> None:
        """Activate conditional orders whose trigger was reached, oldest first, until none."""
        triggers = market.triggers
        while triggers.count:
            fired: list[int] = []
            if market.mark_price is not None:
                fired.extend(triggers.pop_fired(TriggerBy.MARK, market.mark_price))
            if market.last_price is not None:
                fired.extend(triggers.pop_fired(TriggerBy.LAST, market.last_price))
            if not fired:
                return
            fired.sort()
            for order_id in fired:
                order = self.orders[order_id]
                order.waiting = False
                self._activate(order, market)

    def _activate(self, order: Order, market: Market) -> None:
        account = self.ledger.accounts[order.account_id]
        if order.reduce_only:
            reducible = self.ledger.reducible_qty(account, order.symbol, order.side.value)
            if order.close_position:
                if not reducible:
                    self._expire(order, market, ExpireReason.NO_POSITION)
                    return
                order.qty = reducible
            elif not reducible:
                self._expire(order, market, ExpireReason.REDUCE_ONLY)
                return
        if self.ledger.hold_for_order(
            account, market.instrument, order, self._hold_reference(market, order)
        ):
            self._expire(order, market, ExpireReason.INSUFFICIENT_MARGIN)
            return
        self.ledger.track_order(account, order)
        trigger_price = order.trigger_price
        assert trigger_price is not None
        order.move_to(OrderStatus.TRIGGERED)
        self._events.append(
            OrderTriggered(
                self._seq, order.order_id, order.account_id, order.symbol, trigger_price, order.qty
            )
        )
        self._execute(order, account, market)

    # ------------------------------------------------------------------ cancel and amend

    def _find_order(
        self, account_id: int, order_id: int | None, client_order_id: str | None
    ) -> Order | None:
        """Return the account's open order, or emit why there is none."""
        account = self.ledger.user_account(account_id)
        order: Order | None = None
        if account is None:
            self._reject_command(account_id, RejectCode.UNKNOWN_ACCOUNT, "unknown account")
            return None
        if order_id is not None:
            order = self.orders.get(order_id)
            # Another account's order is "unknown" too: its existence is not ours to reveal.
            if order is not None and (
                order.account_id != account_id
                or (client_order_id is not None and order.client_order_id != client_order_id)
            ):
                order = None
        elif client_order_id is not None:
            order = account.client_orders.get(client_order_id)
        if order is None:
            name = order_id if order_id is not None else client_order_id
            self._reject_command(account_id, RejectCode.UNKNOWN_ORDER, f"no open order {name!r}")
        return order

    def _reject_command(self, account_id: int, code: RejectCode, reason: str) -> None:
        self._events.append(CommandRejected(self._seq, account_id, code, reason))

    def _cancel_order(self, command: CancelOrder) -> None:
        order_id = command.order_id
        if order_id is not None and command.client_order_id is None:
            # The usual cancel, by order id. An open order's account exists and is never the
            # insurance fund's, so _find_order would find this same order.
            order = self.orders.get(order_id)
            if order is not None and order.account_id == command.account_id:
                self._cancel(order, self.ledger.accounts[order.account_id], _USER_CANCEL)
                return
        order = self._find_order(command.account_id, order_id, command.client_order_id)
        if order is not None:
            self._cancel(order, self.ledger.accounts[order.account_id], _USER_CANCEL)

    def _cancel_all_orders(self, command: CancelAllOrders) -> None:
        account = self.ledger.user_account(command.account_id)
        if account is None:
            self._reject_command(command.account_id, RejectCode.UNKNOWN_ACCOUNT, "unknown account")
            return
        if command.symbol is not None:
            if command.symbol not in self.markets:
                reason = f"unknown symbol {command.symbol}"
                self._reject_command(command.account_id, RejectCode.UNKNOWN_SYMBOL, reason)
                return
            symbols = [command.symbol] if command.symbol in account.open_orders else []
        else:
            symbols = sorted(account.open_orders)
        for symbol in symbols:
            for order in list(account.open_orders[symbol].values()):
                self._cancel(order, account, CancelReason.CANCEL_ALL)

    def _amend_order(self, command: AmendOrder) -> None:
        order = self._find_order(command.account_id, command.order_id, command.client_order_id)
        if order is None:
            return
        account = self.ledger.accounts[order.account_id]
        problem = check_amend(command, order, self.markets[order.symbol])
        if problem is not None:
            self._reject_command(command.account_id, *problem)
            return
        market = self.markets[order.symbol]
        side = market.book.side(order.side)
        old_price, old_qty, old_hold = order.price, order.qty, order.hold
        assert old_price is not None
        price = old_price if command.price is None else command.price
        qty = order.qty if command.qty is None else command.qty
        # The hold follows the amended order; if the account cannot carry it, nothing changes.
        self.ledger.release_hold(account, order)
        order.price, order.qty = price, qty
        problem = self.ledger.hold_for_order(
            account, market.instrument, order, market.reference_price()
        )
        order.price, order.qty = old_price, old_qty
        if problem is not None:
            order.hold = old_hold
            account.order_margin += old_hold
            self._reject_command(command.account_id, *problem)
            return
        self._touched[order.symbol] = market
        if price == old_price and qty < order.qty:
            # A smaller order at the same price keeps its place in the queue.
            side.reduce(order, order.qty - qty)
            order.qty = qty
            self.ledger.track_order(account, order)
            order.move_to(order.status)
            self._emit_amended(order, priority_kept=True)
            return
        side.remove(order)
        order.price = price
        order.qty = qty
        self.ledger.track_order(account, order)
        order.move_to(order.status)
        self._emit_amended(order, priority_kept=False)
        last_price = market.last_price
        self._execute(order, account, market)
        if market.last_price != last_price:
            self._fire_triggers(market)

    def _emit_amended(self, order: Order, *, priority_kept: bool) -> None:
        assert order.price is not None
        self._events.append(
            OrderAmended(
                self._seq,
                order.order_id,
                order.account_id,
                order.symbol,
                order.price,
                order.qty,
                order.qty - order.filled_qty,
                priority_kept,
            )
        )

    # ------------------------------------------------------------------ marks

    def _update_mark(self, command: UpdateMark) -> None:
        updated: list[Market] = []
        for price in command.prices:
            market = self.markets.get(price.symbol)
            if market is None:
                self._reject_command(0, RejectCode.UNKNOWN_SYMBOL, f"unknown symbol {price.symbol}")
                continue
            if price.mark_price <= 0 or price.index_price <= 0:
                self._reject_command(0, RejectCode.INVALID_PRICE, "mark and index must be positive")
                continue
            market.index_price = price.index_price
            market.mark_price = price.mark_price
            self.ledger.marks[price.symbol] = price.mark_price
            self._events.append(
                MarkUpdated(self._seq, price.symbol, price.index_price, price.mark_price)
            )
            updated.append(market)
        for market in updated:
            self._fire_triggers(market)
        self._check_margins([market.instrument.symbol for market in updated])

    # ------------------------------------------------------------- margin calls and liquidation

    def _check_margins(self, symbols: list[str]) -> None:
        """Raise margin calls and liquidate what has reached maintenance, in these symbols.

        In passes: each pass takes the positions that need something at its start (a call,
        a recovery, a liquidation), in account order, isolated before cross, and acts on each
        as it stands when its turn comes. A liquidation trades with other accounts, so passes
        repeat while one liquidates. The risk index only narrows where a pass looks: with or
        without it, the passes and their events are the same.
        """
        for _ in range(_MAX_MARGIN_PASSES):
            isolated, cross = self._margin_candidates(symbols)
            if not isolated and not cross:
                return
            if not self._act_on_margins(isolated, cross):
                return

    def _margin_candidates(self, symbols: list[str]) -> tuple[list[Position], list[Account]]:
        ledger = self.ledger
        isolated: dict[tuple[int, str], Position] = {}
        cross: dict[int, Account] = {}
        if self.risk is not None:
            self.risk.note_changes()
            for symbol in symbols:
                mark = self.markets[symbol].mark_price
                if mark is None:
                    continue
                woken_isolated, woken_cross = self.risk.candidates(symbol, mark)
                for position in woken_isolated:
                    isolated[(position.account_id, symbol)] = position
                for account in woken_cross:
                    cross[account.account_id] = account
        else:
            for symbol in symbols:
                for account_id, position in ledger.open_positions[symbol].items():
                    if account_id == ledger.insurance.account_id:
                        continue
                    if position.margin_mode is MarginMode.ISOLATED:
                        isolated[(account_id, symbol)] = position
                    else:
                        cross[account_id] = ledger.accounts[account_id]
        ratio = self.margin_call_ratio
        due_isolated = []
        for key in sorted(isolated):
            position = isolated[key]
            balance, maintenance, _ = ledger.isolated_balance(position)
            if _needs_attention(balance, maintenance, ratio, position.margin_call):
                due_isolated.append(position)
        due_cross = []
        for account_id in sorted(cross):
            account = cross[account_id]
            state = ledger.cross_state(account)
            balance, maintenance = state.margin_balance, state.maintenance_margin
            if _needs_attention(balance, maintenance, ratio, account.margin_call):
                due_cross.append(account)
        return due_isolated, due_cross

    def _act_on_margins(self, isolated: list[Position], cross: list[Account]) -> bool:
        """Act on each position as it stands now; return whether anything was liquidated."""
        ledger = self.ledger
        liquidated = False
        for position in isolated:
            if not position.qty:
                continue  # closed by an earlier liquidation in this pass
            balance, maintenance, _ = ledger.isolated_balance(position)
            account = ledger.accounts[position.account_id]
            if is_liquidatable(balance, maintenance):
                self._liquidate(account, position, balance, maintenance)
                liquidated = True
            else:
                position.margin_call = self._margin_call(
                    account, position.symbol, balance, maintenance, position.margin_call
                )
        for account in cross:
            state = ledger.cross_state(account)
            if is_liquidatable(state.margin_balance, state.maintenance_margin):
                liquidated = True
                records: list[Liquidated] = []
                for symbol in sorted(account.positions):
                    position = account.positions[symbol]
                    if position.qty and position.margin_mode is MarginMode.CROSS:
                        records.append(
                            self._liquidate(
                                account, position, state.margin_balance, state.maintenance_margin
                            )
                        )
                clearance = self._clear_cross(account)
                # The cross clearance fee is taken once every cross position is closed: the
                # last record carries it and the fund balance after it.
                last = records[-1]
                records[-1] = replace(
                    last,
                    clearance_fee=clearance,
                    insurance_fund_after=self.ledger.insurance.wallet,
                )
                self._events.extend(records)
            else:
                account.margin_call = self._margin_call(
                    account,
                    None,
                    state.margin_balance,
                    state.maintenance_margin,
                    account.margin_call,
                )
        return liquidated

    def _margin_call(
        self, account: Account, symbol: str | None, balance: int, maintenance: int, raised: bool
    ) -> bool:
        """Emit a margin call when the ratio first crosses the threshold; return the flag."""
        calling = is_margin_call(balance, maintenance, self.margin_call_ratio)
        if calling and not raised:
            self._events.append(
                MarginCall(
                    self._seq,
                    account.account_id,
                    symbol,
                    margin_ratio(balance, maintenance),
                    balance,
                    maintenance,
                )
            )
        return calling

    def _liquidate(
        self, account: Account, position: Position, balance: int, maintenance: int
    ) -> Liquidated:
        """Close one position by the waterfall: book, insurance fund, then ADL.

        An isolated position's record is emitted here; a cross one is returned for the
        caller to complete with the account's clearance fee.
        """
        ledger = self.ledger
        symbol = position.symbol
        market = self.markets[symbol]
        instrument = market.instrument
        is_isolated = position.margin_mode is MarginMode.ISOLATED
        # 1. Cancel the orders in scope: the symbol's for isolated, every cross order for cross.
        for order_symbol in sorted(account.open_orders):
            order_position = account.positions.get(order_symbol)
            in_scope = (
                order_symbol == symbol
                if is_isolated
                else order_position is None or order_position.margin_mode is MarginMode.CROSS
            )
            if in_scope:
                for order in list(account.open_orders[order_symbol].values()):
                    self._cancel(order, account, CancelReason.LIQUIDATION)
        # 2. Close through the book, never past the bankruptcy price.
        if is_isolated:
            base, other_maintenance = position.isolated_margin, 0
        else:
            state = ledger.cross_state(account)
            notional, pnl = ledger.value(position)
            # Holds of orders the liquidation leaves open stay backed by the wallet.
            base = account.wallet - account.order_margin + state.unrealized_pnl - pnl
            other_maintenance = state.maintenance_margin - ledger.position_maintenance(
                position, notional
            )
        qty = position.qty
        bankruptcy = bankruptcy_ticks(instrument, qty, position.cost, base)
        liquidation = liquidation_ticks(ledger, position, base, other_maintenance)
        notional, _ = ledger.value(position)
        tier = instrument.bracket_for(notional).tier
        # A cross account can hold a symbol that has no mark yet: value it as the ledger does.
        mark = market.reference_price() or bankruptcy
        insurance = ledger.insurance
        insurance_before = insurance.wallet
        position.liquidating = True
        order = Order(
            self.next_order_id,
            account.account_id,
            symbol,
            Side.SELL if qty > 0 else Side.BUY,
            OrderType.LIMIT,
            abs(qty),
            bankruptcy,
            None,
            TriggerBy.MARK,
            _IOC,
            True,
            False,
            None,
            _NO_PREVENTION,
        )
        order.liquidation = True
        self.next_order_id += 1
        self.orders[order.order_id] = order
        account.open_orders.setdefault(symbol, {})[order.order_id] = order
        ledger.track_order(account, order)
        self._events.append(
            OrderAccepted(
                self._seq,
                order.order_id,
                order.account_id,
                symbol,
                order.side,
                order.order_type,
                order.qty,
                order.price,
                None,
            )
        )
        self._touched[symbol] = market
        last_price = market.last_price
        self._match(order, account, market, bankruptcy)
        book_qty = order.filled_qty
        # 3. What the book could not take goes at the bankruptcy price: to the insurance fund
        # while it can carry the loss, else to the most profitable, most leveraged opposites.
        remaining = order.qty - order.filled_qty
        insurance_qty = 0
        adl: list[tuple[int, int]] = []
        if remaining and self._insurance_can_take(symbol, qty, remaining, bankruptcy):
            self._hand_over(order, account, insurance, remaining, bankruptcy, market)
            insurance_qty = remaining
            remaining = 0
        if remaining:
            side_sign = -1 if qty > 0 else 1
            for victim in adl_queue(ledger, symbol, account, side_sign):
                if not remaining:
                    break
                take = min(remaining, abs(victim.qty))
                victim_account = ledger.accounts[victim.account_id]
                # Its orders were sized against the position ADL is about to shrink.
                for victim_order in list(victim_account.open_orders.get(symbol, {}).values()):
                    self._cancel(victim_order, victim_account, CancelReason.LIQUIDATION)
                self._hand_over(order, account, victim_account, take, bankruptcy, market)
                self._events.append(
                    AutoDeleveraged(
                        self._seq,
                        victim.account_id,
                        symbol,
                        take,
                        bankruptcy,
                        account.account_id,
                    )
                )
                adl.append((victim.account_id, take))
                remaining -= take
        if remaining:
            # Every other holder of the other side is closed out, so only the fund holds it,
            # from earlier take-overs: it takes the rest, which nets against its own position,
            # solvent or not. Otherwise the position could never close.
            self._hand_over(order, account, insurance, remaining, bankruptcy, market)
            insurance_qty += remaining
            remaining = 0
        # 4. What is left above bankruptcy is the clearance fee; for cross it is taken once all
        # cross positions are closed (see _clear_cross).
        position.liquidating = False
        clearance = 0
        if is_isolated:
            # Every fill was at or better than bankruptcy, so the margin left is not negative.
            clearance = position.isolated_margin
            assert clearance >= 0, "an isolated liquidation ended below bankruptcy"
            position.isolated_margin = 0
            insurance.wallet += clearance
            ledger.changed_positions[(account.account_id, symbol)] = position
            ledger.changed_wallets[insurance.account_id] = insurance
            if clearance:
                self._events.append(
                    LedgerEntry(
                        self._seq,
                        account.account_id,
                        symbol,
                        LedgerEntryKind.INSURANCE_CLEARANCE,
                        -clearance,
                    )
                )
        record = Liquidated(
            self._seq,
            account.account_id,
            symbol,
            position.margin_mode,
            order.order_id,
            order.side,
            order.qty,
            mark,
            balance,
            maintenance,
            tier,
            liquidation,
            bankruptcy,
            book_qty,
            insurance_qty,
            tuple(adl),
            clearance,
            insurance_before,
            insurance.wallet,
        )
        if is_isolated:
            self._events.append(record)
        if market.last_price != last_price:
            self._fire_triggers(market)
        return record

    def _insurance_can_take(self, symbol: str, qty: int, remaining: int, price: int) -> bool:
        """Tell whether the fund stays solvent at the mark after taking over at price."""
        ledger = self.ledger
        instrument = self.markets[symbol].instrument
        mark = self.markets[symbol].reference_price() or price
        direction = 1 if qty > 0 else -1
        loss = instrument.notional(mark - price, direction * remaining)
        state = ledger.cross_state(ledger.insurance)
        return state.margin_balance + loss >= 0

    def _hand_over(
        self,
        order: Order,
        account: Account,
        taker: Account,
        qty: int,
        price: int,
        market: Market,
    ) -> None:
        """Fill the liquidation order against an account outside the book, at price."""
        trade_id = self.next_trade_id
        self.next_trade_id += 1
        signed = -qty if order.side is _BUY else qty
        position = self.ledger.position(taker, market.instrument.symbol)
        self.ledger.settle_fill(taker, position, market.instrument, signed, price, 0)
        self._fill(order, account, market, qty, price, trade_id, _TAKER)

    def _clear_cross(self, account: Account) -> int:
        """After a cross liquidation, the margin left above bankruptcy goes to the fund."""
        clearance = max(0, account.wallet - account.order_margin)
        if clearance:
            insurance = self.ledger.insurance
            account.wallet -= clearance
            insurance.wallet += clearance
            self.ledger.changed_wallets[account.account_id] = account
            self.ledger.changed_wallets[insurance.account_id] = insurance
            self._events.append(
                LedgerEntry(
                    self._seq,
                    account.account_id,
                    None,
                    LedgerEntryKind.INSURANCE_CLEARANCE,
                    -clearance,
                )
            )
        account.margin_call = False
        return clearance

    # ------------------------------------------------------------------ money and settings

    def _account_or_reject(self, account_id: int) -> Account | None:
        account = self.ledger.user_account(account_id)
        if account is None:
            self._reject_command(account_id, RejectCode.UNKNOWN_ACCOUNT, "unknown account")
        return account

    def _position_or_reject(self, account_id: int, symbol: str) -> tuple[Account, Position] | None:
        account = self._account_or_reject(account_id)
        if account is None:
            return None
        if symbol not in self.markets:
            self._reject_command(account_id, RejectCode.UNKNOWN_SYMBOL, f"unknown symbol {symbol}")
            return None
        return account, self.ledger.position(account, symbol)

    def _deposit(self, command: Deposit) -> None:
        # A deposit may also seed the insurance fund (account 0).
        account = self.ledger.accounts.get(command.account_id)
        if account is None:
            self._reject_command(command.account_id, RejectCode.UNKNOWN_ACCOUNT, "unknown account")
            return
        if command.amount <= 0:
            self._reject_command(
                command.account_id, RejectCode.INVALID_AMOUNT, "amount must be positive"
            )
            return
        self.ledger.deposit(account, command.amount, self._seq, self._events)

    def _withdraw(self, command: Withdraw) -> None:
        account = self._account_or_reject(command.account_id)
        if account is None:
            return
        if command.amount <= 0:
            self._reject_command(
                command.account_id, RejectCode.INVALID_AMOUNT, "amount must be positive"
            )
            return
        if command.amount > self.ledger.withdrawable(account):
            self._reject_command(
                command.account_id,
                RejectCode.INSUFFICIENT_BALANCE,
                "amount is more than the available balance",
            )
            return
        self.ledger.withdraw(account, command.amount, self._seq, self._events)

    def _set_leverage(self, command: SetLeverage) -> None:
        found = self._position_or_reject(command.account_id, command.symbol)
        if found is None:
            return
        account, position = found
        instrument = self.markets[command.symbol].instrument
        leverage = command.leverage
        notional, pnl = self.ledger.value(position)
        bracket = instrument.bracket_for(notional)
        if not 1 <= leverage <= instrument.brackets[0].max_leverage:
            self._reject_command(
                command.account_id,
                RejectCode.INVALID_LEVERAGE,
                f"leverage must be 1 to {instrument.brackets[0].max_leverage}",
            )
            return
        if leverage > bracket.max_leverage:
            self._reject_command(
                command.account_id,
                RejectCode.POSITION_OVER_BRACKET,
                f"the position's notional allows at most {bracket.max_leverage}x",
            )
            return
        if command.symbol in account.open_orders:
            # Holds of open orders were sized at the old leverage.
            self._reject_command(
                command.account_id,
                RejectCode.LEVERAGE_CHANGE_BLOCKED,
                "cancel the symbol's open orders before changing leverage",
            )
            return
        if position.qty and leverage < position.leverage:
            wanted = initial_margin(notional, leverage)
            if position.margin_mode is MarginMode.ISOLATED:
                short = wanted > position.isolated_margin + min(0, pnl)
            else:
                needed = wanted - initial_margin(notional, position.leverage)
                short = needed > self.ledger.available_balance(account)
            if short:
                self._reject_command(
                    command.account_id,
                    RejectCode.INSUFFICIENT_MARGIN,
                    "margin is insufficient for the lower leverage",
                )
                return
        position.leverage = leverage
        self.ledger.changed_positions[(account.account_id, position.symbol)] = position

    def _set_margin_mode(self, command: SetMarginMode) -> None:
        found = self._position_or_reject(command.account_id, command.symbol)
        if found is None:
            return
        account, position = found
        if position.margin_mode is command.margin_mode:
            return
        if position.qty or command.symbol in account.open_orders:
            self._reject_command(
                command.account_id,
                RejectCode.MARGIN_MODE_CHANGE_BLOCKED,
                "margin mode cannot change with an open position or open orders",
            )
            return
        position.margin_mode = command.margin_mode
        self.ledger.changed_positions[(account.account_id, position.symbol)] = position

    def _adjust_isolated_margin(self, command: AdjustIsolatedMargin) -> None:
        found = self._position_or_reject(command.account_id, command.symbol)
        if found is None:
            return
        account, position = found
        amount = command.amount
        if position.margin_mode is not MarginMode.ISOLATED or not position.qty:
            self._reject_command(
                command.account_id,
                RejectCode.ISOLATED_MARGIN_BLOCKED,
                "only an open isolated position has margin to adjust",
            )
            return
        if amount == 0:
            self._reject_command(command.account_id, RejectCode.INVALID_AMOUNT, "amount is zero")
            return
        if amount > 0 and amount > self.ledger.available_balance(account):
            self._reject_command(
                command.account_id, RejectCode.INSUFFICIENT_BALANCE, "not enough available balance"
            )
            return
        if amount < 0:
            notional, pnl = self.ledger.value(position)
            keep = initial_margin(notional, position.leverage)
            if position.isolated_margin + amount + min(0, pnl) < keep:
                self._reject_command(
                    command.account_id,
                    RejectCode.INSUFFICIENT_MARGIN,
                    "the position must keep its initial margin",
                )
                return
        self.ledger.move_isolated_margin(account, position, amount, self._seq, self._events)

    def _settle_funding(self, command: SettleFunding) -> None:
        for funding in command.rates:
            market = self.markets.get(funding.symbol)
            if market is None:
                reason = f"unknown symbol {funding.symbol}"
                self._reject_command(0, RejectCode.UNKNOWN_SYMBOL, reason)
                continue
            mark = market.mark_price
            if mark is None or funding.rate == 0:
                continue
            self.ledger.settle_funding(funding.symbol, funding.rate, mark, self._seq, self._events)
        self._check_margins(
            [funding.symbol for funding in command.rates if funding.symbol in self.markets]
        )

    def _set_trading_status(self, command: SetTradingStatus) -> None:
        if command.symbol is not None and command.symbol not in self.markets:
            reason = f"unknown symbol {command.symbol}"
            self._reject_command(0, RejectCode.UNKNOWN_SYMBOL, reason)
            return
        symbols = [command.symbol] if command.symbol is not None else sorted(self.markets)
        for symbol in symbols:
            market = self.markets[symbol]
            if market.halted != command.halted:
                market.halted = command.halted
                self._events.append(TradingStatusChanged(self._seq, symbol, command.halted))

    # ------------------------------------------------------------------ queries

    def open_orders(self, account_id: int, symbol: str | None = None) -> list[Order]:
        """Return an account's open orders, oldest first."""
        account = self.ledger.accounts.get(account_id)
        if account is None:
            return []
        if symbol is not None:
            return list(account.open_orders.get(symbol, {}).values())
        return sorted(
            (order for orders in account.open_orders.values() for order in orders.values()),
            key=lambda order: order.order_id,
        )

    def depth(self, symbol: str, count: int | None = None) -> dict[str, object]:
        """Return a book snapshot: update id, bids and asks best first."""
        book = self.markets[symbol].book
        return {
            "update_id": book.update_id,
            "bids": book.bids.depth(count),
            "asks": book.asks.depth(count),
        }

    # ------------------------------------------------------------------ integrity

    def state_hash(self) -> str:
        """Return a SHA-256 over the whole state, equal for equal histories."""
        return integrity.state_hash(self)

    def check_invariants(self) -> None:
        """Raise InvariantError if any structural rule of the state is broken."""
        integrity.check_invariants(self)


def _needs_attention(balance: int, maintenance: int, ratio: int, called: bool) -> bool:
    """Tell whether a margin check would act: liquidate, raise a call, or clear one."""
    if is_liquidatable(balance, maintenance):
        return True
    return is_margin_call(balance, maintenance, ratio) != called
