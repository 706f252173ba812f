"""The rules a new order or an amend must pass before it touches the book or the ledger."""

from __future__ import annotations

from typing import Final

from exchange.core.codes import RejectCode
from exchange.core.commands import AmendOrder, PlaceOrder
from exchange.core.enums import (
    CONDITIONAL_ORDER_TYPES,
    LIMIT_PRICE_ORDER_TYPES,
    OrderType,
    Side,
    TimeInForce,
)
from exchange.core.ledger import Account, Ledger
from exchange.core.market import Market
from exchange.core.orders import Order
from exchange.core.triggers import would_fire

Problem = tuple[RejectCode, str]
"""A rejection: its stable code and a reason a person can read."""

# Final: the mypyc build reads these from C statics rather than the module's dict.
_POST_ONLY: Final = TimeInForce.POST_ONLY
_LIMIT: Final = OrderType.LIMIT
_MARKET: Final = OrderType.MARKET
_CLIENT_ORDER_ID_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:/_-"
)
_CLIENT_ORDER_ID_MAX = 36


def check_new_order(
    command: PlaceOrder, account: Account, market: Market, ledger: Ledger
) -> Problem | None:
    """Return why a new order breaks an instrument or account rule, if it does."""
    order_type = command.order_type
    if (
        (order_type is _LIMIT or order_type is _MARKET)
        and command.trigger_price is None
        and command.client_order_id is None
        and not command.reduce_only
        and not command.close_position
        and command.time_in_force is not _POST_ONLY
        and _passes_plain(command, order_type is _LIMIT, account, market)
    ):
        return None
    return check_every_rule(command, account, market, ledger)


def check_every_rule(
    command: PlaceOrder, account: Account, market: Market, ledger: Ledger
) -> Problem | None:
    """Return why a new order breaks a rule, checking every rule in order (no quick accept)."""
    instrument = market.instrument
    order_type = command.order_type
    is_limit_type = order_type in LIMIT_PRICE_ORDER_TYPES
    is_conditional = order_type in CONDITIONAL_ORDER_TYPES
    qty = command.qty
    if command.close_position:
        if order_type not in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET):
            return (
                RejectCode.CLOSE_POSITION_NOT_ALLOWED,
                "close_position is only for stop_market and take_profit_market orders",
            )
        if qty != 0:
            return RejectCode.INVALID_QUANTITY, "a close_position order takes no qty"
    else:
        if qty <= 0:
            return RejectCode.INVALID_QUANTITY, "qty must be positive"
        if qty < instrument.min_qty:
            return (
                RejectCode.QTY_BELOW_MINIMUM,
                f"qty is below the minimum {instrument.qty_text(instrument.min_qty)}",
            )
        maximum = instrument.max_qty if is_limit_type else instrument.max_market_qty
        if qty > maximum:
            return (
                RejectCode.QTY_ABOVE_MAXIMUM,
                f"qty is above the maximum {instrument.qty_text(maximum)}",
            )
    price = command.price
    if is_limit_type:
        if price is None:
            return RejectCode.PRICE_REQUIRED, f"a {order_type.value} order needs a price"
        if price <= 0:
            return RejectCode.INVALID_PRICE, "price must be positive"
    elif price is not None:
        return RejectCode.PRICE_NOT_ALLOWED, f"a {order_type.value} order takes no price"
    trigger_price = command.trigger_price
    if is_conditional:
        if trigger_price is None:
            return (
                RejectCode.TRIGGER_PRICE_REQUIRED,
                f"a {order_type.value} order needs a trigger price",
            )
        if trigger_price <= 0:
            return RejectCode.INVALID_PRICE, "trigger_price must be positive"
    elif trigger_price is not None:
        return (
            RejectCode.TRIGGER_PRICE_NOT_ALLOWED,
            f"a {order_type.value} order takes no trigger price",
        )
    time_in_force = command.time_in_force
    if not is_limit_type and time_in_force is _POST_ONLY:
        return RejectCode.INVALID_TIME_IN_FORCE, "a market order cannot be post-only"
    client_order_id = command.client_order_id
    if client_order_id is not None:
        if not (
            0 < len(client_order_id) <= _CLIENT_ORDER_ID_MAX
            and _CLIENT_ORDER_ID_CHARS.issuperset(client_order_id)
        ):
            return (
                RejectCode.INVALID_CLIENT_ORDER_ID,
                "client_order_id must be 1 to 36 characters of a-z A-Z 0-9 . : / _ -",
            )
        if client_order_id in account.client_orders:
            return (
                RejectCode.DUPLICATE_CLIENT_ORDER_ID,
                "client_order_id is already used by an open order",
            )
    open_here = account.open_orders.get(command.symbol)
    if open_here is not None and len(open_here) >= instrument.max_open_orders:
        return (
            RejectCode.TOO_MANY_OPEN_ORDERS,
            f"at most {instrument.max_open_orders} open orders per symbol",
        )
    band = market.price_band()
    if is_limit_type and band is not None:
        assert price is not None
        if not band[0] <= price <= band[1]:
            return (
                RejectCode.PRICE_OUTSIDE_BAND,
                f"price must be between {instrument.price_text(band[0])} and "
                f"{instrument.price_text(band[1])}",
            )
    reduce_only = command.reduce_only or command.close_position
    if not reduce_only:
        basis = price if is_limit_type else (trigger_price or market.reference_price())
        if basis is not None and instrument.notional(basis, qty) < instrument.min_notional:
            return (
                RejectCode.NOTIONAL_BELOW_MINIMUM,
                "order notional is below the instrument's minimum",
            )
    if is_conditional:
        assert trigger_price is not None
        watched = market.watched_price(command.trigger_by)
        if watched is not None and would_fire(order_type, command.side, trigger_price, watched):
            return RejectCode.WOULD_IMMEDIATELY_TRIGGER, "the order would trigger immediately"
    else:
        if reduce_only and not ledger.reducible_qty(account, command.symbol, command.side.value):
            return (
                RejectCode.REDUCE_ONLY_REJECTED,
                "a reduce-only order must reduce an open position",
            )
        if time_in_force is _POST_ONLY and market.book.crosses(command.side, price):
            return RejectCode.POST_ONLY_WOULD_TAKE, "a post-only order would take liquidity"
    return None


