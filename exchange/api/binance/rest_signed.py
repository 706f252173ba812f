"""Signed order endpoints: place, modify, query and cancel orders; the account's trades.

Requests become the core commands the native API sends (see methods_trading); refusals come
back as the core's codes and are answered through the one table in `errors.REJECTIONS`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from exchange.api.binance import errors, render
from exchange.api.binance.handlers import signed
from exchange.api.binance.params import Params, field_text
from exchange.api.context import ApiContext, Submitted
from exchange.api.convert import price_ticks, qty_lots
from exchange.api.errors import ApiError
from exchange.api.history import OrderView
from exchange.core.codes import RejectCode
from exchange.core.commands import (
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    PlaceOrder,
)
from exchange.core.enums import OrderType, SelfTradePrevention, TimeInForce, TriggerBy
from exchange.core.events import CommandRejected, OrderAccepted, OrderRejected
from exchange.core.market import Market

MAX_BATCH = 5
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
SELF_TRADE_PREVENTION = {
    "NONE": SelfTradePrevention.NONE,
    "EXPIRE_TAKER": SelfTradePrevention.EXPIRE_TAKER,
    "EXPIRE_MAKER": SelfTradePrevention.EXPIRE_MAKER,
    "EXPIRE_BOTH": SelfTradePrevention.EXPIRE_BOTH,
}
_GENERATED_ID = re.compile(re.escape(render.GENERATED_CLIENT_ID_PREFIX) + r"(\d{1,18})")


# ---------------------------------------------------------------------------------------------
# Shared steps
# ---------------------------------------------------------------------------------------------


def rejection(result: Submitted, account_id: int) -> tuple[RejectCode, str] | None:
    for event in result.events:
        if isinstance(event, OrderRejected | CommandRejected) and event.account_id == account_id:
            return event.code, event.reason
    return None


def raise_if_rejected(result: Submitted, account_id: int) -> None:
    found = rejection(result, account_id)
    if found is not None:
        raise errors.from_reject(found[0])


def find_order(
    context: ApiContext,
    account_id: int,
    params: Params,
    market: Market | None,
    names: tuple[str, str] = ("orderId", "origClientOrderId"),
) -> OrderView:
    """Return the order named by id or client id (in any symbol without market), or -2013."""
    order_id = params.integer(names[0])
    client_id = params.text(names[1])
    if order_id is None and client_id is None:
        raise errors.mandatory(names[0])
    history = context.history
    if order_id is None and client_id is not None:
        account = context.exchange.ledger.accounts.get(account_id)
        live = account.client_orders.get(client_id) if account else None
        if live is not None:
            order_id = live.order_id
        else:
            for finished in reversed(history.account(account_id).finished):
                view = history.orders.get(finished)
                if view is not None and view.client_order_id == client_id:
                    order_id = finished
                    break
            else:
                generated = _GENERATED_ID.fullmatch(client_id)
                if generated is not None:
                    order_id = int(generated.group(1))
    view = history.orders.get(order_id) if order_id is not None else None
    if (
        view is None
        or view.account_id != account_id
        or (market is not None and view.symbol != market.instrument.symbol)
        or (client_id is not None and render.client_order_id(view) != client_id)
    ):
        raise errors.from_reject(RejectCode.UNKNOWN_ORDER)
    return view


def order_of(context: ApiContext, order_id: int) -> dict[str, Any]:
    view = context.history.orders[order_id]
    return render.order(context.instrument(view.symbol), view)


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderFields:
    """Where an endpoint keeps the trigger price and client id, and which types it takes."""

    trigger: str = "stopPrice"
    client_id: str = "newClientOrderId"
    types: frozenset[OrderType] = frozenset(OrderType)


ORDER_FIELDS = OrderFields()


async def new_order(context: ApiContext, account_id: int, params: Params) -> Any:
    return order_of(context, await place(context, account_id, params, ORDER_FIELDS))


async def batch_orders(context: ApiContext, account_id: int, params: Params) -> Any:
    """Place up to five orders, in order; each answers its order or its own error."""
    text = params.required("batchOrders")
    try:
        batch = json.loads(text)
    except ValueError:
        raise errors.invalid_value("batchOrders") from None
    if (
        not isinstance(batch, list)
        or not 0 < len(batch) <= MAX_BATCH
        or not all(isinstance(item, dict) for item in batch)
    ):
        raise errors.invalid_value("batchOrders")
    answers: list[Any] = []
    for item in batch:
        fields = {str(k): field_text(v) for k, v in item.items()}
        try:
            order_id = await place(context, account_id, Params(fields), ORDER_FIELDS)
        except errors.BinanceError as error:
            answers.append(error.body())
        except ApiError as error:
            answers.append(errors.from_api_error(error).body())
        else:
            answers.append(order_of(context, order_id))
    return answers


async def place(context: ApiContext, account_id: int, params: Params, fields: OrderFields) -> int:
    """Place an order as PlaceOrder; return its order id or raise the Binance error."""
    market = params.market(context)
    instrument = market.instrument
    symbol = instrument.symbol
    side = params.choice("side", render.SIDES, errors.invalid_side())
    if side is None:
        raise errors.mandatory("side")
    order_type = params.choice("type", render.ORDER_TYPES, errors.invalid_order_type())
    if order_type is None:
        raise errors.mandatory("type")
    if order_type not in fields.types:
        raise errors.invalid_order_type()
    position_side = params.text("positionSide")
    if position_side is not None and position_side.upper() != "BOTH":
        raise errors.position_side_mismatch()
    time_in_force = params.choice(
        "timeInForce", render.TIME_IN_FORCE, errors.invalid_time_in_force()
    )
    if time_in_force is None:
        if order_type.has_limit_price:
            raise errors.mandatory("timeInForce")
        time_in_force = TimeInForce.GTC
    close_position = params.boolean("closePosition")
    reduce_only = params.boolean("reduceOnly")
    quantity = params.text("quantity")
    if close_position:
        if quantity is not None:
            raise errors.not_required("quantity")
        if reduce_only:
            raise errors.not_required("reduceOnly")
        qty = 0
    elif quantity is None:
        raise errors.mandatory("quantity")
    else:
        qty = qty_lots(instrument, quantity, "quantity")
    price_text = params.text("price")
    price = None if price_text is None else price_ticks(instrument, price_text, "price")
    stop_text = params.text(fields.trigger)
    if stop_text is None and order_type.is_conditional:
        raise errors.mandatory(fields.trigger)
    trigger = None if stop_text is None else price_ticks(instrument, stop_text, fields.trigger)
    trigger_by = params.choice("workingType", render.WORKING_TYPES) or TriggerBy.LAST
    self_trade = params.choice("selfTradePreventionMode", SELF_TRADE_PREVENTION)
    client_order_id = params.text(fields.client_id)
    result = await context.sequencer.submit(
        lambda seq, ts: PlaceOrder(
            seq,
            ts,
            account_id,
            symbol,
            side,
            order_type,
            qty,
            price,
            trigger,
            trigger_by,
            time_in_force,
            reduce_only,
            close_position,
            client_order_id,
            self_trade,
        )
    )
    for event in result.events:
        if isinstance(event, OrderRejected) and event.account_id == account_id:
            raise _order_rejection(market, event.code, price)
        if isinstance(event, OrderAccepted) and event.account_id == account_id:
            return event.order_id
    raise errors.unknown_error()


def _order_rejection(market: Market, code: RejectCode, price: int | None) -> errors.BinanceError:
    if code is RejectCode.PRICE_OUTSIDE_BAND:
        reference = market.reference_price()
        if price is not None and reference is not None and price < reference:
            return errors.BinanceError(*errors.PRICE_BELOW_BAND)
    min_notional = render.money(market.instrument.min_notional)
    return errors.from_reject(code, min_notional=_trimmed(min_notional))


def _trimmed(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


async def modify_order(context: ApiContext, account_id: int, params: Params) -> Any:
    """Amend a resting limit order's quantity and price (Binance asks for both, and side)."""
    market = params.market(context)
    instrument = market.instrument
    view = find_order(context, account_id, params, market)
    side = params.choice("side", render.SIDES, errors.invalid_side())
    if side is None:
        raise errors.mandatory("side")
    if side is not view.side:
        raise errors.invalid_value("side")
    qty = qty_lots(instrument, params.required("quantity"), "quantity")
    price = price_ticks(instrument, params.required("price"), "price")
    order_id = view.order_id
    result = await context.sequencer.submit(
        lambda seq, ts: AmendOrder(seq, ts, account_id, order_id, None, qty, price)
    )
    found = rejection(result, account_id)
    if found is not None:
        raise _order_rejection(market, found[0], price)
    return order_of(context, order_id)


