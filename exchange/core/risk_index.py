"""An index of the mark prices at which positions need attention.

A mark update must cost in proportion to the positions it acts on, not to all open
positions. Each position that stands alone on its margin (an isolated position, or the only
cross position of an account) gets a threshold mark: the margin-call price while no call is
raised, the liquidation price after. A raised call also gets a recovery price. Thresholds sit
in sorted lists per symbol and direction, so a tick pops only what it crosses.

Thresholds are computed in integers from the bracket lines (maintenance margin is the highest
of N * MMR - cum over the tiers, and zero) and rounded one tick early, so the index may wake a
position too soon but never too late; the exact check decides. A position is indexed again
lazily, at the next mark of its symbol, after anything changed its margin. Cross accounts
with positions in several symbols depend on several marks; they are checked on every mark of
each of their symbols, which costs in proportion to how many such accounts there are.
"""

from __future__ import annotations

from typing import Final

from mypy_extensions import mypyc_attr
from sortedcontainers import SortedList

from exchange.core.enums import MarginMode
from exchange.core.instruments import Instrument
from exchange.core.ledger import Account, Ledger, Position
from exchange.core.numbers import RATE_SCALE, ceil_div
from exchange.core.pickling import Picklable

# Final: the mypyc build reads it from a C static rather than the module's dict.
_CROSS: Final = MarginMode.CROSS


