"""Accounts, positions and the two places money meets trading.

`hold_for_order` is the pre-trade risk hold and `settle_fill` the post-trade settlement:
the matching code calls nothing else of the ledger when orders arrive and trade.
For now positions are tracked (signed qty in lots, signed cost in atoms) and fees are
computed; wallets, margin holds and transfers arrive with the margin ledger.
"""

from __future__ import annotations

from exchange.core.codes import RejectCode
from exchange.core.events import PositionChanged
from exchange.core.instruments import Instrument
from exchange.core.numbers import RATE_SCALE, ceil_div
from exchange.core.orders import Order


class Position:
    """One account's one-way position in one symbol. cost has the sign of qty."""

    __slots__ = ("cost", "qty")

    def __init__(self) -> None:
        self.qty = 0
        self.cost = 0


class Account:
    __slots__ = ("account_id", "client_orders", "name", "open_orders", "positions")

    def __init__(self, account_id: int, name: str) -> None:
        self.account_id = account_id
        self.name = name
        # symbol -> order id -> order, for every open order (resting or waiting to trigger).
        self.open_orders: dict[str, dict[int, Order]] = {}
        self.client_orders: dict[str, Order] = {}
        self.positions: dict[str, Position] = {}

    def position(self, symbol: str) -> Position:
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position()
        return position

    def position_qty(self, symbol: str) -> int:
        position = self.positions.get(symbol)
        return 0 if position is None else position.qty


def fee_for(notional: int, fee_rate: int) -> int:
    """Return the fee in atoms, rounded against the account (a rebate is negative)."""
    return ceil_div(notional * fee_rate, RATE_SCALE)


class Ledger:
    """Positions and (to come) money of every account."""

    __slots__ = ("accounts", "changed_positions")

    def __init__(self) -> None:
        self.accounts: dict[int, Account] = {}
        # Positions the current command changed, reported once each when it ends.
        self.changed_positions: dict[tuple[int, str], Account] = {}

    def open_account(self, account_id: int, name: str) -> Account:
        account = self.accounts[account_id] = Account(account_id, name)
        return account

    # Pre-trade risk hold.

    def hold_for_order(
        self, account: Account, instrument: Instrument, order: Order, reference_price: int | None
    ) -> tuple[RejectCode, str] | None:
        """Reserve what the order needs, or say why it cannot be carried."""
        return None

    def release_hold(self, account: Account, order: Order) -> None:
        """Give back what an order still holds once it leaves the book or waits no more."""

    # Post-trade settlement.

    def settle_fill(
        self,
        account: Account,
        instrument: Instrument,
        signed_qty: int,
        price: int,
        fee_rate: int,
    ) -> int:
        """Move a fill into the position; return the fee charged in atoms."""
        notional = instrument.notional(price, abs(signed_qty))
        self._apply_to_position(account.position(instrument.symbol), instrument, signed_qty, price)
        self.changed_positions[(account.account_id, instrument.symbol)] = account
        return fee_for(notional, fee_rate)

    def reducible_qty(self, account: Account, symbol: str, side_sign: int) -> int:
        """Return how many lots an order of this side can take off the position."""
        qty = account.position_qty(symbol)
        return abs(qty) if qty * side_sign < 0 else 0

    def take_position_changes(self, seq: int) -> list[PositionChanged]:
        """Return one event per position the command changed, in a stable order."""
        if not self.changed_positions:
            return []
        changes = []
        for (account_id, symbol), account in sorted(self.changed_positions.items()):
            position = account.positions[symbol]
            changes.append(PositionChanged(seq, account_id, symbol, position.qty, position.cost))
        self.changed_positions.clear()
        return changes

    @staticmethod
    def _apply_to_position(
        position: Position, instrument: Instrument, signed_qty: int, price: int
    ) -> int:
        """Add a fill to a position; return the realised PnL in atoms (before fees)."""
        held = position.qty
        if held == 0 or (held > 0) == (signed_qty > 0):
            position.qty += signed_qty
            position.cost += instrument.notional(price, signed_qty)
            return 0
        closing = min(abs(signed_qty), abs(held))
        # Release a proportional share of cost; a long rounds it up and a short down, so a
        # partial close never books more profit than it earned (the rest stays in the cost).
        if held > 0:
            released = ceil_div(position.cost * closing, held)
        else:
            released = -((-position.cost) * closing // -held)
        exit_value = instrument.notional(price, closing)
        realized = exit_value - released if held > 0 else -released - exit_value
        direction = 1 if signed_qty > 0 else -1
        position.qty += direction * closing
        position.cost -= released
        opening = abs(signed_qty) - closing
        if opening:
            position.qty += direction * opening
            position.cost += instrument.notional(price, direction * opening)
        return realized