async def query_order(context: ApiContext, account_id: int, params: Params) -> Any:
    market = params.market(context)
    view = find_order(context, account_id, params, market)
    return render.order(market.instrument, view)


async def cancel_order(context: ApiContext, account_id: int, params: Params) -> Any:
    market = params.market(context)
    try:
        view = find_order(context, account_id, params, market)
    except errors.BinanceError:
        raise errors.unknown_order_sent() from None
    order_id = view.order_id
    result = await context.sequencer.submit(
        lambda seq, ts: CancelOrder(seq, ts, account_id, order_id)
    )
    found = rejection(result, account_id)
    if found is not None:
        if found[0] is RejectCode.UNKNOWN_ORDER:
            raise errors.unknown_order_sent()
        raise errors.from_reject(found[0])
    return order_of(context, order_id)


async def open_orders(context: ApiContext, account_id: int, params: Params) -> Any:
    market = params.optional_market(context)
    symbol = None if market is None else market.instrument.symbol
    orders = context.exchange.open_orders(account_id, symbol)
    return [order_of(context, order.order_id) for order in orders]


async def open_order(context: ApiContext, account_id: int, params: Params) -> Any:
    market = params.market(context)
    view = find_order(context, account_id, params, market)
    if not view.status.is_open:
        raise errors.BinanceError(-2013, "Order does not exist.")
    return render.order(market.instrument, view)


