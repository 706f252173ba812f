"""order.* and position.*: a logged-in account's orders and position settings."""

from __future__ import annotations

from typing import Any

from exchange.api import render
from exchange.api.context import ApiContext, Submitted
from exchange.api.convert import amount_atoms, price_ticks, qty_lots
from exchange.api.errors import ApiError, RpcCode, invalid_params, rejected
from exchange.api.history import OrderView
from exchange.api.params import (
    AdjustMarginParams,
    AmendParams,
    CancelAllParams,
    LeverageParams,
    MarginModeParams,
    OpenOrdersParams,
    OrderRefParams,
    PlaceParams,
)
from exchange.api.registry import Access, method
from exchange.api.session import Session
from exchange.core.codes import RejectCode
from exchange.core.commands import (
    AdjustIsolatedMargin,
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    PlaceOrder,
    SetLeverage,
    SetMarginMode,
)
from exchange.core.enums import Side
from exchange.core.events import CommandRejected, OrderAccepted, OrderCanceled, OrderRejected

USER = Access.USER


def account_of(session: Session) -> int:
    assert session.account_id is not None
    return session.account_id


def raise_if_rejected(result: Submitted, account_id: int) -> None:
    """Turn the core's refusal of this account's command into an error response."""
    for event in result.events:
        # A tuple, not A | B: compiled, the union is built anew on every call.
        if isinstance(event, (OrderRejected, CommandRejected)) and event.account_id == account_id:
            raise rejected(event.code, event.reason)


def find_order(
    context: ApiContext, account_id: int, order_id: int | None, client_order_id: str | None
) -> OrderView:
    """Return one of the account's orders; anyone else's is as unknown as a missing one."""
    if (order_id is None) == (client_order_id is None):
        raise invalid_params("order_id", "give exactly one of order_id and client_order_id")
    history = context.history
    if order_id is None:
        account = context.exchange.ledger.accounts.get(account_id)
        live = account.client_orders.get(client_order_id or "") if account else None
        if live is not None:
            order_id = live.order_id
        else:
            for finished in reversed(history.account(account_id).finished):
                view = history.orders.get(finished)
                if view is not None and view.client_order_id == client_order_id:
                    order_id = finished
                    break
    view = history.orders.get(order_id) if order_id is not None else None
    if view is None or view.account_id != account_id:
        raise rejected(RejectCode.UNKNOWN_ORDER, "unknown order")
    return view


def order_result(context: ApiContext, order_id: int) -> dict[str, Any]:
    view = context.history.orders[order_id]
    return render.order(context.instrument(view.symbol), view)


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------


@method("order.place", PlaceParams, USER)
async def place(context: ApiContext, session: Session, params: PlaceParams) -> Any:
    account_id = account_of(session)
    instrument = context.market(params.symbol).instrument
    if params.close_position:
        if params.qty is not None:
            raise invalid_params("qty", "a close_position order takes no qty")
        qty = 0
    elif params.qty is None:
        raise invalid_params("qty", "qty: missing parameter")
    else:
        qty = qty_lots(instrument, params.qty, "qty")
    price = None if params.price is None else price_ticks(instrument, params.price, "price")
    trigger = (
        None
        if params.trigger_price is None
        else price_ticks(instrument, params.trigger_price, "trigger_price")
    )
    side = Side.BUY if params.side == "buy" else Side.SELL
    # enqueue, not submit: the hottest handlers skip submit's extra coroutine level.
    result = await context.sequencer.enqueue(
        lambda seq, ts: PlaceOrder(
            seq,
            ts,
            account_id,
            params.symbol,
            side,
            params.type,
            qty,
            price,
            trigger,
            params.trigger_by,
            params.time_in_force,
            params.reduce_only,
            params.close_position,
            params.client_order_id,
        )
    )
    for event in result.events:
        if isinstance(event, OrderRejected) and event.account_id == account_id:
            raise rejected(event.code, event.reason)
        if isinstance(event, OrderAccepted) and event.account_id == account_id:
            return order_result(context, event.order_id)
    raise ApiError(RpcCode.INTERNAL_ERROR, "the order was neither accepted nor rejected")


