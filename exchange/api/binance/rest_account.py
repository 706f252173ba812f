"""Signed account endpoints: balances, positions, settings, income, listen keys."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from aiohttp import web

from exchange.api.binance import errors, render
from exchange.api.binance.handlers import AccountHandler, keyed, public, signed
from exchange.api.binance.listen_keys import LISTEN_KEYS, ListenKeys, listen_keys
from exchange.api.binance.params import Params
from exchange.api.binance.rest_signed import raise_if_rejected, rejection
from exchange.api.context import ApiContext
from exchange.api.convert import amount_atoms
from exchange.api.history import Deleveraged
from exchange.core.codes import RejectCode
from exchange.core.commands import AdjustIsolatedMargin, SetLeverage, SetMarginMode
from exchange.core.enums import MarginMode
from exchange.core.instruments import Instrument
from exchange.core.ledger import DEFAULT_LEVERAGE, Account
from exchange.core.liquidation import adl_queue
from exchange.core.margin import display_places, format_decimal, format_price
from exchange.core.market import Market
from exchange.core.risk import AccountRisk, PositionRisk, account_risk

MAX_LEVERAGE = 125
DEFAULT_INCOME_LIMIT = 100
MAX_INCOME_LIMIT = 1000
INCOME_TYPES = {
    "deposit": "TRANSFER",
    "withdrawal": "TRANSFER",
    "fee": "COMMISSION",
    "realized_pnl": "REALIZED_PNL",
    "funding": "FUNDING_FEE",
    "insurance_clearance": "INSURANCE_CLEAR",
}
"""Ledger kinds as Binance income types; isolated margin transfers are not income there."""
ADD_MARGIN, REDUCE_MARGIN = 1, 2
DEFAULT_FORCE_ORDERS = 50
MAX_FORCE_ORDERS = 100
AUTO_CLOSE_TYPES = ("LIQUIDATION", "ADL")
ADL_CLIENT_ORDER_ID = "adl_autoclose"
"""Binance's client id of an order closing a position by auto-deleveraging."""
ADL_QUANTILES = 5
"""Binance shows the ADL queue in five buckets, 0 (last in line) to 4 (first)."""


# ---------------------------------------------------------------------------------------------
# Account and positions
# ---------------------------------------------------------------------------------------------


def _account(context: ApiContext, account_id: int) -> tuple[Account, AccountRisk]:
    ledger = context.exchange.ledger
    account = ledger.accounts[account_id]
    return account, account_risk(ledger, account)


def _settings(account: Account, instrument: Instrument) -> tuple[int, MarginMode, int]:
    """Return leverage, margin mode and isolated margin of a symbol, defaults if untouched."""
    position = account.positions.get(instrument.symbol)
    if position is None:
        return min(DEFAULT_LEVERAGE, instrument.brackets[0].max_leverage), MarginMode.CROSS, 0
    return position.leverage, position.margin_mode, position.isolated_margin


