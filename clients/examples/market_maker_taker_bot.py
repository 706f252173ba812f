"""A small taker bot: trade round trips against the built-in market maker, then print the PnL.

    .venv/bin/python clients/examples/market_maker_taker_bot.py \\
        --url ws://127.0.0.1:8765/ws --api-key K --api-secret S

Each round it reads the local order book, buys at the market when the book leans to the bid
(more size bid than offered near the touch) and sells otherwise, holds the position for a
moment, then closes it with a reduce-only market order. Fills print as the account stream
delivers them; at the end it prints realised PnL, fees and the change in wallet balance.
The demo account's key and secret are printed by `scripts/run` when the server starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from dataclasses import dataclass
from decimal import Decimal

from clients.paperex_client import BookFeed, Client, Fill, LocalBook, Subscription
from clients.paperex_client.models import Side

NEAR_TOUCH_LEVELS = 3


@dataclass(frozen=True, slots=True)
class Summary:
    """What the bot's rounds came to, in USDT."""

    rounds: int
    realized_pnl: Decimal
    fees: Decimal
    wallet_change: Decimal
    unrealized_pnl: Decimal


def choose_side(book: LocalBook) -> Side:
    """Buy when the bids near the touch outweigh the asks, else sell."""
    bid_size = sum((level.qty for level in book.bids(NEAR_TOUCH_LEVELS)), Decimal(0))
    ask_size = sum((level.qty for level in book.asks(NEAR_TOUCH_LEVELS)), Decimal(0))
    return "buy" if bid_size >= ask_size else "sell"


def describe_touch(book: LocalBook) -> str:
    bid, ask = book.best_bid(), book.best_ask()
    bid_text = f"{bid.qty:f} @ {bid.price:f}" if bid else "none"
    ask_text = f"{ask.qty:f} @ {ask.price:f}" if ask else "none"
    return f"bid {bid_text}, ask {ask_text}"


async def print_fills(account: Subscription) -> None:
    async for update in account:
        if isinstance(update.data, Fill):
            fill = update.data
            print(
                f"  fill  {fill.side:4} {fill.last_qty:f} {fill.symbol} @ {fill.last_px:f}"
                f"  fee {fill.fee:f}  realised {fill.realized_pnl:f}"
            )


async def run(client: Client, symbol: str, qty: Decimal, rounds: int, hold_s: float) -> Summary:
    """Trade `rounds` round trips of `qty` and return the PnL they made."""
    start = await client.account()
    first_fill = await client.fills(symbol, limit=1)
    since_trade = first_fill[0].trade_id if first_fill else 0
    feed: BookFeed
    async with client.local_book(symbol) as feed, client.subscribe("account") as account:
        book_task = asyncio.create_task(feed.run())
        fills_task = asyncio.create_task(print_fills(account))
        try:
            for number in range(1, rounds + 1):
                book = feed.book
                side = choose_side(book)
                print(f"round {number}: {describe_touch(book)} -> {side}", flush=True)
                opened = await client.market_order(symbol, side, qty)
                await asyncio.sleep(hold_s)
                close_side: Side = "sell" if side == "buy" else "buy"
                closed = await client.market_order(symbol, close_side, qty, reduce_only=True)
                print(f"  in at {opened.avg_price:f}, out at {closed.avg_price:f}", flush=True)
        finally:
            for task in (book_task, fills_task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    fills = [f for f in await client.fills(symbol, limit=1000) if f.trade_id > since_trade]
    end = await client.account()
    position = end.position(symbol)
    return Summary(
        rounds=rounds,
        realized_pnl=sum((f.realized_pnl for f in fills), Decimal(0)),
        fees=sum((f.fee for f in fills), Decimal(0)),
        wallet_change=end.wallet_balance - start.wallet_balance,
        unrealized_pnl=position.unrealized_pnl if position is not None else Decimal(0),
    )


def print_summary(summary: Summary) -> None:
    print(f"after {summary.rounds} round trips (USDT):")
    print(f"  realised PnL    {summary.realized_pnl:>14f}")
    print(f"  fees paid       {summary.fees:>14f}")
    print(f"  wallet change   {summary.wallet_change:>14f}")
    print(f"  unrealised PnL  {summary.unrealized_pnl:>14f}")


async def main(args: argparse.Namespace) -> None:
    async with Client(args.url, args.api_key, args.api_secret) as client:
        print(f"logged in to account {client.account_id}", flush=True)
        summary = await run(client, args.symbol, Decimal(args.qty), args.rounds, args.hold)
    print_summary(summary)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default="ws://127.0.0.1:8765/ws")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--api-secret", required=True)
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--qty", default="0.002", help="quantity per trade (default 0.002)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hold", type=float, default=1.0, help="seconds to hold each position")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
