"""The algo-order family: Binance's home for conditional orders (stop and take-profit).

paperex keeps a conditional order as one order from placement to fill, so an algo order is
that order seen through Binance's algo shape: algoId is the order id, and once it triggers
the same id is the actual order id. Conditional orders placed on /fapi/v1/order (Binance's
older path) are algo orders too.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from exchange.api.binance import algo, errors, render
from exchange.api.binance.handlers import signed
from exchange.api.binance.params import Params
from exchange.api.binance.rest_signed import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    OrderFields,
    find_order,
    place,
    rejection,
)
from exchange.api.context import ApiContext
from exchange.api.history import OrderView
from exchange.core.codes import RejectCode
from exchange.core.commands import CancelOrder
from exchange.core.enums import OrderType
from exchange.core.instruments import Instrument

ALGO_FIELDS = OrderFields(
    trigger="triggerPrice",
    client_id="clientAlgoId",
    types=frozenset(t for t in OrderType if t.is_conditional),
)
ALGO_NAMES = ("algoId", "clientAlgoId")


def algo_order(instrument: Instrument, view: OrderView) -> dict[str, Any]:
    triggered = algo.triggered(view)
    return {
        "algoId": view.order_id,
        "clientAlgoId": render.client_order_id(view),
        "algoType": "CONDITIONAL",
        "orderType": render.ORDER_TYPE_NAMES[view.order_type],
        "symbol": view.symbol,
        "side": render.side_name(view.side),
        "positionSide": "BOTH",
        "timeInForce": render.TIME_IN_FORCE_NAMES[view.time_in_force],
        "quantity": instrument.qty_text(view.qty),
        "algoStatus": algo.status(view),
        "actualOrderId": str(view.order_id) if triggered else "",
        "triggerPrice": render.price(instrument, view.trigger_price),
        "price": render.price(instrument, view.price),
        "executedQty": instrument.qty_text(view.filled_qty),
        "avgPrice": render.average_price(instrument, view),
        "icebergQuantity": None,
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": render.WORKING_TYPE_NAMES[view.trigger_by],
        "priceMatch": "NONE",
        "closePosition": view.close_position,
        "priceProtect": False,
        "reduceOnly": view.reduce_only,
        "activatePrice": "",
        "callbackRate": "",
        "createTime": view.created_ts,
        "updateTime": view.updated_ts,
        "triggerTime": view.triggered_ts,
        "goodTillDate": 0,
    }


def _view(context: ApiContext, order_id: int) -> dict[str, Any]:
    view = context.history.orders[order_id]
    return algo_order(context.instrument(view.symbol), view)


def _find_algo(context: ApiContext, account_id: int, params: Params) -> OrderView:
    view = find_order(context, account_id, params, params.optional_market(context), ALGO_NAMES)
    if not view.order_type.is_conditional:
        raise errors.from_reject(RejectCode.UNKNOWN_ORDER)
    return view


async def new_algo_order(context: ApiContext, account_id: int, params: Params) -> Any:
    algo_type = params.required("algoType")
    if algo_type.upper() != "CONDITIONAL":
        raise errors.invalid_value("algoType")
    return _view(context, await place(context, account_id, params, ALGO_FIELDS))


async def query_algo_order(context: ApiContext, account_id: int, params: Params) -> Any:
    view = _find_algo(context, account_id, params)
    return algo_order(context.instrument(view.symbol), view)


async def _cancel(context: ApiContext, account_id: int, order_id: int) -> None:
    result = await context.sequencer.submit(
        lambda seq, ts: CancelOrder(seq, ts, account_id, order_id)
    )
    found = rejection(result, account_id)
    if found is not None:
        if found[0] is RejectCode.UNKNOWN_ORDER:
            raise errors.unknown_order_sent()
        raise errors.from_reject(found[0])


async def cancel_algo_order(context: ApiContext, account_id: int, params: Params) -> Any:
    try:
        view = _find_algo(context, account_id, params)
    except errors.BinanceError:
        raise errors.unknown_order_sent() from None
    await _cancel(context, account_id, view.order_id)
    return {
        "algoId": view.order_id,
        "clientAlgoId": render.client_order_id(view),
        "code": "200",
        "msg": "success",
    }


def _open_algo_ids(context: ApiContext, account_id: int, symbol: str | None) -> list[int]:
    return [
        order.order_id
        for order in context.exchange.open_orders(account_id, symbol)
        if order.order_type.is_conditional
    ]


async def open_algo_orders(context: ApiContext, account_id: int, params: Params) -> Any:
    market = params.optional_market(context)
    symbol = None if market is None else market.instrument.symbol
    return [_view(context, order_id) for order_id in _open_algo_ids(context, account_id, symbol)]


async def all_algo_orders(context: ApiContext, account_id: int, params: Params) -> Any:
    market = params.market(context)
    symbol = market.instrument.symbol
    limit = params.bounded("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    from_id = params.integer("algoId")
    views = sorted(
        (
            view
            for view in context.history.orders.values()
            if view.account_id == account_id
            and view.symbol == symbol
            and view.order_type.is_conditional
            and (from_id is None or view.order_id >= from_id)
        ),
        key=lambda view: view.order_id,
    )
    chosen = views[:limit] if from_id is not None else views[-limit:]
    return [algo_order(market.instrument, view) for view in chosen]


async def cancel_open_algo_orders(context: ApiContext, account_id: int, params: Params) -> Any:
    """Cancel the symbol's open conditional orders, one command each (others stay)."""
    symbol = params.market(context).instrument.symbol
    for order_id in _open_algo_ids(context, account_id, symbol):
        try:
            await _cancel(context, account_id, order_id)
        except errors.BinanceError:
            # It triggered and finished between the read and the cancel: nothing to cancel.
            continue
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def register(app: web.Application) -> None:
    """Add the algo-order routes."""
    routes: list[tuple[str, str, Any]] = [
        ("POST", "/fapi/v1/algoOrder", new_algo_order),
        ("GET", "/fapi/v1/algoOrder", query_algo_order),
        ("DELETE", "/fapi/v1/algoOrder", cancel_algo_order),
        ("GET", "/fapi/v1/openAlgoOrders", open_algo_orders),
        ("GET", "/fapi/v1/allAlgoOrders", all_algo_orders),
        ("DELETE", "/fapi/v1/algoOpenOrders", cancel_open_algo_orders),
    ]
    for verb, path, handler in routes:
        app.router.add_route(verb, path, signed(handler))
