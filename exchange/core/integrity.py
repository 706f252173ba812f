"""The exchange's integrity: a hash of its whole state, and the rules that must always hold."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from exchange.core.enums import MarginMode, OrderStatus, Side

if TYPE_CHECKING:
    from exchange.core.exchange import Exchange


class InvariantError(AssertionError):
    """The state broke a rule that must always hold."""


# Here rather than beside the table in orders.py: the errors that mean a bug stay plain Python
# classes, so the modules of the matching path compile with mypyc (see bench_engine.py).
class TransitionError(AssertionError):
    """An order was asked to move to a status the table forbids: a bug, never user input."""


def state_hash(exchange: Exchange) -> str:
    """Return a SHA-256 over the whole state, equal for equal histories."""
    markets = tuple(
        (
            symbol,
            market.halted,
            market.index_price,
            market.mark_price,
            market.last_price,
            market.book.state(),
            market.triggers.state(),
        )
        for symbol, market in sorted(exchange.markets.items())
    )
    orders = tuple(exchange.orders[order_id].state() for order_id in sorted(exchange.orders))
    accounts = tuple(
        (
            account.account_id,
            account.name,
            account.wallet,
            account.order_margin,
            account.margin_call,
            tuple(position.state() for _, position in sorted(account.positions.items())),
            tuple(
                (client_id, order.order_id)
                for client_id, order in sorted(account.client_orders.items())
            ),
        )
        for account in sorted(exchange.ledger.accounts.values(), key=lambda a: a.account_id)
    )
    counters = (
        exchange.last_seq,
        exchange.last_ts,
        exchange.next_account_id,
        exchange.next_order_id,
        exchange.next_trade_id,
    )
    ledger = exchange.ledger
    money = (
        tuple(sorted(ledger.system.items())),
        ledger.deposits,
        ledger.withdrawals,
        tuple(sorted(ledger.marks.items())),
    )
    text = repr((counters, markets, orders, accounts, money))
    return hashlib.sha256(text.encode()).hexdigest()


def check_invariants(exchange: Exchange) -> None:
    """Raise InvariantError if any structural rule of the state is broken."""
    resting: set[int] = set()
    waiting: set[int] = set()
    for symbol, market in exchange.markets.items():
        book = market.book
        best_bid, best_ask = book.bids.best_price(), book.asks.best_price()
        _require(
            best_bid is None or best_ask is None or best_bid < best_ask,
            f"{symbol} book is crossed: {best_bid} >= {best_ask}",
        )
        for side in (book.bids, book.asks):
            _require(list(side.prices) == sorted(side.levels), f"{symbol} price index disagrees")
            true_best = (max if side.is_bid else min)(side.levels, default=None)
            _require(side.best == true_best, f"{symbol} cached best price is stale")
            for price, level in side.levels.items():
                _require(level.price == price, f"{symbol} level keyed wrongly")
                _require(level.orders != {}, f"{symbol} empty level {price}")
                size = 0
                for order_id, order in level.orders.items():
                    _require(order.order_id == order_id, "order keyed wrongly")
                    _require(order.resting, f"order {order_id} in book but not resting")
                    _require(order.side is side.side, f"order {order_id} on the wrong side")
                    _require(order.price == price, f"order {order_id} at the wrong level")
                    _require(
                        exchange.orders.get(order_id) is order, f"order {order_id} not indexed"
                    )
                    size += order.qty - order.filled_qty
                    resting.add(order_id)
                _require(size == level.size, f"{symbol} level {price} size is wrong")
                _require(size > 0, f"{symbol} level {price} size is not positive")
        waiting_here = {
            order.order_id
            for order in exchange.orders.values()
            if order.symbol == symbol and order.waiting
        }
        _require(
            len(market.triggers) == market.triggers.count == len(waiting_here),
            f"{symbol} trigger index disagrees with open conditional orders",
        )
        waiting |= waiting_here
        _require(
            sum(account.position_qty(symbol) for account in exchange.ledger.accounts.values()) == 0,
            f"{symbol} positions do not sum to zero",
        )
    for order_id, order in exchange.orders.items():
        _require(order.status.is_open, f"order {order_id} indexed but {order.status}")
        _require(0 <= order.filled_qty <= order.qty, f"order {order_id} overfilled")
        _require(
            (order_id in resting) + (order_id in waiting) == 1,
            f"order {order_id} must be either resting or waiting",
        )
        _require(
            not order.waiting
            or (order.order_type.is_conditional and order.status is OrderStatus.NEW),
            f"order {order_id} waits for a trigger it does not have",
        )
    indexed = 0
    for account in exchange.ledger.accounts.values():
        for symbol, orders in account.open_orders.items():
            _require(orders != {}, "empty open-order index")
            for order_id, order in orders.items():
                _require(exchange.orders.get(order_id) is order, f"order {order_id} stale")
                _require(order.symbol == symbol, f"order {order_id} under the wrong symbol")
                _require(order.account_id == account.account_id, "order under wrong account")
                indexed += 1
        for client_id, order in account.client_orders.items():
            _require(
                order.client_order_id == client_id and exchange.orders.get(order.order_id) is order,
                f"client order id {client_id!r} stale",
            )
    _require(indexed == len(exchange.orders), "open-order index misses orders")
    ledger = exchange.ledger
    _require(ledger.conservation_gap() == 0, f"money is not conserved: {ledger.conservation_gap()}")
    for account in ledger.accounts.values():
        _require(
            account.wallet >= 0 or account is ledger.insurance,
            f"account {account.account_id} wallet is negative",
        )
        holds = sum(
            order.hold for orders in account.open_orders.values() for order in orders.values()
        )
        for symbol, orders in account.open_orders.items():
            totals = {Side.BUY: 0, Side.SELL: 0}
            for order in orders.values():
                expected = 0 if order.waiting else order.qty - order.filled_qty
                _require(order.counted == expected, f"order {order.order_id} miscounted")
                totals[order.side] += order.counted
            held = account.positions.get(symbol)
            counted = (0, 0) if held is None else (held.open_buy_qty, held.open_sell_qty)
            _require(
                counted == (totals[Side.BUY], totals[Side.SELL]),
                f"account {account.account_id} {symbol} open-order totals drift",
            )
        _require(holds == account.order_margin, f"account {account.account_id} holds drift")
        for symbol, position in account.positions.items():
            _require(
                symbol in account.open_orders
                or position.open_buy_qty == position.open_sell_qty == 0,
                f"account {account.account_id} {symbol} counts orders it does not have",
            )
            indexed_position = ledger.open_positions[symbol].get(account.account_id)
            _require(
                (indexed_position is position) == (position.qty != 0),
                f"open-position index disagrees for {account.account_id} {symbol}",
            )
            _require(
                position.isolated_margin == 0 or position.margin_mode is MarginMode.ISOLATED,
                "a cross position holds isolated margin",
            )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvariantError(message)