class _Figures:
    """One symbol's position figures for the account and position endpoints."""

    def __init__(self, account: Account, risk: PositionRisk | None, market: Market) -> None:
        instrument = market.instrument
        self.instrument = instrument
        self.leverage, self.margin_mode, self.isolated_wallet = _settings(account, instrument)
        self.risk = risk
        places = display_places(instrument)
        if risk is None:
            self.qty = 0
            self.entry = "0.0"
            self.mark = render.price(instrument, market.mark_price)
            self.liquidation = "0"
            self.pnl = 0
            self.notional = 0
            self.initial = self.maintenance = 0
        else:
            self.qty = risk.qty
            self.entry = format_price(risk.entry_price, places + 4)
            self.mark = format_price(risk.mark_price, places)
            self.liquidation = _optional(risk.liquidation_price, places)
            self.pnl = risk.unrealized_pnl
            self.notional = risk.notional if risk.qty > 0 else -risk.notional
            self.initial = risk.initial_margin
            self.maintenance = risk.maintenance_margin

    @property
    def isolated(self) -> bool:
        return self.margin_mode is MarginMode.ISOLATED

    def isolated_margin(self) -> str:
        return render.money(self.isolated_wallet + self.pnl if self.isolated else 0)

    def position_risk(self, updated: int) -> dict[str, Any]:
        instrument = self.instrument
        return {
            "symbol": instrument.symbol,
            "positionSide": "BOTH",
            "positionAmt": instrument.qty_text(self.qty),
            "entryPrice": self.entry,
            "breakEvenPrice": self.entry,
            "markPrice": self.mark,
            "unRealizedProfit": render.money(self.pnl),
            "liquidationPrice": self.liquidation,
            "leverage": str(self.leverage),
            "maxNotionalValue": render.max_notional(instrument, self.leverage),
            "marginType": "isolated" if self.isolated else "cross",
            "isolatedMargin": self.isolated_margin(),
            "isAutoAddMargin": "false",
            "notional": render.money(self.notional),
            "marginAsset": instrument.quote_asset,
            "isolatedWallet": render.money(self.isolated_wallet),
            "initialMargin": render.money(self.initial),
            "maintMargin": render.money(self.maintenance),
            "positionInitialMargin": render.money(self.initial),
            "openOrderInitialMargin": "0",
            "adl": 0,
            "bidNotional": "0",
            "askNotional": "0",
            "updateTime": updated,
        }

    def account_position(self, updated: int) -> dict[str, Any]:
        instrument = self.instrument
        return {
            "symbol": instrument.symbol,
            "initialMargin": render.money(self.initial),
            "maintMargin": render.money(self.maintenance),
            "unrealizedProfit": render.money(self.pnl),
            "positionInitialMargin": render.money(self.initial),
            "openOrderInitialMargin": "0",
            "leverage": str(self.leverage),
            "isolated": self.isolated,
            "entryPrice": self.entry,
            "breakEvenPrice": self.entry,
            "maxNotional": render.max_notional(instrument, self.leverage),
            "positionSide": "BOTH",
            "positionAmt": instrument.qty_text(self.qty),
            "notional": render.money(self.notional),
            "isolatedWallet": render.money(self.isolated_wallet),
            "bidNotional": "0",
            "askNotional": "0",
            "updateTime": updated,
        }


def _optional(value: Fraction | None, places: int) -> str:
    return "0" if value is None else format_decimal(value, places)


def _figures(
    context: ApiContext, account: Account, risk: AccountRisk, symbol: str | None, held: bool
) -> list[_Figures]:
    """Return figures per symbol: all symbols, or only held positions (v3), or one symbol."""
    by_symbol = {p.symbol: p for p in risk.positions if p.qty}
    markets = sorted(context.exchange.markets.items())
    return [
        _Figures(account, by_symbol.get(name), market)
        for name, market in markets
        if (symbol is None or name == symbol) and (not held or name in by_symbol)
    ]


def _totals(account: Account, risk: AccountRisk) -> dict[str, int]:
    positions = [p for p in risk.positions if p.qty]
    isolated_wallet = sum(
        p.isolated_margin for p in positions if p.margin_mode is MarginMode.ISOLATED
    )
    pnl = sum(p.unrealized_pnl for p in positions)
    cross_pnl = sum(p.unrealized_pnl for p in positions if p.margin_mode is MarginMode.CROSS)
    position_initial = sum(p.initial_margin for p in positions)
    wallet = risk.wallet_balance + isolated_wallet
    return {
        "wallet": wallet,
        "pnl": pnl,
        "margin_balance": wallet + pnl,
        "cross_wallet": risk.wallet_balance,
        "cross_pnl": cross_pnl,
        "position_initial": position_initial,
        "order_initial": risk.order_margin,
        "initial": position_initial + risk.order_margin,
        "maintenance": sum(p.maintenance_margin for p in positions),
        "available": risk.available_balance,
    }