async def cancel_all(context: ApiContext, account_id: int, params: Params) -> Any:
    symbol = params.market(context).instrument.symbol
    result = await context.sequencer.submit(
        lambda seq, ts: CancelAllOrders(seq, ts, account_id, symbol)
    )
    raise_if_rejected(result, account_id)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


async def all_orders(context: ApiContext, account_id: int, params: Params) -> Any:
    """Return the account's orders in a symbol that history holds, oldest first."""
    market = params.market(context)
    symbol = market.instrument.symbol
    from_id = params.integer("orderId")
    start = params.integer("startTime")
    end = params.integer("endTime")
    limit = params.bounded("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    views = sorted(
        (
            view
            for view in context.history.orders.values()
            if view.account_id == account_id
            and view.symbol == symbol
            and (from_id is None or view.order_id >= from_id)
            and (start is None or view.created_ts >= start)
            and (end is None or view.created_ts <= end)
        ),
        key=lambda view: view.order_id,
    )
    chosen = views[:limit] if from_id is not None else views[-limit:]
    return [render.order(market.instrument, view) for view in chosen]


async def user_trades(context: ApiContext, account_id: int, params: Params) -> Any:
    market = params.market(context)
    symbol = market.instrument.symbol
    from_id = params.integer("fromId")
    start = params.integer("startTime")
    end = params.integer("endTime")
    limit = params.bounded("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    fills = [
        fill
        for fill in context.history.account(account_id).fills
        if fill.event.symbol == symbol
        and (from_id is None or fill.event.trade_id >= from_id)
        and (start is None or fill.ts >= start)
        and (end is None or fill.ts <= end)
    ]
    chosen = fills[:limit] if from_id is not None else fills[-limit:]
    return [render.user_trade(market.instrument, fill) for fill in chosen]


def register(app: web.Application) -> None:
    """Add the signed order routes."""
    routes: list[tuple[str, str, Any]] = [
        ("POST", "/fapi/v1/order", new_order),
        ("POST", "/fapi/v1/batchOrders", batch_orders),
        ("PUT", "/fapi/v1/order", modify_order),
        ("GET", "/fapi/v1/order", query_order),
        ("DELETE", "/fapi/v1/order", cancel_order),
        ("GET", "/fapi/v1/openOrder", open_order),
        ("GET", "/fapi/v1/openOrders", open_orders),
        ("DELETE", "/fapi/v1/allOpenOrders", cancel_all),
        ("GET", "/fapi/v1/allOrders", all_orders),
        ("GET", "/fapi/v1/userTrades", user_trades),
    ]
    for verb, path, handler in routes:
        app.router.add_route(verb, path, signed(handler))