@method("order.cancel", OrderRefParams, USER)
async def cancel(context: ApiContext, session: Session, params: OrderRefParams) -> Any:
    account_id = account_of(session)
    view = find_order(context, account_id, params.order_id, params.client_order_id)
    order_id = view.order_id
    result = await context.sequencer.enqueue(
        lambda seq, ts: CancelOrder(seq, ts, account_id, order_id)
    )
    raise_if_rejected(result, account_id)
    return order_result(context, order_id)


@method("order.cancel_all", CancelAllParams, USER)
async def cancel_all(context: ApiContext, session: Session, params: CancelAllParams) -> Any:
    account_id = account_of(session)
    if params.symbol is not None:
        context.market(params.symbol)
    result = await context.sequencer.submit(
        lambda seq, ts: CancelAllOrders(seq, ts, account_id, params.symbol)
    )
    raise_if_rejected(result, account_id)
    canceled = [
        e.order_id
        for e in result.events
        if isinstance(e, OrderCanceled) and e.account_id == account_id
    ]
    return {"canceled": canceled}


@method("order.amend", AmendParams, USER)
async def amend(context: ApiContext, session: Session, params: AmendParams) -> Any:
    account_id = account_of(session)
    view = find_order(context, account_id, params.order_id, params.client_order_id)
    instrument = context.instrument(view.symbol)
    if params.qty is None and params.price is None:
        raise invalid_params("qty", "give qty, price or both")
    qty = None if params.qty is None else qty_lots(instrument, params.qty, "qty")
    price = None if params.price is None else price_ticks(instrument, params.price, "price")
    order_id = view.order_id
    result = await context.sequencer.submit(
        lambda seq, ts: AmendOrder(seq, ts, account_id, order_id, None, qty, price)
    )
    raise_if_rejected(result, account_id)
    return order_result(context, order_id)


@method("order.get", OrderRefParams, USER)
async def get(context: ApiContext, session: Session, params: OrderRefParams) -> Any:
    view = find_order(context, account_of(session), params.order_id, params.client_order_id)
    return render.order(context.instrument(view.symbol), view)


@method("order.open", OpenOrdersParams, USER)
async def open_orders(context: ApiContext, session: Session, params: OpenOrdersParams) -> Any:
    if params.symbol is not None:
        context.market(params.symbol)
    orders = context.exchange.open_orders(account_of(session), params.symbol)
    return [order_result(context, order.order_id) for order in orders]


# ---------------------------------------------------------------------------------------------
# Position settings
# ---------------------------------------------------------------------------------------------


def position_settings(context: ApiContext, account_id: int, symbol: str) -> dict[str, Any]:
    # The command just applied made the record; never create one here, outside the sequencer.
    position = context.exchange.ledger.accounts[account_id].positions[symbol]
    instrument = context.instrument(symbol)
    return {
        "symbol": symbol,
        "qty": instrument.qty_text(position.qty),
        "margin_mode": position.margin_mode.value,
        "leverage": position.leverage,
        "isolated_margin": render.money(position.isolated_margin),
    }


@method("position.set_leverage", LeverageParams, USER)
async def set_leverage(context: ApiContext, session: Session, params: LeverageParams) -> Any:
    account_id = account_of(session)
    context.market(params.symbol)
    result = await context.sequencer.submit(
        lambda seq, ts: SetLeverage(seq, ts, account_id, params.symbol, params.leverage)
    )
    raise_if_rejected(result, account_id)
    return position_settings(context, account_id, params.symbol)


@method("position.set_margin_mode", MarginModeParams, USER)
async def set_margin_mode(context: ApiContext, session: Session, params: MarginModeParams) -> Any:
    account_id = account_of(session)
    context.market(params.symbol)
    result = await context.sequencer.submit(
        lambda seq, ts: SetMarginMode(seq, ts, account_id, params.symbol, params.margin_mode)
    )
    raise_if_rejected(result, account_id)
    return position_settings(context, account_id, params.symbol)


@method("position.adjust_margin", AdjustMarginParams, USER)
async def adjust_margin(context: ApiContext, session: Session, params: AdjustMarginParams) -> Any:
    account_id = account_of(session)
    context.market(params.symbol)
    amount = amount_atoms(params.amount, "amount", positive=False)
    result = await context.sequencer.submit(
        lambda seq, ts: AdjustIsolatedMargin(seq, ts, account_id, params.symbol, amount)
    )
    raise_if_rejected(result, account_id)
    return position_settings(context, account_id, params.symbol)
