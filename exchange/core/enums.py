"""Closed sets of the trading domain.

String-valued sets are StrEnums: their values are the wire names, and they hash at C speed,
which matters because the matching loop keys dicts and sets by them.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Side(IntEnum):
    """Order side; the value is the sign it gives a position."""

    BUY = 1
    SELL = -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"
    TAKE_PROFIT_MARKET = "take_profit_market"
    TAKE_PROFIT_LIMIT = "take_profit_limit"

    @property
    def is_conditional(self) -> bool:
        return self not in (OrderType.LIMIT, OrderType.MARKET)

    @property
    def has_limit_price(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT)

    @property
    def is_stop(self) -> bool:
        return self in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)


CONDITIONAL_ORDER_TYPES = frozenset(t for t in OrderType if t.is_conditional)
"""Order types that wait for a trigger; as a set, for hot paths that test membership."""

LIMIT_PRICE_ORDER_TYPES = frozenset(t for t in OrderType if t.has_limit_price)
"""Order types that carry a limit price."""


class TimeInForce(StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    POST_ONLY = "post_only"


class TriggerBy(StrEnum):
    """The price a conditional order watches (Binance's workingType)."""

    LAST = "last"
    MARK = "mark"


class SelfTradePrevention(StrEnum):
    """What happens when an order would trade against the same account's resting order."""

    EXPIRE_TAKER = "expire_taker"
    EXPIRE_MAKER = "expire_maker"
    EXPIRE_BOTH = "expire_both"
    NONE = "none"


class OrderStatus(StrEnum):
    NEW = "new"
    TRIGGERED = "triggered"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.TRIGGERED, OrderStatus.PARTIALLY_FILLED)


class LiquiditySide(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class ExpireReason(StrEnum):
    """Why an order ended without filling completely, other than a cancel."""

    TIME_IN_FORCE = "time_in_force"
    PRICE_BAND = "price_band"
    SELF_TRADE_PREVENTION = "self_trade_prevention"
    REDUCE_ONLY = "reduce_only"
    NO_POSITION = "no_position"
    INSUFFICIENT_MARGIN = "insufficient_margin"


class CancelReason(StrEnum):
    USER = "user"
    CANCEL_ALL = "cancel_all"
    LIQUIDATION = "liquidation"


class MarginMode(StrEnum):
    CROSS = "cross"
    ISOLATED = "isolated"


class LedgerEntryKind(StrEnum):
    """Kinds of money movement an account sees besides fees and realised PnL of fills."""

    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    MARGIN_TRANSFER = "margin_transfer"
    FUNDING = "funding"
    INSURANCE_CLEARANCE = "insurance_clearance"
