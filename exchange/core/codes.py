"""Stable rejection codes, grouped by the stage that rejects.

The numbers are part of the public protocol: never renumber, only add.
"""

from __future__ import annotations

from enum import IntEnum


class RejectCode(IntEnum):
    """Why a command was refused. 1xxx validation, 2xxx risk, 3xxx matching, 4xxx account."""

    # Validation: the command is malformed or breaks an instrument rule.
    INVALID_NUMBER = 1001
    UNKNOWN_SYMBOL = 1002
    INVALID_QUANTITY = 1003
    QTY_OFF_LOT = 1004
    INVALID_PRICE = 1005
    PRICE_OFF_TICK = 1006
    QTY_BELOW_MINIMUM = 1007
    QTY_ABOVE_MAXIMUM = 1008
    NOTIONAL_BELOW_MINIMUM = 1009
    PRICE_OUTSIDE_BAND = 1010
    PRICE_REQUIRED = 1011
    PRICE_NOT_ALLOWED = 1012
    TRIGGER_PRICE_REQUIRED = 1013
    TRIGGER_PRICE_NOT_ALLOWED = 1014
    INVALID_TIME_IN_FORCE = 1015
    CLOSE_POSITION_NOT_ALLOWED = 1016
    INVALID_CLIENT_ORDER_ID = 1017
    DUPLICATE_CLIENT_ORDER_ID = 1018
    WOULD_IMMEDIATELY_TRIGGER = 1019
    AMOUNT_PRECISION = 1020
    INVALID_AMOUNT = 1021
    INVALID_LEVERAGE = 1022
    TOO_MANY_OPEN_ORDERS = 1023

    # Risk: the account cannot carry what the command asks.
    INSUFFICIENT_MARGIN = 2001
    REDUCE_ONLY_REJECTED = 2002
    POSITION_OVER_BRACKET = 2003
    INSUFFICIENT_BALANCE = 2004
    MARGIN_MODE_CHANGE_BLOCKED = 2005
    LEVERAGE_CHANGE_BLOCKED = 2006
    ISOLATED_MARGIN_BLOCKED = 2007

    # Matching: the book or the order's state refuses.
    POST_ONLY_WOULD_TAKE = 3001
    UNKNOWN_ORDER = 3002
    ORDER_NOT_AMENDABLE = 3003
    AMEND_NO_CHANGE = 3004
    SYMBOL_HALTED = 3005

    # Account.
    UNKNOWN_ACCOUNT = 4001
    ACCOUNT_EXISTS = 4002