def _asset_row(asset: str, totals: dict[str, int], updated: int) -> dict[str, Any]:
    money = render.money
    return {
        "asset": asset,
        "walletBalance": money(totals["wallet"]),
        "unrealizedProfit": money(totals["pnl"]),
        "marginBalance": money(totals["margin_balance"]),
        "maintMargin": money(totals["maintenance"]),
        "initialMargin": money(totals["initial"]),
        "positionInitialMargin": money(totals["position_initial"]),
        "openOrderInitialMargin": money(totals["order_initial"]),
        "crossWalletBalance": money(totals["cross_wallet"]),
        "crossUnPnl": money(totals["cross_pnl"]),
        "availableBalance": money(totals["available"]),
        "maxWithdrawAmount": money(max(totals["available"], 0)),
        "marginAvailable": True,
        "updateTime": updated,
    }


def _quote_asset(context: ApiContext) -> str:
    assets = {i.quote_asset for i in context.instruments.values()}
    return sorted(assets)[0]


def _account_view(context: ApiContext, account_id: int, held: bool) -> dict[str, Any]:
    account, risk = _account(context, account_id)
    totals = _totals(account, risk)
    now = context.clock.now_ms()
    money = render.money
    return {
        "feeTier": 0,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "updateTime": 0,
        "multiAssetsMargin": False,
        "tradeGroupId": -1,
        "totalInitialMargin": money(totals["initial"]),
        "totalMaintMargin": money(totals["maintenance"]),
        "totalWalletBalance": money(totals["wallet"]),
        "totalUnrealizedProfit": money(totals["pnl"]),
        "totalMarginBalance": money(totals["margin_balance"]),
        "totalPositionInitialMargin": money(totals["position_initial"]),
        "totalOpenOrderInitialMargin": money(totals["order_initial"]),
        "totalCrossWalletBalance": money(totals["cross_wallet"]),
        "totalCrossUnPnl": money(totals["cross_pnl"]),
        "availableBalance": money(totals["available"]),
        "maxWithdrawAmount": money(max(totals["available"], 0)),
        "assets": [_asset_row(_quote_asset(context), totals, now)],
        "positions": [
            f.account_position(now) for f in _figures(context, account, risk, None, held)
        ],
    }


async def account_v2(context: ApiContext, account_id: int, params: Params) -> Any:
    return _account_view(context, account_id, held=False)


async def account_v3(context: ApiContext, account_id: int, params: Params) -> Any:
    return _account_view(context, account_id, held=True)


async def balance(context: ApiContext, account_id: int, params: Params) -> Any:
    account, risk = _account(context, account_id)
    totals = _totals(account, risk)
    money = render.money
    return [
        {
            "accountAlias": account.name,
            "asset": _quote_asset(context),
            "balance": money(totals["wallet"]),
            "crossWalletBalance": money(totals["cross_wallet"]),
            "crossUnPnl": money(totals["cross_pnl"]),
            "availableBalance": money(totals["available"]),
            "maxWithdrawAmount": money(max(totals["available"], 0)),
            "marginAvailable": True,
            "updateTime": context.clock.now_ms(),
        }
    ]


def _position_risk(context: ApiContext, account_id: int, params: Params, held: bool) -> Any:
    market = params.optional_market(context)
    symbol = None if market is None else market.instrument.symbol
    account, risk = _account(context, account_id)
    now = context.clock.now_ms()
    return [f.position_risk(now) for f in _figures(context, account, risk, symbol, held)]


async def position_risk_v2(context: ApiContext, account_id: int, params: Params) -> Any:
    return _position_risk(context, account_id, params, held=False)


async def position_risk_v3(context: ApiContext, account_id: int, params: Params) -> Any:
    return _position_risk(context, account_id, params, held=True)


