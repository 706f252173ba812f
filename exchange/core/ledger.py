"""Accounts, wallets, positions and the two places money meets trading.

`hold_for_order` is the pre-trade risk hold and `settle_fill` the post-trade settlement:
the matching code calls nothing else of the ledger when orders arrive and trade.

Money is integer atoms. Every movement is a transfer between two balances (a wallet, an
isolated margin, a system account, or the outside world for deposits and withdrawals), so

    sum(wallets) + sum(isolated margins) + sum(system accounts) - sum(position costs)
        == deposits - withdrawals

holds after every command; realised PnL moves value between a wallet and the position costs,
which is why costs appear in the sum. Rounding always goes against the account.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from mypy_extensions import mypyc_attr

from exchange.core.codes import RejectCode
from exchange.core.enums import LedgerEntryKind, MarginMode, Side
from exchange.core.events import (
    Event,
    LedgerEntry,
    build_balance_changed,
    build_position_changed,
)
from exchange.core.instruments import Instrument
from exchange.core.margin import initial_margin, maintenance_margin
from exchange.core.numbers import RATE_SCALE, ceil_div
from exchange.core.orders import Order
from exchange.core.pickling import Picklable

DEFAULT_LEVERAGE = 20
"""Leverage of a symbol an account has not set, capped by the first bracket (Binance's 20x)."""

# Final: the mypyc build reads these from C statics rather than the module's dict.
_CROSS: Final = MarginMode.CROSS
_ISOLATED: Final = MarginMode.ISOLATED
_BUY: Final = Side.BUY


INSURANCE_FUND_ID: Final = 0
"""The insurance fund is an account: it takes over positions the book cannot absorb."""


class SystemAccount(StrEnum):
    """Balances the exchange itself holds besides the insurance fund's account."""

    FEE_POOL = "fee_pool"
    FUNDING_POOL = "funding_pool"


# Read per fill; a module global is several times cheaper than the enum attribute.
_FEE_POOL: Final = SystemAccount.FEE_POOL


@mypyc_attr(serializable=True)  # see Picklable
class Position(Picklable):
    """One account's one-way position in one symbol, with the symbol's settings.

    qty is signed lots, cost signed atoms (the sign of qty). It exists from the first time the
    account touches the symbol, so leverage and margin mode can be set before trading.
    """

    __slots__ = (
        "account_id",
        "cost",
        "isolated_margin",
        "leverage",
        "liquidating",
        "margin_call",
        "margin_mode",
        "open_buy_qty",
        "open_sell_qty",
        "qty",
        "symbol",
    )

    def __init__(self, account_id: int, symbol: str, leverage: int) -> None:
        self.account_id = account_id
        self.symbol = symbol
        self.qty = 0
        self.cost = 0
        self.margin_mode = _CROSS
        self.leverage = leverage
        self.isolated_margin = 0
        # Whether a margin call was raised and the ratio has not recovered since (isolated).
        self.margin_call = False
        # True only inside a liquidation: its margin stays put until the waterfall ends.
        self.liquidating = False
        # Lots the account's active orders on each side still have to trade.
        self.open_buy_qty = 0
        self.open_sell_qty = 0

    def state(self) -> tuple[object, ...]:
        return (
            self.symbol,
            self.qty,
            self.cost,
            self.margin_mode.value,
            self.leverage,
            self.isolated_margin,
            self.margin_call,
            self.open_buy_qty,
            self.open_sell_qty,
        )


@mypyc_attr(serializable=True)  # see Picklable
class Account(Picklable):
    __slots__ = (
        "account_id",
        "client_orders",
        "margin_call",
        "name",
        "open_orders",
        "order_margin",
        "positions",
        "wallet",
    )

    def __init__(self, account_id: int, name: str) -> None:
        self.account_id = account_id
        self.name = name
        self.wallet = 0
        # Sum of what the account's open orders hold back from the wallet.
        self.order_margin = 0
        # symbol -> order id -> order, for every open order (resting or waiting to trigger).
        self.open_orders: dict[str, dict[int, Order]] = {}
        self.client_orders: dict[str, Order] = {}
        self.positions: dict[str, Position] = {}
        # Whether a cross margin call was raised and the ratio has not recovered since.
        self.margin_call = False

    def position_qty(self, symbol: str) -> int:
        position = self.positions.get(symbol)
        return 0 if position is None else position.qty


def fee_for(notional: int, fee_rate: int) -> int:
    """Return the fee in atoms, rounded against the account (a rebate is negative)."""
    return ceil_div(notional * fee_rate, RATE_SCALE)


class CrossState:
    """An account's cross margin figures at the current marks."""

    __slots__ = ("initial_margin", "maintenance_margin", "margin_balance", "unrealized_pnl")

    def __init__(self) -> None:
        self.unrealized_pnl = 0
        self.initial_margin = 0
        self.maintenance_margin = 0
        self.margin_balance = 0


@mypyc_attr(serializable=True)  # see Picklable
class Ledger(Picklable):
    """Wallets, positions and system balances of every account."""

    __slots__ = (
        "accounts",
        "changed_positions",
        "changed_wallets",
        "deposits",
        "instruments",
        "insurance",
        "marks",
        "open_positions",
        "system",
        "withdrawals",
    )

    def __init__(self, instruments: dict[str, Instrument]) -> None:
        self.instruments = instruments
        self.accounts: dict[int, Account] = {}
        self.insurance = self.open_account(INSURANCE_FUND_ID, "insurance fund")
        self.system = dict.fromkeys(SystemAccount, 0)
        self.deposits = 0
        self.withdrawals = 0
        # The valuation price of each symbol: its mark, once one is known.
        self.marks: dict[str, int] = {}
        # symbol -> account id -> position, for positions with a quantity.
        self.open_positions: dict[str, dict[int, Position]] = {s: {} for s in instruments}
        # What the current command changed, reported once each when it ends.
        self.changed_positions: dict[tuple[int, str], Position] = {}
        self.changed_wallets: dict[int, Account] = {}

    def open_account(self, account_id: int, name: str) -> Account:
        account = self.accounts[account_id] = Account(account_id, name)
        return account

    def user_account(self, account_id: int) -> Account | None:
        """Return a trader's account; the insurance fund acts only through liquidations."""
        if account_id == INSURANCE_FUND_ID:
            return None
        return self.accounts.get(account_id)

    def position(self, account: Account, symbol: str) -> Position:
        """Return the account's position record for a symbol, creating it with defaults."""
        position = account.positions.get(symbol)
        if position is None:
            first_bracket = self.instruments[symbol].brackets[0]
            leverage = min(DEFAULT_LEVERAGE, first_bracket.max_leverage)
            position = account.positions[symbol] = Position(account.account_id, symbol, leverage)
        return position

    # ------------------------------------------------------------------ valuation

    def value(self, position: Position) -> tuple[int, int]:
        """Return (notional, unrealised PnL) in atoms of a position at its symbol's mark."""
        mark = self.marks.get(position.symbol)
        if mark is None:
            return abs(position.cost), 0
        value = self.instruments[position.symbol].notional(mark, position.qty)
        return abs(value), value - position.cost

    def position_maintenance(self, position: Position, notional: int) -> int:
        instrument = self.instruments[position.symbol]
        return maintenance_margin(notional, instrument.bracket_for(notional))

    def cross_state(self, account: Account) -> CrossState:
        """Return the account's cross unrealised PnL, margins and margin balance."""
        state = CrossState()
        for position in account.positions.values():
            if position.qty and position.margin_mode is _CROSS:
                notional, pnl = self.value(position)
                state.unrealized_pnl += pnl
                state.initial_margin += initial_margin(notional, position.leverage)
                state.maintenance_margin += self.position_maintenance(position, notional)
        state.margin_balance = account.wallet + state.unrealized_pnl
        return state

    def available_balance(self, account: Account, state: CrossState | None = None) -> int:
        """Return what the account can still commit: cross margin balance less margins in use."""
        if state is not None:
            return state.margin_balance - state.initial_margin - account.order_margin
        # cross_state's sum without the maintenance margins, which this does not need: every
        # new order asks for it, so it is worth the few lines of repetition.
        available = account.wallet - account.order_margin
        marks = self.marks
        for position in account.positions.values():
            qty = position.qty
            if qty and position.margin_mode is _CROSS:
                symbol = position.symbol
                mark = marks.get(symbol)
                if mark is None:
                    available -= ceil_div(abs(position.cost), position.leverage)
                else:
                    # The magnitude first: the mypyc build multiplies negative factors slowly.
                    size = self.instruments[symbol].notional(mark, abs(qty))
                    value = size if qty > 0 else -size
                    available += value - position.cost - ceil_div(size, position.leverage)
        return available

    def withdrawable(self, account: Account) -> int:
        """Return what may leave the account: available balance without unrealised profit."""
        state = self.cross_state(account)
        profit = max(0, state.unrealized_pnl)
        return max(0, min(account.wallet, self.available_balance(account, state) - profit))

    def isolated_balance(self, position: Position) -> tuple[int, int, int]:
        """Return (margin balance, maintenance margin, notional) of an isolated position."""
        notional, pnl = self.value(position)
        return (
            position.isolated_margin + pnl,
            self.position_maintenance(position, notional),
            notional,
        )

    # ------------------------------------------------------------------ pre-trade risk hold

    def hold_for_order(
        self, account: Account, instrument: Instrument, order: Order, reference_price: int | None
    ) -> tuple[RejectCode, str] | None:
        """Reserve what the order needs, or say why it cannot be carried.

        The hold is the initial margin of the part of the order that would open or grow the
        position, at the order's price (a market order's: the reference price), plus the open
        loss of a price worse than the mark, plus the taker fee it could pay. The part that
        closes the position needs nothing, but a position can be closed only once: other open
        orders on the same side use up that room first. A reduce-only order holds nothing.
        """
        order.hold = 0
        if order.reduce_only:
            return None
        hold = self._hold_size(account, instrument, order, reference_price)
        if isinstance(hold, tuple):
            return hold
        if hold and hold > self.available_balance(account):
            return RejectCode.INSUFFICIENT_MARGIN, "margin is insufficient"
        order.hold = hold
        account.order_margin += hold
        return None

    def _hold_size(
        self, account: Account, instrument: Instrument, order: Order, reference_price: int | None
    ) -> int | tuple[RejectCode, str]:
        symbol = instrument.symbol
        position = account.positions.get(symbol) or self.position(account, symbol)
        signed_position = position.qty
        is_buy = order.side is _BUY
        leaves = order.qty - order.filled_qty
        opening = leaves
        if signed_position and (signed_position < 0) == is_buy:
            # Other active orders on this side close the position first.
            others = (position.open_buy_qty if is_buy else position.open_sell_qty) - order.counted
            reducing = abs(signed_position) - others
            if reducing > 0:
                opening = leaves - reducing
        if opening <= 0:
            return 0
        basis = order.price
        if basis is None:
            basis = reference_price
            if basis is None:
                return 0
        notional = instrument.notional(basis, opening)
        resulting_qty = signed_position + leaves if is_buy else signed_position - leaves
        # Sizes as magnitudes: the mypyc build multiplies negative factors the slow way.
        resulting = instrument.notional(basis, abs(resulting_qty))
        leverage = position.leverage
        for bracket in instrument.brackets:
            if resulting < bracket.notional_cap:
                break
        # The loop ends on the last bracket if none holds the notional, as bracket_for does.
        if leverage > bracket.max_leverage:
            return (
                RejectCode.POSITION_OVER_BRACKET,
                f"{leverage}x is above the {bracket.max_leverage}x allowed for a "
                "position this size; lower the leverage",
            )
        # The initial margin (notional is positive here), then the open loss and the fee:
        # margin.initial_margin and fee_for, inline, for every new order and partial fill.
        hold = -(-notional // leverage)
        mark = self.marks.get(symbol, reference_price)
        if mark is not None:
            worse = basis - mark if is_buy else mark - basis
            if worse > 0:
                hold += instrument.notional(worse, opening)
        fee = instrument.fee(basis, opening, instrument.taker_fee_rate)
        return hold + fee if fee > 0 else hold

    def track_order(self, account: Account, order: Order) -> None:
        """Count an active order's remaining lots in its position's open-order totals."""
        position = account.positions.get(order.symbol) or self.position(account, order.symbol)
        leaves = order.qty - order.filled_qty
        if order.side is _BUY:
            position.open_buy_qty += leaves - order.counted
        else:
            position.open_sell_qty += leaves - order.counted
        order.counted = leaves

    def untrack_order(self, account: Account, order: Order) -> None:
        """Take a finished order out of its position's open-order totals."""
        if order.counted:
            position = account.positions[order.symbol]
            if order.side is _BUY:
                position.open_buy_qty -= order.counted
            else:
                position.open_sell_qty -= order.counted
            order.counted = 0

    def release_hold(self, account: Account, order: Order) -> None:
        """Give back everything an order still holds."""
        account.order_margin -= order.hold
        order.hold = 0

    def resize_hold(
        self, account: Account, instrument: Instrument, order: Order, reference_price: int | None
    ) -> None:
        """Size a partly filled order's hold again for what it has left to open."""
        hold = self._hold_size(account, instrument, order, reference_price)
        if isinstance(hold, tuple):
            hold = order.hold  # the bracket check is for new orders; keep what is held
        hold = min(hold, order.hold)
        account.order_margin += hold - order.hold
        order.hold = hold

    # ------------------------------------------------------------------ post-trade settlement

    def settle_fill(
        self,
        account: Account,
        position: Position,
        instrument: Instrument,
        signed_qty: int,
        price: int,
        fee_rate: int,
    ) -> tuple[int, int]:
        """Move a fill into the position and the wallet; return (fee, realised PnL) in atoms.

        position is the account's position in the instrument's symbol: the caller has it at
        hand for every fill, so it is not looked up again here.
        """
        symbol = instrument.symbol
        held = position.qty
        lots = abs(signed_qty)
        traded = instrument.notional(price, lots)
        # fee_for, inline: this runs for both sides of every trade.
        fee = instrument.fee(price, lots, fee_rate)
        if position.margin_mode is _CROSS:
            if held == 0 or (held > 0) == (signed_qty > 0):
                # Opening or growing, _apply_to_position's first case, inline: no PnL.
                position.qty = held + signed_qty
                position.cost += traded if signed_qty > 0 else -traded
                realized = 0
            else:
                realized = self._apply_to_position(position, instrument, signed_qty, price)
            account.wallet += realized - fee
        else:
            realized = self._settle_isolated(account, position, instrument, signed_qty, price)
            account.wallet -= fee
        self.system[_FEE_POOL] += fee
        if account.wallet < 0:
            self._cover_from_insurance(account)
        account_id = account.account_id
        if not held or not position.qty:
            if position.qty:
                self.open_positions[symbol][account_id] = position
            elif held:
                del self.open_positions[symbol][account_id]
                position.margin_call = False
        self.changed_positions[(account_id, symbol)] = position
        self.changed_wallets[account_id] = account
        return fee, realized

    def _settle_isolated(
        self,
        account: Account,
        position: Position,
        instrument: Instrument,
        signed_qty: int,
        price: int,
    ) -> int:
        """Settle a fill of an isolated position: margin moves between wallet and position."""
        held = position.qty
        opposed = held != 0 and (held > 0) != (signed_qty > 0)
        closing = min(abs(held), abs(signed_qty)) if opposed else 0
        opening = abs(signed_qty) - closing
        realized = self._apply_to_position(position, instrument, signed_qty, price)
        if closing and position.liquidating:
            position.isolated_margin += realized
        elif closing:
            # Profit and loss stay inside the isolated margin; then the closed share of it
            # goes back to the wallet. A loss past the margin is the insurance fund's.
            margin = position.isolated_margin + realized
            if margin < 0:
                self.insurance.wallet += margin
                self.changed_wallets[INSURANCE_FUND_ID] = self.insurance
                margin = 0
            released = margin if abs(held) == closing else margin * closing // abs(held)
            account.wallet += released
            position.isolated_margin = margin - released
        if opening:
            margin = initial_margin(instrument.notional(price, opening), position.leverage)
            account.wallet -= margin
            position.isolated_margin += margin
        return realized

    def _cover_from_insurance(self, account: Account) -> None:
        """Bring a negative wallet back to zero from the insurance fund: no debt survives.

        The fund itself may end below zero only when it had nothing left to pay with; the
        liquidation engine turns to auto-deleveraging before it gets there.
        """
        if account is self.insurance:
            return
        self.insurance.wallet += account.wallet
        self.changed_wallets[INSURANCE_FUND_ID] = self.insurance
        account.wallet = 0

    def reducible_qty(self, account: Account, symbol: str, side_sign: int) -> int:
        """Return how many lots an order of this side can take off the position."""
        qty = account.position_qty(symbol)
        return abs(qty) if qty * side_sign < 0 else 0

    @staticmethod
    def _apply_to_position(
        position: Position, instrument: Instrument, signed_qty: int, price: int
    ) -> int:
        """Add a fill to a position; return the realised PnL in atoms (before fees)."""
        # Sizes are multiplied as magnitudes and signed after: the mypyc build multiplies
        # negative factors the slow way, through Python integer objects.
        held = position.qty
        lots = abs(signed_qty)
        if held == 0 or (held > 0) == (signed_qty > 0):
            position.qty = held + signed_qty
            traded = instrument.notional(price, lots)
            position.cost += traded if signed_qty > 0 else -traded
            return 0
        closing = min(lots, abs(held))
        # Release a proportional share of cost; a long rounds it up and a short down, so a
        # partial close never books more profit than it earned (the rest stays in the cost).
        if closing == abs(held):
            released = position.cost
        elif held > 0:
            released = ceil_div(position.cost * closing, held)
        else:
            released = -((-position.cost) * closing // -held)
        exit_value = instrument.notional(price, closing)
        realized = exit_value - released if held > 0 else -released - exit_value
        position.qty = held + signed_qty
        position.cost -= released
        opening = lots - closing
        if opening:
            traded = instrument.notional(price, opening)
            position.cost += traded if signed_qty > 0 else -traded
        return realized

    # ------------------------------------------------------------------ transfers

    def deposit(self, account: Account, amount: int, seq: int, out: list[Event]) -> None:
        account.wallet += amount
        self.deposits += amount
        self.changed_wallets[account.account_id] = account
        out.append(LedgerEntry(seq, account.account_id, None, LedgerEntryKind.DEPOSIT, amount))

    def withdraw(self, account: Account, amount: int, seq: int, out: list[Event]) -> None:
        account.wallet -= amount
        self.withdrawals += amount
        self.changed_wallets[account.account_id] = account
        out.append(LedgerEntry(seq, account.account_id, None, LedgerEntryKind.WITHDRAWAL, -amount))

    def move_isolated_margin(
        self, account: Account, position: Position, amount: int, seq: int, out: list[Event]
    ) -> None:
        """Move amount from the wallet into an isolated margin (negative: back out)."""
        account.wallet -= amount
        position.isolated_margin += amount
        self.changed_wallets[account.account_id] = account
        self.changed_positions[(account.account_id, position.symbol)] = position
        out.append(
            LedgerEntry(
                seq, account.account_id, position.symbol, LedgerEntryKind.MARGIN_TRANSFER, -amount
            )
        )

    def settle_funding(self, symbol: str, rate: int, mark: int, seq: int, out: list[Event]) -> None:
        """Pay funding on every open position of a symbol through the funding pool.

        Payment = notional at mark x rate; longs pay shorts when the rate is positive. Payers
        round up and receivers down, so the pool keeps the residue and never runs short.
        """
        instrument = self.instruments[symbol]
        positions = sorted(self.open_positions[symbol].items())
        payers: list[tuple[Position, int]] = []
        receivers: list[tuple[Position, int]] = []
        for _, position in positions:
            notional = instrument.notional(mark, abs(position.qty))
            pays = (position.qty > 0) == (rate > 0)
            if pays:
                payers.append((position, ceil_div(notional * abs(rate), RATE_SCALE)))
            else:
                receivers.append((position, notional * abs(rate) // RATE_SCALE))
        for position, amount in payers:
            self._fund(position, -amount, seq, out)
        for position, amount in receivers:
            self._fund(position, amount, seq, out)

    def _fund(self, position: Position, amount: int, seq: int, out: list[Event]) -> None:
        if not amount:
            return
        account = self.accounts[position.account_id]
        self.system[SystemAccount.FUNDING_POOL] -= amount
        if position.margin_mode is _ISOLATED:
            position.isolated_margin += amount
            self.changed_positions[(account.account_id, position.symbol)] = position
        else:
            account.wallet += amount
            if account.wallet < 0:
                self._cover_from_insurance(account)
        self.changed_wallets[account.account_id] = account
        out.append(
            LedgerEntry(seq, account.account_id, position.symbol, LedgerEntryKind.FUNDING, amount)
        )

    # ------------------------------------------------------------------ reporting

    def take_changes(self, seq: int, out: list[Event]) -> None:
        """Append one event per wallet and per position the command changed, in stable order."""
        append = out.append
        wallets = self.changed_wallets
        if wallets:
            for account_id in sorted(wallets) if len(wallets) > 1 else wallets:
                append(build_balance_changed(seq, account_id, wallets[account_id].wallet))
            wallets.clear()
        positions = self.changed_positions
        if positions:
            for key in sorted(positions) if len(positions) > 1 else positions:
                position = positions[key]
                append(
                    build_position_changed(
                        seq,
                        key[0],
                        key[1],
                        position.qty,
                        position.cost,
                        position.margin_mode,
                        position.leverage,
                        position.isolated_margin,
                    )
                )
            positions.clear()

    def conservation_gap(self) -> int:
        """Return the left side of the conservation equation minus the right: always 0."""
        held = sum(self.system.values())
        for account in self.accounts.values():
            held += account.wallet
            for position in account.positions.values():
                held += position.isolated_margin - position.cost
        return held - (self.deposits - self.withdrawals)
