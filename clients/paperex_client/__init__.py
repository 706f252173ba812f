"""paperex_client: an asyncio SDK for paperex's native JSON-RPC WebSocket API.

    from clients.paperex_client import Client

    async with Client("ws://127.0.0.1:8765/ws", api_key, api_secret) as client:
        order = await client.market_order("BTCUSDT", "buy", "0.01")
        print(order.status, order.avg_price)

See docs/quickstart.md and docs/protocol.md.
"""

from clients.paperex_client.book import Applied, LocalBook
from clients.paperex_client.client import (
    AdminClient,
    Backoff,
    BookFeed,
    Client,
    Subscription,
    login_signature,
)
from clients.paperex_client.errors import (
    ClientClosedError,
    ConnectionLostError,
    PaperexError,
    ProtocolError,
)
from clients.paperex_client.models import (
    Account,
    AccountEquity,
    AccountEvent,
    AutoDeleverage,
    BalanceUpdate,
    Book,
    BookUpdate,
    Bracket,
    ExchangeState,
    Fill,
    Instrument,
    LedgerRow,
    LedgerUpdate,
    Level,
    LiquidationRecord,
    MarginCall,
    NewAccount,
    Order,
    Position,
    PositionSettings,
    PositionUpdate,
    PublicLiquidation,
    Rejection,
    RiskEstimate,
    RiskReport,
    ServerTime,
    StreamUpdate,
    Ticker,
    Trade,
    UnknownEvent,
    WalletBalance,
)

__all__ = [
    "Account",
    "AccountEquity",
    "AccountEvent",
    "AdminClient",
    "Applied",
    "AutoDeleverage",
    "Backoff",
    "BalanceUpdate",
    "Book",
    "BookFeed",
    "BookUpdate",
    "Bracket",
    "Client",
    "ClientClosedError",
    "ConnectionLostError",
    "ExchangeState",
    "Fill",
    "Instrument",
    "LedgerRow",
    "LedgerUpdate",
    "Level",
    "LiquidationRecord",
    "LocalBook",
    "MarginCall",
    "NewAccount",
    "Order",
    "PaperexError",
    "Position",
    "PositionSettings",
    "PositionUpdate",
    "ProtocolError",
    "PublicLiquidation",
    "Rejection",
    "RiskEstimate",
    "RiskReport",
    "ServerTime",
    "StreamUpdate",
    "Subscription",
    "Ticker",
    "Trade",
    "UnknownEvent",
    "WalletBalance",
    "login_signature",
]