async def set_leverage(context: ApiContext, account_id: int, params: Params) -> Any:
    instrument = params.market(context).instrument
    symbol = instrument.symbol
    leverage = params.integer("leverage")
    if leverage is None:
        raise errors.mandatory("leverage")
    if not 1 <= leverage <= MAX_LEVERAGE:
        raise errors.BinanceError(-4028, f"Leverage {leverage} is not valid")
    result = await context.sequencer.submit(
        lambda seq, ts: SetLeverage(seq, ts, account_id, symbol, leverage)
    )
    raise_if_rejected(result, account_id)
    return {
        "leverage": leverage,
        "maxNotionalValue": render.max_notional(instrument, leverage),
        "symbol": symbol,
    }


async def set_margin_type(context: ApiContext, account_id: int, params: Params) -> Any:
    instrument = params.market(context).instrument
    symbol = instrument.symbol
    mode = params.choice("marginType", render.MARGIN_TYPES)
    if mode is None:
        raise errors.mandatory("marginType")
    account = context.exchange.ledger.accounts[account_id]
    if _settings(account, instrument)[1] is mode:
        raise errors.no_need_to_change_margin_type()
    result = await context.sequencer.submit(
        lambda seq, ts: SetMarginMode(seq, ts, account_id, symbol, mode)
    )
    found = rejection(result, account_id)
    if found is not None:
        position = account.positions.get(symbol)
        if found[0] is RejectCode.MARGIN_MODE_CHANGE_BLOCKED and not (position and position.qty):
            raise errors.BinanceError(*errors.MARGIN_TYPE_OPEN_ORDERS)
        raise errors.from_reject(found[0])
    return {"code": 200, "msg": "success"}


async def position_margin(context: ApiContext, account_id: int, params: Params) -> Any:
    symbol = params.market(context).instrument.symbol
    kind = params.integer("type")
    if kind is None:
        raise errors.mandatory("type")
    if kind not in (ADD_MARGIN, REDUCE_MARGIN):
        raise errors.invalid_value("type")
    text = params.required("amount")
    amount = amount_atoms(text, "amount")
    signed_amount = amount if kind == ADD_MARGIN else -amount
    result = await context.sequencer.submit(
        lambda seq, ts: AdjustIsolatedMargin(seq, ts, account_id, symbol, signed_amount)
    )
    raise_if_rejected(result, account_id)
    return {
        "amount": float(text),
        "code": 200,
        "msg": "Successfully modify position margin.",
        "type": kind,
    }


async def income(context: ApiContext, account_id: int, params: Params) -> Any:
    """Return the account's money movements that history holds (the last 1,000), oldest first."""
    market = params.optional_market(context)
    symbol = None if market is None else market.instrument.symbol
    wanted = params.text("incomeType")
    start = params.integer("startTime")
    end = params.integer("endTime")
    limit = params.bounded("limit", DEFAULT_INCOME_LIMIT, 1, MAX_INCOME_LIMIT)
    asset = _quote_asset(context)
    rows = []
    for number, row in enumerate(context.history.account(account_id).ledger):
        income_type = INCOME_TYPES.get(row.kind)
        if (
            income_type is None
            or (wanted is not None and income_type != wanted.upper())
            or (symbol is not None and row.symbol != symbol)
            or (start is not None and row.ts < start)
            or (end is not None and row.ts > end)
        ):
            continue
        rows.append(
            {
                "symbol": row.symbol or "",
                "incomeType": income_type,
                "income": render.money(row.amount),
                "asset": asset,
                "info": row.kind,
                "time": row.ts,
                "tranId": row.seq * 1000 + number % 1000,
                "tradeId": "",
            }
        )
    return rows[-limit:]


