"""account.*: the logged-in account's balances, positions, fills and ledger."""

from __future__ import annotations

from typing import Any

from exchange.api import render
from exchange.api.context import ApiContext
from exchange.api.params import HistoryParams, NoParams
from exchange.api.registry import Access, method
from exchange.api.session import Session
from exchange.core.risk import account_risk


@method("account.get", NoParams, Access.USER)
async def get(context: ApiContext, session: Session, params: NoParams) -> Any:
    assert session.account_id is not None
    ledger = context.exchange.ledger
    account = ledger.accounts[session.account_id]
    risk = account_risk(ledger, account)
    return render.account(account.account_id, account.name, risk, context.instruments)


@method("account.fills", HistoryParams, Access.USER)
async def fills(context: ApiContext, session: Session, params: HistoryParams) -> Any:
    assert session.account_id is not None
    if params.symbol is not None:
        context.market(params.symbol)
    rows = [
        fill
        for fill in reversed(context.history.account(session.account_id).fills)
        if params.symbol is None or fill.event.symbol == params.symbol
    ][: params.limit]
    return [render.fill(context.instrument(f.event.symbol), f) for f in rows]


@method("account.ledger", HistoryParams, Access.USER)
async def ledger(context: ApiContext, session: Session, params: HistoryParams) -> Any:
    assert session.account_id is not None
    if params.symbol is not None:
        context.market(params.symbol)
    rows = [
        row
        for row in reversed(context.history.account(session.account_id).ledger)
        if params.symbol is None or row.symbol == params.symbol
    ][: params.limit]
    return [render.ledger_row(row) for row in rows]
