"""Core state and the API's read models in Binance's shapes: decimal strings, camelCase."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from exchange.api import render as native
from exchange.api.history import Fill, OrderView, Trade
from exchange.core.enums import MarginMode, OrderStatus, OrderType, Side, TimeInForce, TriggerBy
from exchange.core.instruments import Instrument
from exchange.core.margin import display_places, format_decimal, format_price
from exchange.core.numbers import format_rate

PERPETUAL_DELIVERY_MS = 4_133_404_800_000
"""Binance's delivery date for perpetual contracts (year 2100)."""

ORDER_TYPES = {
    "LIMIT": OrderType.LIMIT,
    "MARKET": OrderType.MARKET,
    "STOP": OrderType.STOP_LIMIT,
    "STOP_MARKET": OrderType.STOP_MARKET,
    "TAKE_PROFIT": OrderType.TAKE_PROFIT_LIMIT,
    "TAKE_PROFIT_MARKET": OrderType.TAKE_PROFIT_MARKET,
}
ORDER_TYPE_NAMES = {value: name for name, value in ORDER_TYPES.items()}
TIME_IN_FORCE = {
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
    "GTX": TimeInForce.POST_ONLY,
}
TIME_IN_FORCE_NAMES = {value: name for name, value in TIME_IN_FORCE.items()}
SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}
WORKING_TYPES = {"CONTRACT_PRICE": TriggerBy.LAST, "MARK_PRICE": TriggerBy.MARK}
WORKING_TYPE_NAMES = {value: name for name, value in WORKING_TYPES.items()}
MARGIN_TYPES = {"ISOLATED": MarginMode.ISOLATED, "CROSSED": MarginMode.CROSS}
STATUS_NAMES = {
    OrderStatus.NEW: "NEW",
    # Binance shows a triggered conditional order as NEW until it trades.
    OrderStatus.TRIGGERED: "NEW",
    OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELED: "CANCELED",
    OrderStatus.EXPIRED: "EXPIRED",
    OrderStatus.REJECTED: "REJECTED",
}
GENERATED_CLIENT_ID_PREFIX = "paperex-"
LIQUIDATION_CLIENT_ID_PREFIX = "autoclose-"
"""Binance's client id prefix for liquidation orders, as the user data stream shows them."""


def side_name(side: Side) -> str:
    return "BUY" if side is Side.BUY else "SELL"


def client_order_id(view: OrderView) -> str:
    """Return the order's client id; one the client did not give is `paperex-<order id>`.

    A liquidation order's is `autoclose-<time>`, as on Binance and the user data stream.
    """
    if view.liquidation:
        return f"{LIQUIDATION_CLIENT_ID_PREFIX}{view.created_ts}"
    if view.client_order_id is not None:
        return view.client_order_id
    return f"{GENERATED_CLIENT_ID_PREFIX}{view.order_id}"


def places(step: Any) -> int:
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(-exponent, 0)


def price(instrument: Instrument, ticks: int | None) -> str:
    return "0" if ticks is None else instrument.price_text(ticks)


def money(atoms: int) -> str:
    return native.money(atoms)


def optional_price(instrument: Instrument, value: Fraction | None) -> str:
    return "0" if value is None else format_decimal(value, display_places(instrument))


def average_price(instrument: Instrument, view: OrderView) -> str:
    if not view.filled_qty:
        return "0.00000"
    average = Fraction(view.filled_ticks_lots, view.filled_qty) * Fraction(instrument.tick_size)
    return format_decimal(average, display_places(instrument) + 4)


