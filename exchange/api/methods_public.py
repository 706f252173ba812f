"""public.*: time, instruments, book, ticker, trades and the liquidation calculator."""

from __future__ import annotations

from typing import Any

from exchange.api import render
from exchange.api.context import ApiContext
from exchange.api.errors import ApiError, RpcCode
from exchange.api.params import BookParams, NoParams, SymbolParams, TradesParams
from exchange.api.registry import method
from exchange.api.session import Session
from exchange.calculator import CalculatorError, calculate


@method("public.time", NoParams)
async def time(context: ApiContext, session: Session, params: NoParams) -> Any:
    return {"server_time": context.clock.now_ms(), "seq": context.exchange.last_seq}


@method("public.instruments", NoParams)
async def instruments(context: ApiContext, session: Session, params: NoParams) -> Any:
    return [render.instrument_spec(i) for _, i in sorted(context.instruments.items())]


@method("public.book", BookParams)
async def book(context: ApiContext, session: Session, params: BookParams) -> Any:
    market = context.market(params.symbol)
    depth = context.exchange.depth(params.symbol, params.depth)
    return render.book(market.instrument, depth)


@method("public.ticker", SymbolParams)
async def ticker(context: ApiContext, session: Session, params: SymbolParams) -> Any:
    context.market(params.symbol)
    return context.ticker(params.symbol)


@method("public.trades", TradesParams)
async def trades(context: ApiContext, session: Session, params: TradesParams) -> Any:
    instrument = context.market(params.symbol).instrument
    recent = list(context.history.trades[params.symbol])[-params.limit :]
    return [render.trade(instrument, trade) for trade in reversed(recent)]


@method("public.liquidation_price", None)
async def liquidation_price(context: ApiContext, session: Session, params: Any) -> Any:
    """Run `paperex liq --scenario --json` on the params: the same JSON in and out."""
    try:
        return calculate(params, context.instruments)
    except CalculatorError as error:
        raise ApiError(
            RpcCode.INVALID_PARAMS, f"{error.field}: {error.reason}", {"field": error.field}
        ) from None