def threshold_ticks(
    instrument: Instrument, qty: int, cost: int, base: int, ratio: int
) -> int | None:
    """Return the mark (ticks) at which maintenance / margin balance reaches ratio.

    A long reaches it at or below the price, a short at or above. Rounded to the tick on
    the position's healthy side of the exact price: floor for a long, ceiling for a short.
    base is the margin behind the position (isolated margin, or the wallet of an account
    with one cross position). None: no positive price.
    """
    per_lot_tick = instrument.atoms_per_tick_lot
    lines = [(b.maintenance_margin_rate, b.maintenance_amount) for b in instrument.brackets]
    lines.append((0, 0))  # maintenance margin never below zero: bankruptcy
    prices: list[int] = []
    if qty > 0:
        for rate, amount in lines:
            numerator = ratio * (cost - base) - amount * RATE_SCALE
            prices.append(numerator // (qty * per_lot_tick * (ratio - rate)))
        price = max(prices)
    else:
        for rate, amount in lines:
            numerator = ratio * (base - cost) + amount * RATE_SCALE
            prices.append(ceil_div(numerator, -qty * per_lot_tick * (rate + ratio)))
        price = min(prices)
    return price if price > 0 else None


@mypyc_attr(serializable=True)  # see Picklable
class _SymbolIndex(Picklable):
    __slots__ = (
        "adverse_long",
        "adverse_short",
        "dirty",
        "recover_long",
        "recover_short",
        "spread",
    )

    def __init__(self) -> None:
        # (threshold, account id). A long needs attention at mark <= threshold, a short at >=.
        self.adverse_long = SortedList()
        self.adverse_short = SortedList()
        # A raised margin call recovers at mark > threshold (long) or < threshold (short).
        self.recover_long = SortedList()
        self.recover_short = SortedList()
        # Accounts whose margin changed since they were indexed.
        self.dirty: set[int] = set()
        # Cross accounts with positions in several symbols: checked on every mark.
        self.spread: set[int] = set()


@mypyc_attr(serializable=True)  # see Picklable
class RiskIndex(Picklable):
    """Positions by the marks at which they need a margin call or a liquidation."""

    def __init__(self, ledger: Ledger, margin_call_ratio: int) -> None:
        self.ledger = ledger
        self.margin_call_ratio = margin_call_ratio
        self.symbols = {symbol: _SymbolIndex() for symbol in ledger.instruments}
        # (account id, symbol) -> the entries it has in the lists, to take them out again.
        self._entries: dict[tuple[int, str], list[tuple[SortedList, tuple[int, int]]]] = {}

    def note_changes(self) -> None:
        """Mark every position whose margin the ledger changed in this command."""
        ledger = self.ledger
        for account_id, symbol in ledger.changed_positions:
            self.symbols[symbol].dirty.add(account_id)
        for account_id, account in ledger.changed_wallets.items():
            for symbol, position in account.positions.items():
                if position.margin_mode is _CROSS:
                    self.symbols[symbol].dirty.add(account_id)

    def candidates(self, symbol: str, mark: int) -> tuple[list[Position], list[Account]]:
        """Return the isolated positions and cross accounts that a mark may act on."""
        index = self.symbols[symbol]
        self._refresh(symbol, index)
        woken: set[int] = set(index.spread)
        # Entries are (threshold, account id) and ids are never negative, so (price, -1)
        # sorts before every entry at that price.
        for entries, lowest in ((index.adverse_long, mark), (index.recover_short, mark + 1)):
            # Longs wake at a threshold >= mark; shorts recover at a threshold > mark.
            start = entries.bisect_left((lowest, -1))
            woken.update(account_id for _, account_id in entries[start:])
        for entries, above in ((index.adverse_short, mark + 1), (index.recover_long, mark)):
            # Shorts wake at a threshold <= mark; longs recover at a threshold < mark.
            end = entries.bisect_left((above, -1))
            woken.update(account_id for _, account_id in entries[:end])
        isolated: list[Position] = []
        cross: list[Account] = []
        ledger = self.ledger
        for account_id in sorted(woken):
            account = ledger.accounts[account_id]
            held = account.positions.get(symbol)
            if held is None or not held.qty:
                continue
            if held.margin_mode is _CROSS:
                cross.append(account)
            else:
                isolated.append(held)
            # Whatever the check decides, the position is indexed again afterwards.
            index.dirty.add(account_id)
        return isolated, cross

    def _refresh(self, symbol: str, index: _SymbolIndex) -> None:
        if not index.dirty:
            return
        ledger = self.ledger
        instrument = ledger.instruments[symbol]
        entries_of = self._entries
        for account_id in index.dirty:
            key = (account_id, symbol)
            old = entries_of.pop(key, None)
            index.spread.discard(account_id)
            account = ledger.accounts[account_id]
            position = account.positions.get(symbol)
            new: list[tuple[SortedList, tuple[int, int]]] | None = None
            if position is not None and position.qty and account is not ledger.insurance:
                if position.margin_mode is _CROSS:
                    crossed = [
                        p for p in account.positions.values() if p.qty and p.margin_mode is _CROSS
                    ]
                    if len(crossed) > 1:
                        index.spread.add(account_id)
                    else:
                        new = self._entries_for(
                            index, instrument, position, account.wallet, account.margin_call
                        )
                else:
                    new = self._entries_for(
                        index, instrument, position, position.isolated_margin, position.margin_call
                    )
            # A fee or a small fill seldom moves a threshold by a whole tick: the entries
            # then stay where they are, which spares the sorted lists a removal and an insert.
            if _same_entries(new, old):
                if new is not None:
                    entries_of[key] = new
                continue
            for entries, entry in old or ():
                entries.remove(entry)
            if new is not None:
                for entries, entry in new:
                    entries.add(entry)
                entries_of[key] = new
        index.dirty.clear()

    def _entries_for(
        self,
        index: _SymbolIndex,
        instrument: Instrument,
        position: Position,
        base: int,
        raised: bool,
    ) -> list[tuple[SortedList, tuple[int, int]]]:
        """Return the (list, entry) pairs that index the position, without adding them."""
        qty, cost, account_id = position.qty, position.cost, position.account_id
        is_long = qty > 0
        call = threshold_ticks(instrument, qty, cost, base, self.margin_call_ratio)
        adverse = threshold_ticks(instrument, qty, cost, base, RATE_SCALE) if raised else call
        # One tick of slack towards waking early: the index may be early, never late.
        if adverse is None:
            # No positive price: a long is never reached; a short is reached at any mark.
            key = 0 if is_long else 1
        else:
            key = adverse + 1 if is_long else adverse - 1
        entries = [(index.adverse_long if is_long else index.adverse_short, (key, account_id))]
        if raised and call is not None:
            recover = call - 1 if is_long else call + 1
            recover_list = index.recover_long if is_long else index.recover_short
            entries.append((recover_list, (recover, account_id)))
        return entries


def _same_entries(
    new: list[tuple[SortedList, tuple[int, int]]] | None,
    old: list[tuple[SortedList, tuple[int, int]]] | None,
) -> bool:
    # The lists by identity: == on two different sorted lists would compare their contents.
    if new is None or old is None:
        return new is old
    return len(new) == len(old) and all(
        new_list is old_list and new_entry == old_entry
        for (new_list, new_entry), (old_list, old_entry) in zip(new, old, strict=True)
    )
