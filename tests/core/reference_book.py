"""A naive reference exchange for one symbol, to check the matching core against.

Written from the rules, not from the core: each side of the book is a plain list of orders
kept best first (price, then arrival), every search is a linear scan, and every number is
worked out with exact fractions. It is slow and small on purpose, so that it is easy to see
that it is right.

What it models: limit orders (GTC, IOC, FOK, post-only), market orders bounded by the price
band, cancel, cancel-all, amend, self-trade prevention, several accounts, the band and
instrument limits on new orders, fees and position quantities.

What it leaves out, because other tests cover them and the differential stream never sends
them: stop and take-profit orders, reduce-only and close-position orders, client order ids
and more than one symbol. A command that needs them raises `UnsupportedError`.

Its output is a list of records, plain tuples that the differential test also builds from
the core's events:

    ("account", account_id)
    ("accepted", order_id, account_id, side, order_type, qty, price)
    ("rejected", account_id, code)
    ("filled", order_id, account_id, side, trade_id, price, qty, leaves, liquidity, fee)
    ("canceled", order_id, account_id, reason)
    ("expired", order_id, account_id, reason)
    ("amended", order_id, account_id, price, qty, leaves, priority_kept)
    ("command_rejected", account_id, code)
    ("mark", symbol, index_price, mark_price)
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

from exchange.core.codes import RejectCode
from exchange.core.commands import (
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    PlaceOrder,
    UpdateMark,
)
from exchange.core.enums import (
    CancelReason,
    ExpireReason,
    LiquiditySide,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

Record = tuple[object, ...]
"""One thing that happened, in the shape the module docstring lists."""

Level = tuple[int, int, tuple[int, ...]]
"""A price level: price, total open quantity, order ids oldest first."""


class UnsupportedError(NotImplementedError):
    """The command uses a feature the reference leaves out."""


@dataclass(frozen=True)
class Rules:
    """The instrument rules, as plain integers and fractions."""

    symbol: str
    min_qty: int
    max_qty: int
    max_market_qty: int
    min_notional: int
    atoms_per_tick_lot: int
    price_band: Fraction
    maker_fee: Fraction
    taker_fee: Fraction
    max_open_orders: int
    default_self_trade_prevention: SelfTradePrevention = SelfTradePrevention.EXPIRE_MAKER


@dataclass(eq=False)
class RefOrder:
    """An open order. Identity, not field equality, tells two orders apart."""

    order_id: int
    account_id: int
    side: Side
    price: int | None
    qty: int
    time_in_force: TimeInForce
    prevention: SelfTradePrevention
    filled: int = 0

    @property
    def leaves(self) -> int:
        return self.qty - self.filled


class ReferenceBook:
    """Apply the same commands as `Exchange.apply` and return the records they cause."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        # Best first: bids by price descending, asks ascending; equal prices oldest first.
        self.bids: list[RefOrder] = []
        self.asks: list[RefOrder] = []
        self.open_orders: dict[int, RefOrder] = {}
        self.accounts: list[int] = []
        self.positions: dict[int, int] = {}
        self.mark_price: int | None = None
        self.last_price: int | None = None
        self.next_order_id = 1
        self.next_trade_id = 1
        # How often each interesting path ran, so a test can see the stream reached it.
        self.seen: Counter[str] = Counter()
        self._out: list[Record] = []

    # ------------------------------------------------------------------ queries

    def queue(self, side: Side) -> list[RefOrder]:
        return self.bids if side is Side.BUY else self.asks

    def best_price(self, side: Side) -> int | None:
        queue = self.queue(side)
        return queue[0].price if queue else None

    def reference_price(self) -> int | None:
        return self.mark_price if self.mark_price is not None else self.last_price

    def band(self) -> tuple[int, int] | None:
        """Return the lowest and highest price an order may name, or None if unbounded."""
        reference = self.reference_price()
        if reference is None:
            return None
        low = math.ceil(reference * (1 - self.rules.price_band))
        high = math.floor(reference * (1 + self.rules.price_band))
        return max(low, 1), high

    def levels(self, side: Side) -> list[Level]:
        """Return the side's levels best first, each with its order ids oldest first."""
        levels: list[Level] = []
        for order in self.queue(side):
            assert order.price is not None
            if levels and levels[-1][0] == order.price:
                price, size, ids = levels[-1]
                levels[-1] = (price, size + order.leaves, (*ids, order.order_id))
            else:
                levels.append((order.price, order.leaves, (order.order_id,)))
        return levels

    # ------------------------------------------------------------------ entry point

    def apply(self, command: Command) -> list[Record]:
        self._out = []
        if isinstance(command, CreateAccount):
            account_id = len(self.accounts) + 1
            self.accounts.append(account_id)
            self._out.append(("account", account_id))
        elif isinstance(command, PlaceOrder):
            self._place(command)
        elif isinstance(command, CancelOrder):
            self._cancel(command)
        elif isinstance(command, CancelAllOrders):
            self._cancel_all(command)
        elif isinstance(command, AmendOrder):
            self._amend(command)
        elif isinstance(command, UpdateMark):
            self._update_mark(command)
        elif isinstance(command, Deposit):
            pass  # money is not modelled here
        else:
            raise UnsupportedError(type(command).__name__)
        return self._out

    # ------------------------------------------------------------------ new orders

    def _place(self, command: PlaceOrder) -> None:
        if command.order_type not in (OrderType.LIMIT, OrderType.MARKET):
            raise UnsupportedError(command.order_type.value)
        if command.reduce_only or command.close_position or command.client_order_id is not None:
            raise UnsupportedError("reduce-only, close-position and client order ids")
        code = self._new_order_problem(command)
        if code is not None:
            self._out.append(("rejected", command.account_id, code))
            return
        order = RefOrder(
            self.next_order_id,
            command.account_id,
            command.side,
            command.price,
            command.qty,
            command.time_in_force,
            command.self_trade_prevention or self.rules.default_self_trade_prevention,
        )
        self.next_order_id += 1
        self.open_orders[order.order_id] = order
        self._out.append(
            (
                "accepted",
                order.order_id,
                order.account_id,
                order.side,
                command.order_type,
                order.qty,
                order.price,
            )
        )
        self._execute(order)

    def _new_order_problem(self, command: PlaceOrder) -> RejectCode | None:
        """Return the first rule a new order breaks, checked in the core's documented order."""
        rules = self.rules
        is_limit = command.order_type is OrderType.LIMIT
        if command.account_id not in self.accounts:
            return RejectCode.UNKNOWN_ACCOUNT
        if command.symbol != rules.symbol:
            return RejectCode.UNKNOWN_SYMBOL
        if command.qty <= 0:
            return RejectCode.INVALID_QUANTITY
        if command.qty < rules.min_qty:
            return RejectCode.QTY_BELOW_MINIMUM
        if command.qty > (rules.max_qty if is_limit else rules.max_market_qty):
            return RejectCode.QTY_ABOVE_MAXIMUM
        if is_limit:
            if command.price is None:
                return RejectCode.PRICE_REQUIRED
            if command.price <= 0:
                return RejectCode.INVALID_PRICE
        elif command.price is not None:
            return RejectCode.PRICE_NOT_ALLOWED
        if command.trigger_price is not None:
            return RejectCode.TRIGGER_PRICE_NOT_ALLOWED
        if not is_limit and command.time_in_force is TimeInForce.POST_ONLY:
            return RejectCode.INVALID_TIME_IN_FORCE
        mine = [
            order for order in self.open_orders.values() if order.account_id == command.account_id
        ]
        if len(mine) >= rules.max_open_orders:
            return RejectCode.TOO_MANY_OPEN_ORDERS
        band = self.band()
        if is_limit and band is not None:
            assert command.price is not None
            if not band[0] <= command.price <= band[1]:
                return RejectCode.PRICE_OUTSIDE_BAND
        # A market order's notional is judged at the reference price, when there is one.
        basis = command.price if is_limit else self.reference_price()
        if basis is not None and self._notional(basis, command.qty) < rules.min_notional:
            return RejectCode.NOTIONAL_BELOW_MINIMUM
        if command.time_in_force is TimeInForce.POST_ONLY and self._would_take(
            command.side, command.price
        ):
            return RejectCode.POST_ONLY_WOULD_TAKE
        return None

    # ------------------------------------------------------------------ matching

    def _execute(self, order: RefOrder) -> None:
        """Trade an order that just arrived (or lost its place by an amend), then finish it."""
        is_market = order.price is None
        limit = order.price
        if is_market:
            band = self.band()
            # A market order walks the book only as far as the band's far edge.
            limit = None if band is None else (band[1] if order.side is Side.BUY else band[0])
        if order.time_in_force is TimeInForce.FOK and not self._fills_completely(order, limit):
            self.seen["fok killed"] += 1
            self._end(order, "expired", ExpireReason.TIME_IN_FORCE)
            return
        taker_gone = self._match(order, limit)
        if taker_gone:
            return
        if is_market:
            if self.queue(order.side.opposite):
                self.seen["market stopped by band"] += 1
                self._end(order, "expired", ExpireReason.PRICE_BAND)
            else:
                self._end(order, "expired", ExpireReason.TIME_IN_FORCE)
        elif order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            self._end(order, "expired", ExpireReason.TIME_IN_FORCE)
        else:
            self._rest(order)

    def _match(self, taker: RefOrder, limit: int | None) -> bool:
        """Trade the taker against the opposite side; return True once the taker has ended."""
        queue = self.queue(taker.side.opposite)
        while queue and self._acceptable(taker.side, queue[0], limit):
            maker = queue[0]
            if maker.account_id == taker.account_id:
                prevention = taker.prevention
                self.seen[f"self trade {prevention.value}"] += 1
                if prevention in (
                    SelfTradePrevention.EXPIRE_MAKER,
                    SelfTradePrevention.EXPIRE_BOTH,
                ):
                    self._end(maker, "expired", ExpireReason.SELF_TRADE_PREVENTION)
                if prevention in (
                    SelfTradePrevention.EXPIRE_TAKER,
                    SelfTradePrevention.EXPIRE_BOTH,
                ):
                    self._end(taker, "expired", ExpireReason.SELF_TRADE_PREVENTION)
                    return True
                if prevention is not SelfTradePrevention.NONE:
                    continue
            self._trade(maker, taker)
            if taker.leaves == 0:
                return True
        return False

    def _trade(self, maker: RefOrder, taker: RefOrder) -> None:
        assert maker.price is not None
        price = maker.price
        qty = min(maker.leaves, taker.leaves)
        trade_id = self.next_trade_id
        self.next_trade_id += 1
        for order, liquidity, rate in (
            (maker, LiquiditySide.MAKER, self.rules.maker_fee),
            (taker, LiquiditySide.TAKER, self.rules.taker_fee),
        ):
            order.filled += qty
            self.positions[order.account_id] = (
                self.positions.get(order.account_id, 0) + qty * order.side.value
            )
            # The fee rounds up, against the account.
            fee = math.ceil(self._notional(price, qty) * rate)
            self._out.append(
                (
                    "filled",
                    order.order_id,
                    order.account_id,
                    order.side,
                    trade_id,
                    price,
                    qty,
                    order.leaves,
                    liquidity,
                    fee,
                )
            )
        self.last_price = price
        if maker.leaves == 0:
            self.queue(maker.side).remove(maker)
            del self.open_orders[maker.order_id]
        if taker.leaves == 0:
            del self.open_orders[taker.order_id]

    def _fills_completely(self, taker: RefOrder, limit: int | None) -> bool:
        """Tell whether matching now would fill the taker in full without ending it early."""
        available = 0
        for maker in self.queue(taker.side.opposite):
            if available >= taker.leaves or not self._acceptable(taker.side, maker, limit):
                break
            if maker.account_id == taker.account_id:
                if taker.prevention is SelfTradePrevention.EXPIRE_MAKER:
                    # The maker would be expired and matching would go on past it.
                    self.seen["fok passes own order"] += 1
                    continue
                if taker.prevention is not SelfTradePrevention.NONE:
                    # Matching would stop here with the taker expired.
                    self.seen["fok stopped by own order"] += 1
                    return False
            available += maker.leaves
        return available >= taker.leaves

    @staticmethod
    def _acceptable(side: Side, maker: RefOrder, limit: int | None) -> bool:
        """Tell whether a taker on side with this limit may trade at the maker's price."""
        assert maker.price is not None
        if limit is None:
            return True
        return maker.price <= limit if side is Side.BUY else maker.price >= limit

    def _would_take(self, side: Side, price: int | None) -> bool:
        best = self.best_price(side.opposite)
        if best is None:
            return False
        assert price is not None
        return best <= price if side is Side.BUY else best >= price

    def _rest(self, order: RefOrder) -> None:
        """Put an order behind every order on its side at the same or a better price."""
        queue = self.queue(order.side)
        assert order.price is not None
        index = 0
        while index < len(queue) and not self._worse(order.side, queue[index], order.price):
            index += 1
        queue.insert(index, order)

    @staticmethod
    def _worse(side: Side, resting: RefOrder, price: int) -> bool:
        assert resting.price is not None
        return resting.price < price if side is Side.BUY else resting.price > price

    def _end(self, order: RefOrder, how: str, reason: ExpireReason | CancelReason) -> None:
        queue = self.queue(order.side)
        if order in queue:
            queue.remove(order)
        del self.open_orders[order.order_id]
        self._out.append((how, order.order_id, order.account_id, reason))

    def _notional(self, price: int, qty: int) -> int:
        return price * qty * self.rules.atoms_per_tick_lot

    # ------------------------------------------------------------------ cancel and amend

    def _find(self, account_id: int, order_id: int | None) -> RefOrder | None:
        if account_id not in self.accounts:
            self._out.append(("command_rejected", account_id, RejectCode.UNKNOWN_ACCOUNT))
            return None
        order = None if order_id is None else self.open_orders.get(order_id)
        # Another account's order is as unknown as one that never existed.
        if order is None or order.account_id != account_id:
            self._out.append(("command_rejected", account_id, RejectCode.UNKNOWN_ORDER))
            return None
        return order

    def _cancel(self, command: CancelOrder) -> None:
        if command.client_order_id is not None:
            raise UnsupportedError("client order ids")
        order = self._find(command.account_id, command.order_id)
        if order is not None:
            self._end(order, "canceled", CancelReason.USER)

    def _cancel_all(self, command: CancelAllOrders) -> None:
        if command.account_id not in self.accounts:
            self._out.append(("command_rejected", command.account_id, RejectCode.UNKNOWN_ACCOUNT))
            return
        if command.symbol is not None and command.symbol != self.rules.symbol:
            self._out.append(("command_rejected", command.account_id, RejectCode.UNKNOWN_SYMBOL))
            return
        for order_id in sorted(self.open_orders):
            order = self.open_orders[order_id]
            if order.account_id == command.account_id:
                self._end(order, "canceled", CancelReason.CANCEL_ALL)

    def _amend(self, command: AmendOrder) -> None:
        if command.client_order_id is not None:
            raise UnsupportedError("client order ids")
        order = self._find(command.account_id, command.order_id)
        if order is None:
            return
        assert order.price is not None
        price = order.price if command.price is None else command.price
        qty = order.qty if command.qty is None else command.qty
        code = self._amend_problem(order, price, qty)
        if code is not None:
            self._out.append(("command_rejected", command.account_id, code))
            return
        keeps_priority = price == order.price and qty < order.qty
        if keeps_priority:
            order.qty = qty
        else:
            self.queue(order.side).remove(order)
            order.price = price
            order.qty = qty
        self.seen[f"amend priority_kept={keeps_priority}"] += 1
        self._out.append(
            (
                "amended",
                order.order_id,
                order.account_id,
                order.price,
                order.qty,
                order.leaves,
                keeps_priority,
            )
        )
        if not keeps_priority:
            self._execute(order)

    def _amend_problem(self, order: RefOrder, price: int, qty: int) -> RejectCode | None:
        """Return the first rule an amend breaks, checked in the core's documented order."""
        rules = self.rules
        if price == order.price and qty == order.qty:
            return RejectCode.AMEND_NO_CHANGE
        if price <= 0:
            return RejectCode.INVALID_PRICE
        # The amended qty is the order's new total, so it must leave something to fill.
        if qty <= order.filled:
            return RejectCode.INVALID_QUANTITY
        if qty < rules.min_qty:
            return RejectCode.QTY_BELOW_MINIMUM
        if qty > rules.max_qty:
            return RejectCode.QTY_ABOVE_MAXIMUM
        if price != order.price:
            band = self.band()
            if band is not None and not band[0] <= price <= band[1]:
                return RejectCode.PRICE_OUTSIDE_BAND
            if order.time_in_force is TimeInForce.POST_ONLY and self._would_take(order.side, price):
                return RejectCode.POST_ONLY_WOULD_TAKE
        return None

    # ------------------------------------------------------------------ marks

    def _update_mark(self, command: UpdateMark) -> None:
        for mark in command.prices:
            if mark.symbol != self.rules.symbol:
                self._out.append(("command_rejected", 0, RejectCode.UNKNOWN_SYMBOL))
            elif mark.mark_price <= 0 or mark.index_price <= 0:
                self._out.append(("command_rejected", 0, RejectCode.INVALID_PRICE))
            else:
                self.mark_price = mark.mark_price
                self._out.append(("mark", mark.symbol, mark.index_price, mark.mark_price))