def _passes_plain(command: PlaceOrder, is_limit: bool, account: Account, market: Market) -> bool:
    """Tell whether a plain limit or market order passes every rule of check_new_order.

    Most orders are plain and valid, and proving that takes a fraction of the full sequence.
    Only an acceptance is decided here; anything else goes through the full checks, which
    alone choose the rejection and its code.
    """
    instrument = market.instrument
    qty = command.qty
    price = command.price
    if is_limit:
        if price is None or price <= 0 or not instrument.min_qty <= qty <= instrument.max_qty:
            return False
        band = market.price_band()
        if band is not None and not band[0] <= price <= band[1]:
            return False
        basis: int | None = price
    else:
        if price is not None or not instrument.min_qty <= qty <= instrument.max_market_qty:
            return False
        basis = market.reference_price()
    if basis is not None and instrument.notional(basis, qty) < instrument.min_notional:
        return False
    open_here = account.open_orders.get(command.symbol)
    return open_here is None or len(open_here) < instrument.max_open_orders


def check_amend(command: AmendOrder, order: Order, market: Market) -> Problem | None:
    """Return why an amend cannot apply to a resting order, if it cannot."""
    if not order.resting:
        return RejectCode.ORDER_NOT_AMENDABLE, "only a resting limit order can be amended"
    if market.halted:
        return RejectCode.SYMBOL_HALTED, f"{order.symbol} is halted"
    instrument = market.instrument
    price = order.price if command.price is None else command.price
    qty = order.qty if command.qty is None else command.qty
    assert price is not None
    if price == order.price and qty == order.qty:
        return RejectCode.AMEND_NO_CHANGE, "the amend changes nothing"
    if price <= 0:
        return RejectCode.INVALID_PRICE, "price must be positive"
    if qty <= order.filled_qty:
        return RejectCode.INVALID_QUANTITY, "qty must stay above the filled quantity"
    if qty < instrument.min_qty:
        return RejectCode.QTY_BELOW_MINIMUM, "qty is below the instrument's minimum"
    if qty > instrument.max_qty:
        return RejectCode.QTY_ABOVE_MAXIMUM, "qty is above the instrument's maximum"
    if price != order.price:
        band = market.price_band()
        if band is not None:
            low, high = band
            if not low <= price <= high:
                return RejectCode.PRICE_OUTSIDE_BAND, "price is outside the band around mark"
        if order.time_in_force is TimeInForce.POST_ONLY:
            opposite_best = market.book.opposite(order.side).best
            if opposite_best is not None and (
                opposite_best <= price if order.side is Side.BUY else opposite_best >= price
            ):
                return RejectCode.POST_ONLY_WOULD_TAKE, "a post-only order would take"
    return None
