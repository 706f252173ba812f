"""Conditional orders as Binance's algo service shows them, on REST and the user stream.

paperex keeps a stop or take-profit order as one order from placement to its end; Binance
splits it into an algo order, which waits for its trigger, and the order it then places in the
book. An algo order is NEW until it triggers, then TRIGGERED while the placed order works, and
FINISHED once that order ends, however it ends. One that ends before its trigger is CANCELED
or EXPIRED, or REJECTED when its trigger fired but the order could not enter the book.
"""

from __future__ import annotations

from exchange.api.history import OrderView
from exchange.core.enums import ExpireReason, OrderStatus, OrderType

NEW = "NEW"
CANCELED = "CANCELED"
TRIGGERING = "TRIGGERING"
TRIGGERED = "TRIGGERED"
FINISHED = "FINISHED"
REJECTED = "REJECTED"
EXPIRED = "EXPIRED"

REJECT_REASONS: dict[str, str] = {
    ExpireReason.REDUCE_ONLY: "Reduce Only reject",
    ExpireReason.INSUFFICIENT_MARGIN: "Margin is insufficient",
}
"""Why the engine expired an order at its trigger, in the words of the algo order's `rm`.

The engine expires a conditional order whose trigger fired but which could not enter the
book; Binance's matching engine rejects it, and the algo order says why.
"""

ACTUAL_ORDER_TYPES = {
    OrderType.STOP_MARKET: "MARKET",
    OrderType.TAKE_PROFIT_MARKET: "MARKET",
    OrderType.STOP_LIMIT: "LIMIT",
    OrderType.TAKE_PROFIT_LIMIT: "LIMIT",
}
"""The order type a triggered conditional order works as in the book."""

_ENDED = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)


def triggered(view: OrderView) -> bool:
    """Return whether the order's trigger fired and it entered the book."""
    # A fill means it triggered, even in a history restored from before triggers were kept.
    return bool(view.triggered_ts or view.filled_qty)


def status(view: OrderView) -> str:
    """Return the algo status of a conditional order as it stands now."""
    if triggered(view):
        return FINISHED if view.status in _ENDED else TRIGGERED
    if view.status is OrderStatus.CANCELED:
        return CANCELED
    if view.status is OrderStatus.EXPIRED:
        return REJECTED if reject_reason(view) else EXPIRED
    if view.status is OrderStatus.REJECTED:
        return REJECTED
    return NEW


def reject_reason(view: OrderView) -> str:
    """Return why the order could not enter the book at its trigger, or ""."""
    if view.status is not OrderStatus.EXPIRED or view.reason is None:
        return ""
    # The reasons are string enums, so the text history keeps finds its member.
    return REJECT_REASONS.get(view.reason, "")