def order(instrument: Instrument, view: OrderView) -> dict[str, Any]:
    type_name = ORDER_TYPE_NAMES[view.order_type]
    return {
        "orderId": view.order_id,
        "symbol": view.symbol,
        "status": STATUS_NAMES[view.status],
        "clientOrderId": client_order_id(view),
        "price": price(instrument, view.price),
        "avgPrice": average_price(instrument, view),
        "origQty": instrument.qty_text(view.qty),
        "executedQty": instrument.qty_text(view.filled_qty),
        "cumQty": instrument.qty_text(view.filled_qty),
        "cumQuote": money(instrument.notional(view.filled_ticks_lots, 1)),
        "timeInForce": TIME_IN_FORCE_NAMES[view.time_in_force],
        "type": type_name,
        "reduceOnly": view.reduce_only,
        "closePosition": view.close_position,
        "side": side_name(view.side),
        "positionSide": "BOTH",
        "stopPrice": price(instrument, view.trigger_price),
        "workingType": WORKING_TYPE_NAMES[view.trigger_by],
        "priceProtect": False,
        "origType": type_name,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
        "time": view.created_ts,
        "updateTime": view.updated_ts,
    }


def user_trade(instrument: Instrument, record: Fill) -> dict[str, Any]:
    event = record.event
    return {
        "buyer": event.side is Side.BUY,
        "commission": money(event.fee),
        "commissionAsset": instrument.quote_asset,
        "id": event.trade_id,
        "maker": event.liquidity_side.value == "maker",
        "orderId": event.order_id,
        "price": instrument.price_text(event.last_px),
        "qty": instrument.qty_text(event.last_qty),
        "quoteQty": money(instrument.notional(event.last_px, event.last_qty)),
        "realizedPnl": money(event.realized_pnl),
        "side": side_name(event.side),
        "positionSide": "BOTH",
        "symbol": event.symbol,
        "time": record.ts,
    }


def public_trade(instrument: Instrument, record: Trade) -> dict[str, Any]:
    return {
        "id": record.trade_id,
        "price": instrument.price_text(record.price),
        "qty": instrument.qty_text(record.qty),
        "quoteQty": money(instrument.notional(record.price, record.qty)),
        "time": record.ts,
        "isBuyerMaker": record.taker_side is Side.SELL,
    }


def max_notional(instrument: Instrument, leverage: int) -> str:
    """Return the largest notional a leverage allows: the top cap of brackets that allow it."""
    caps = [b.notional_cap for b in instrument.brackets if b.max_leverage >= leverage]
    return money(max(caps)) if caps else "0"


def symbol_info(instrument: Instrument) -> dict[str, Any]:
    tick = str(instrument.tick_size)
    lot = str(instrument.lot_size)
    band = Fraction(instrument.price_band_rate, 10**8)
    first_bracket = instrument.brackets[0]
    return {
        "symbol": instrument.symbol,
        "pair": instrument.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": PERPETUAL_DELIVERY_MS,
        "onboardDate": 0,
        "status": "TRADING",
        "baseAsset": instrument.base_asset,
        "quoteAsset": instrument.quote_asset,
        "marginAsset": instrument.quote_asset,
        "pricePrecision": places(instrument.tick_size),
        "quantityPrecision": places(instrument.lot_size),
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": tick,
                "maxPrice": instrument.price_text(10 ** (places(instrument.tick_size) + 9)),
                "tickSize": tick,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": instrument.qty_text(instrument.min_qty),
                "maxQty": instrument.qty_text(instrument.max_qty),
                "stepSize": lot,
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": instrument.qty_text(instrument.min_qty),
                "maxQty": instrument.qty_text(instrument.max_market_qty),
                "stepSize": lot,
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": instrument.max_open_orders},
            {"filterType": "MIN_NOTIONAL", "notional": money(instrument.min_notional)},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": format_decimal(1 + band, 4),
                "multiplierDown": format_decimal(1 - band, 4),
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": list(ORDER_TYPES),
        "timeInForce": list(TIME_IN_FORCE),
        # The clearance fee is what margin is left at liquidation: at most the first
        # bracket's maintenance margin rate of the notional.
        "liquidationFee": format_rate(first_bracket.maintenance_margin_rate),
        "marketTakeBound": format_decimal(band, 4),
    }


def mark_price_text(instrument: Instrument, value: Fraction) -> str:
    return format_price(value, display_places(instrument))


def rate(value: int) -> str:
    return format_rate(value)