async def force_orders(context: ApiContext, account_id: int, params: Params) -> Any:
    """Return the account's liquidation and auto-deleveraging orders that history holds."""
    market = params.optional_market(context)
    symbol = None if market is None else market.instrument.symbol
    auto_close = params.text("autoCloseType")
    if auto_close is not None and auto_close.upper() not in AUTO_CLOSE_TYPES:
        raise errors.invalid_value("autoCloseType")
    wanted = AUTO_CLOSE_TYPES if auto_close is None else (auto_close.upper(),)
    start = params.integer("startTime")
    end = params.integer("endTime")
    limit = params.bounded("limit", DEFAULT_FORCE_ORDERS, 1, MAX_FORCE_ORDERS)
    history = context.history
    rows: list[tuple[int, int, dict[str, Any]]] = []
    if "LIQUIDATION" in wanted:
        # Liquidation orders are immediate-or-cancel: they are among the finished orders.
        for order_id in history.account(account_id).finished:
            view = history.orders.get(order_id)
            if view is not None and view.liquidation:
                instrument = context.instrument(view.symbol)
                rows.append((view.created_ts, view.order_id, render.order(instrument, view)))
    if "ADL" in wanted:
        for record in history.deleveraged.get(account_id, ()):
            rows.append((record.ts, 0, _adl_order(context, record)))
    chosen = sorted(
        (
            row
            for row in rows
            if (symbol is None or row[2]["symbol"] == symbol)
            and (start is None or row[0] >= start)
            and (end is None or row[0] <= end)
        ),
        key=lambda row: (row[0], row[1]),
    )
    return [row[2] for row in chosen[-limit:]]


def _adl_order(context: ApiContext, record: Deleveraged) -> dict[str, Any]:
    """Render a position closed by auto-deleveraging as Binance's order (it has no order id)."""
    instrument = context.instrument(record.symbol)
    qty = instrument.qty_text(record.qty)
    price = instrument.price_text(record.price)
    return {
        "orderId": 0,
        "symbol": record.symbol,
        "status": "FILLED",
        "clientOrderId": ADL_CLIENT_ORDER_ID,
        "price": price,
        "avgPrice": price,
        "origQty": qty,
        "executedQty": qty,
        "cumQuote": render.money(instrument.notional(record.price, record.qty)),
        "timeInForce": "IOC",
        "type": "LIMIT",
        "reduceOnly": True,
        "closePosition": False,
        "side": render.side_name(record.side),
        "positionSide": "BOTH",
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "origType": "LIMIT",
        "time": record.ts,
        "updateTime": record.ts,
    }


async def adl_quantile(context: ApiContext, account_id: int, params: Params) -> Any:
    """Return where each held position stands in the engine's ADL queue, in five buckets.

    The queue is the engine's own ranking (profit x effective leverage, per side); the
    bucket is the position's rank among the positions on its side, 4 for the first fifth.
    """
    market = params.optional_market(context)
    ledger = context.exchange.ledger
    account = ledger.accounts[account_id]
    rows = []
    for symbol, position in sorted(account.positions.items()):
        if not position.qty or (market is not None and market.instrument.symbol != symbol):
            continue
        side_sign = 1 if position.qty > 0 else -1
        # Nobody is being liquidated: the insurance fund stands in, as the queue skips it.
        queue = adl_queue(ledger, symbol, ledger.insurance, side_sign)
        rank = next(i for i, other in enumerate(queue) if other is position)
        quantile = ADL_QUANTILES - 1 - rank * ADL_QUANTILES // len(queue)
        rows.append(
            {
                "symbol": symbol,
                # One-way positions: Binance says to read BOTH and ignore LONG and SHORT.
                "adlQuantile": {"LONG": 0, "SHORT": 0, "BOTH": quantile},
            }
        )
    return rows


async def get_position_mode(context: ApiContext, account_id: int, params: Params) -> Any:
    return {"dualSidePosition": False}


async def set_position_mode(context: ApiContext, account_id: int, params: Params) -> Any:
    if params.text("dualSidePosition") is None:
        raise errors.mandatory("dualSidePosition")
    if params.boolean("dualSidePosition"):
        raise errors.hedge_mode_unsupported()
    raise errors.no_need_to_change_position_side()


