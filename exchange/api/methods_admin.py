"""admin.*: the operator's accounts, money, index, halts and the exchange's health."""

from __future__ import annotations

import inspect
from typing import Any

from exchange.api import render
from exchange.api.context import ApiContext
from exchange.api.convert import amount_atoms, decimal, price_ticks
from exchange.api.errors import ApiError, RpcCode, rejected
from exchange.api.params import (
    AmountParams,
    CreateAccountParams,
    HaltParams,
    NoParams,
    SetIndexParams,
    ShockParams,
)
from exchange.api.registry import Access, method
from exchange.api.session import Session
from exchange.core.codes import RejectCode
from exchange.core.commands import CreateAccount, Deposit, SetTradingStatus, Withdraw
from exchange.core.enums import MarginMode
from exchange.core.events import AccountCreated, CommandRejected
from exchange.core.integrity import InvariantError
from exchange.core.ledger import SystemAccount
from exchange.core.risk import account_risk

ADMIN = Access.ADMIN


def _raise_if_rejected(events: list[Any]) -> None:
    for event in events:
        if isinstance(event, CommandRejected):
            raise rejected(event.code, event.reason)


async def create_account(context: ApiContext, name: str, deposit: int) -> dict[str, Any]:
    """Open an account, fund it and issue its API key; used by admin.create_account and
    by the composition root for demo accounts."""
    result = await context.sequencer.submit(lambda seq, ts: CreateAccount(seq, ts, name))
    account_id = next(e.account_id for e in result.events if isinstance(e, AccountCreated))
    if deposit:
        funded = await context.sequencer.submit(
            lambda seq, ts: Deposit(seq, ts, account_id, deposit)
        )
        _raise_if_rejected(funded.events)
    credentials = context.keys.issue(account_id)
    return {
        "account_id": account_id,
        "name": name,
        "api_key": credentials.api_key,
        "api_secret": credentials.api_secret,
    }


@method("admin.create_account", CreateAccountParams, ADMIN)
async def admin_create_account(
    context: ApiContext, session: Session, params: CreateAccountParams
) -> Any:
    deposit = 0 if params.deposit is None else amount_atoms(params.deposit, "deposit")
    return await create_account(context, params.name, deposit)


def _wallet(context: ApiContext, account_id: int) -> dict[str, Any]:
    account = context.exchange.ledger.accounts[account_id]
    return {"account_id": account_id, "wallet_balance": render.money(account.wallet)}


@method("admin.deposit", AmountParams, ADMIN)
async def deposit(context: ApiContext, session: Session, params: AmountParams) -> Any:
    amount = amount_atoms(params.amount, "amount")
    account_id = params.account_id
    result = await context.sequencer.submit(lambda seq, ts: Deposit(seq, ts, account_id, amount))
    _raise_if_rejected(result.events)
    return _wallet(context, account_id)


@method("admin.withdraw", AmountParams, ADMIN)
async def withdraw(context: ApiContext, session: Session, params: AmountParams) -> Any:
    amount = amount_atoms(params.amount, "amount")
    account_id = params.account_id
    result = await context.sequencer.submit(lambda seq, ts: Withdraw(seq, ts, account_id, amount))
    _raise_if_rejected(result.events)
    return _wallet(context, account_id)


def _feed(context: ApiContext) -> Any:
    if context.feed is None:
        raise ApiError(RpcCode.INTERNAL_ERROR, "this server has no price feed")
    return context.feed


@method("admin.set_index", SetIndexParams, ADMIN)
async def set_index(context: ApiContext, session: Session, params: SetIndexParams) -> Any:
    instrument = context.market(params.symbol).instrument
    ticks = price_ticks(instrument, params.price, "price")
    outcome = _feed(context).set_index(params.symbol, ticks)
    if inspect.isawaitable(outcome):
        await outcome
    return context.ticker(params.symbol)


@method("admin.shock", ShockParams, ADMIN)
async def shock(context: ApiContext, session: Session, params: ShockParams) -> Any:
    context.market(params.symbol)
    pct = decimal(params.pct, "pct")
    if not -100 < pct <= 1000:
        raise rejected(RejectCode.INVALID_NUMBER, "pct must be above -100 and at most 1000", "pct")
    duration = None if params.duration_s is None else decimal(params.duration_s, "duration_s")
    if duration is not None and duration < 0:
        raise rejected(RejectCode.INVALID_NUMBER, "duration_s must not be negative", "duration_s")
    outcome = _feed(context).shock(params.symbol, pct, duration)
    if inspect.isawaitable(outcome):
        await outcome
    return context.ticker(params.symbol)


async def _trading_status(context: ApiContext, symbol: str | None, halted: bool) -> Any:
    if symbol is not None:
        context.market(symbol)
    result = await context.sequencer.submit(
        lambda seq, ts: SetTradingStatus(seq, ts, symbol, halted)
    )
    _raise_if_rejected(result.events)
    return {s: m.halted for s, m in sorted(context.exchange.markets.items())}


@method("admin.halt", HaltParams, ADMIN)
async def halt(context: ApiContext, session: Session, params: HaltParams) -> Any:
    return {"halted": await _trading_status(context, params.symbol, True)}


@method("admin.resume", HaltParams, ADMIN)
async def resume(context: ApiContext, session: Session, params: HaltParams) -> Any:
    return {"halted": await _trading_status(context, params.symbol, False)}


@method("admin.state", NoParams, ADMIN)
async def state(context: ApiContext, session: Session, params: NoParams) -> Any:
    exchange = context.exchange
    ledger = exchange.ledger
    gap = ledger.conservation_gap()
    try:
        exchange.check_invariants()
        invariants = True
    except InvariantError:
        invariants = False
    return {
        "seq": exchange.last_seq,
        "ts": exchange.last_ts,
        "state_hash": exchange.state_hash(),
        "insurance_fund": render.money(ledger.insurance.wallet),
        "fee_pool": render.money(ledger.system[SystemAccount.FEE_POOL]),
        "funding_pool": render.money(ledger.system[SystemAccount.FUNDING_POOL]),
        "deposits": render.money(ledger.deposits),
        "withdrawals": render.money(ledger.withdrawals),
        "open_interest": {
            symbol: context.instrument(symbol).qty_text(context.open_interest(symbol))
            for symbol in sorted(exchange.markets)
        },
        "halted": {symbol: m.halted for symbol, m in sorted(exchange.markets.items())},
        "conservation_gap": render.money(gap),
        "conservation_holds": gap == 0,
        "invariants_hold": invariants,
        "accounts": len(ledger.accounts) - 1,
        "open_orders": len(exchange.orders),
    }


@method("admin.accounts", NoParams, ADMIN)
async def accounts(context: ApiContext, session: Session, params: NoParams) -> Any:
    ledger = context.exchange.ledger
    rows: list[dict[str, Any]] = []
    equities: list[int] = []
    for account_id, account in sorted(ledger.accounts.items()):
        if ledger.user_account(account_id) is None:
            continue
        risk = account_risk(ledger, account)
        isolated = sum(
            p.margin_balance for p in risk.positions if p.margin_mode is MarginMode.ISOLATED
        )
        # Isolated positions' margin never sits in the wallet; equity counts it with its PnL.
        equity = risk.cross_margin_balance + isolated
        rows.append(
            {
                "account_id": account_id,
                "name": account.name,
                "wallet_balance": render.money(account.wallet),
                "equity": render.money(equity),
            }
        )
        equities.append(equity)
    order = sorted(range(len(rows)), key=lambda index: -equities[index])
    return [rows[index] for index in order]