async def leverage_bracket(context: ApiContext, account_id: int, params: Params) -> Any:
    market = params.optional_market(context)
    markets = (
        [market] if market is not None else [m for _, m in sorted(context.exchange.markets.items())]
    )
    rows = [_brackets(m.instrument) for m in markets]
    return rows[0] if market is not None else rows


def _brackets(instrument: Instrument) -> dict[str, Any]:
    return {
        "symbol": instrument.symbol,
        "notionalCoef": 1.0,
        "brackets": [
            {
                "bracket": b.tier,
                "initialLeverage": b.max_leverage,
                "notionalCap": int(Fraction(b.notional_cap, 10**8)),
                "notionalFloor": int(Fraction(b.notional_floor, 10**8)),
                "maintMarginRatio": float(Fraction(b.maintenance_margin_rate, 10**8)),
                "cum": float(Fraction(b.maintenance_amount, 10**8)),
            }
            for b in instrument.brackets
        ],
    }


async def commission_rate(context: ApiContext, account_id: int, params: Params) -> Any:
    instrument = params.market(context).instrument
    return {
        "symbol": instrument.symbol,
        "makerCommissionRate": render.rate(instrument.maker_fee_rate),
        "takerCommissionRate": render.rate(instrument.taker_fee_rate),
    }


async def capital_config(context: ApiContext, params: Params) -> Any:
    return []


# ---------------------------------------------------------------------------------------------
# Listen keys
# ---------------------------------------------------------------------------------------------


def listen_key_handlers(registry: ListenKeys) -> dict[str, AccountHandler]:
    """Return the listen-key actions, `start`, `keepalive` and `close`, on a registry."""

    async def start(context: ApiContext, account_id: int, params: Params) -> Any:
        return {"listenKey": registry.issue(account_id, context.clock.now_ms())}

    async def keepalive(context: ApiContext, account_id: int, params: Params) -> Any:
        key = registry.keepalive(account_id, context.clock.now_ms())
        if key is None:
            raise errors.unknown_listen_key()
        return {"listenKey": key}

    async def close(context: ApiContext, account_id: int, params: Params) -> Any:
        registry.close(account_id)
        return {}

    return {"start": start, "keepalive": keepalive, "close": close}


def register(app: web.Application) -> None:
    """Add the account routes (and the listen-key routes, which take the API key only)."""
    listen_keys(app)
    routes: list[tuple[str, str, Any]] = [
        ("GET", "/fapi/v2/account", account_v2),
        ("GET", "/fapi/v3/account", account_v3),
        ("GET", "/fapi/v2/balance", balance),
        ("GET", "/fapi/v3/balance", balance),
        ("GET", "/fapi/v2/positionRisk", position_risk_v2),
        ("GET", "/fapi/v3/positionRisk", position_risk_v3),
        ("POST", "/fapi/v1/leverage", set_leverage),
        ("POST", "/fapi/v1/marginType", set_margin_type),
        ("POST", "/fapi/v1/positionMargin", position_margin),
        ("GET", "/fapi/v1/positionSide/dual", get_position_mode),
        ("POST", "/fapi/v1/positionSide/dual", set_position_mode),
        ("GET", "/fapi/v1/leverageBracket", leverage_bracket),
        ("GET", "/fapi/v1/commissionRate", commission_rate),
        ("GET", "/fapi/v1/income", income),
        ("GET", "/fapi/v1/forceOrders", force_orders),
        ("GET", "/fapi/v1/adlQuantile", adl_quantile),
    ]
    for verb, path, handler in routes:
        app.router.add_route(verb, path, signed(handler))
    actions = listen_key_handlers(app[LISTEN_KEYS])
    for verb, action in (("POST", "start"), ("PUT", "keepalive"), ("DELETE", "close")):
        app.router.add_route(verb, "/fapi/v1/listenKey", keyed(actions[action]))
    app.router.add_get("/sapi/v1/capital/config/getall", public(capital_config))
