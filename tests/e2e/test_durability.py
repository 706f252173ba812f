"""Crash recovery of the real server: SIGKILL at random moments while clients trade.

The server runs as a subprocess (`paperex serve --data-dir ...`). Several clients place
orders over WebSocket, each reading its account back after every acknowledged order. At a
seeded random number of acknowledgements, with other requests still in flight, the test
sends SIGKILL, restarts the server on the same data directory and checks that:

- every order whose response was received is there, as it was acknowledged, with its fills;
- each account's balances and positions equal the last ones read before the kill, whenever
  nothing acknowledged or possibly applied came after that read (an in-flight order that
  the restarted server does not know was never applied);
- the API keys, the demo account's key included, still work and are the same;
- money is conserved and the invariants hold (admin.state).

Clients trade only against the house ladder (market orders) or rest far from it (limit
orders), so no client's state moves because of another's.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.harness import signed_login

ROOT = Path(__file__).resolve().parents[2]
PAPEREX = Path(sys.executable).with_name("paperex")
ADMIN_TOKEN = "durability-token"
SEED = 20_261_125
ROUNDS = 4
CLIENTS = 4
TIMEOUT = 10.0
LISTENING = re.compile(r"listening on ws://([\d.]+):(\d+)/ws")
DEMO = re.compile(r"demo account 'demo' \(id (\d+)\): api_key (\w+) api_secret (\w+)")


# ---------------------------------------------------------------------- the server process


@dataclass
class ServerProcess:
    process: asyncio.subprocess.Process
    url: str
    demo_keys: tuple[str, str, str]
    output: list[str]
    drain: asyncio.Task[None]

    async def kill(self) -> None:
        self.process.kill()
        await asyncio.wait_for(self.process.wait(), TIMEOUT)
        await asyncio.wait_for(self.drain, TIMEOUT)


async def start_server(data_dir: Path, config: Path) -> ServerProcess:
    process = await asyncio.create_subprocess_exec(
        str(PAPEREX),
        "serve",
        "--config",
        str(config),
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--admin-token",
        ADMIN_TOKEN,
        "--log-level",
        "warning",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=ROOT,
    )
    assert process.stdout is not None
    stdout = process.stdout
    output: list[str] = []
    url = None
    demo = None
    async with asyncio.timeout(30):
        while url is None or demo is None:
            line = (await stdout.readline()).decode()
            if not line:
                raise AssertionError("the server exited:\n" + "".join(output))
            output.append(line)
            if (found := LISTENING.search(line)) is not None:
                url = f"http://{found[1]}:{found[2]}/ws"
            if (found := DEMO.search(line)) is not None:
                demo = (found[1], found[2], found[3])

    async def drain() -> None:
        # Keep reading so the server never blocks on a full pipe.
        while line := await stdout.readline():
            output.append(line.decode())

    return ServerProcess(process, url, demo, output, asyncio.create_task(drain()))


# ---------------------------------------------------------------------- a minimal client


class Connection:
    """Requests by id; a lost connection answers None at once instead of timing out."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    async def rpc(self, method: str, params: Any = None) -> dict[str, Any] | None:
        request_id = next(self.ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            await self.socket.send_str(json.dumps(message))
            async with asyncio.timeout(TIMEOUT):
                while True:
                    reply = await self.socket.receive()
                    if reply.type is not aiohttp.WSMsgType.TEXT:
                        return None
                    data: dict[str, Any] = json.loads(reply.data)
                    if data.get("id") == request_id:
                        return data
        except (ConnectionError, aiohttp.ClientError):
            return None

    async def call(self, method: str, params: Any = None) -> Any:
        response = await self.rpc(method, params)
        assert response is not None, f"{method}: connection lost"
        assert "result" in response, f"{method}: {response}"
        return response["result"]


async def connect(session: aiohttp.ClientSession, url: str) -> Connection:
    """Connect, retrying a bounded number of times while the server comes up."""
    for attempt in range(50):
        try:
            return Connection(await session.ws_connect(url))
        except aiohttp.ClientConnectionError:
            if attempt == 49:
                raise
            await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------- a trading client


@dataclass
class Trader:
    name: str
    keys: dict[str, Any]
    rng: random.Random
    acked: dict[int, dict[str, Any]] = field(default_factory=dict)
    last_read: dict[str, Any] | None = None
    unread_ack: bool = False
    in_flight: str | None = None
    counter: int = 0

    def next_order(self, round_number: int) -> dict[str, Any]:
        self.counter += 1
        client_order_id = f"{self.name}-{round_number}-{self.counter}"
        choice = self.rng.randrange(4)
        order: dict[str, Any] = {"symbol": "BTCUSDT", "qty": "0.002"}
        order["client_order_id"] = client_order_id
        if choice == 0:
            order.update(side="buy", type="market")
        elif choice == 1:
            order.update(side="sell", type="market")
        elif choice == 2:
            order.update(side="buy", type="limit", price="58800")
        else:
            order.update(side="sell", type="limit", price="61200")
        return order

    async def login(self, session: aiohttp.ClientSession, url: str) -> Connection:
        connection = await connect(session, url)
        await connection.call("auth.login", signed_login(self.keys, int(time.time() * 1000)))
        return connection

    async def trade(
        self, connection: Connection, round_number: int, acks: asyncio.Queue[None]
    ) -> None:
        """Place an order, read the account back, repeat, until the connection is lost."""
        while True:
            order = self.next_order(round_number)
            self.in_flight = order["client_order_id"]
            response = await connection.rpc("order.place", order)
            if response is None:
                return
            self.in_flight = None
            if "result" in response:
                result = response["result"]
                self.acked[result["order_id"]] = result
                self.unread_ack = True
                acks.put_nowait(None)
            read = await connection.rpc("account.get")
            if read is None or "result" not in read:
                return
            self.last_read = read["result"]
            self.unread_ack = False

    async def trade_some(self, connection: Connection, round_number: int, count: int) -> None:
        """Place count orders one after another, reading the account after each."""
        for _ in range(count):
            order = self.next_order(round_number)
            response = await connection.rpc("order.place", order)
            assert response is not None
            if "result" in response:
                self.acked[response["result"]["order_id"]] = response["result"]
            self.last_read = await connection.call("account.get")
            self.unread_ack = False


# ---------------------------------------------------------------------- checks after a restart


async def check_trader(trader: Trader, connection: Connection) -> bool:
    """Check a trader's orders, fills and account; return whether the account was compared."""
    for order_id, acknowledged in trader.acked.items():
        found = await connection.call("order.get", {"order_id": order_id})
        assert found == acknowledged, f"order {order_id} changed across the restart"
    fills = await connection.call("account.fills", {"limit": 1000})
    filled: dict[int, int] = {}
    for fill in fills:
        lots = round(float(fill["last_qty"]) * 1000)
        filled[fill["order_id"]] = filled.get(fill["order_id"], 0) + lots
    for order_id, acknowledged in trader.acked.items():
        expected = round(float(acknowledged["filled_qty"]) * 1000)
        assert filled.get(order_id, 0) == expected, f"order {order_id}: fills lost"
    in_flight_applied = False
    if trader.in_flight is not None:
        response = await connection.rpc("order.get", {"client_order_id": trader.in_flight})
        assert response is not None
        in_flight_applied = "result" in response
        if in_flight_applied:
            trader.acked[response["result"]["order_id"]] = response["result"]
    account = await connection.call("account.get")
    compared = False
    if trader.last_read is not None and not trader.unread_ack and not in_flight_applied:
        assert account == trader.last_read, f"{trader.name}: account differs after the restart"
        compared = True
    trader.last_read = account
    trader.unread_ack = False
    trader.in_flight = None
    return compared


async def restart_and_check(
    session: aiohttp.ClientSession,
    data_dir: Path,
    config: Path,
    traders: list[Trader],
    demo: tuple[str, ...],
) -> tuple[ServerProcess, int]:
    """Start the server again on data_dir and check it against what the traders saw."""
    server = await start_server(data_dir, config)
    assert server.demo_keys == demo, "the demo account's key changed"
    compared = 0
    for trader in traders:
        connection = await trader.login(session, server.url)
        compared += await check_trader(trader, connection)
        await connection.socket.close()
    admin = await connect(session, server.url)
    await admin.call("auth.admin", {"token": ADMIN_TOKEN})
    state = await admin.call("admin.state")
    assert state["conservation_holds"], state
    assert state["invariants_hold"], state
    # The house, the demo account and the traders, each opened once.
    assert state["accounts"] == 2 + CLIENTS
    assert state["insurance_fund"] == "1000000.00000000"
    await admin.socket.close()
    return server, compared


def snapshotting_config(directory: Path) -> Path:
    """Return configs/manual.toml with a snapshot every 25 commands, written to directory."""
    text = (ROOT / "configs" / "manual.toml").read_text(encoding="utf-8")
    instruments = json.dumps(str(ROOT / "configs" / "instruments.toml"))
    text = text.replace(
        'instruments_file = "instruments.toml"', f"instruments_file = {instruments}"
    )
    path = directory / "snapshotting.toml"
    path.write_text(text + "\n[journal]\nsnapshot_every_commands = 25\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("snapshots", [False, True], ids=["journal-only", "snapshots"])
@pytest.mark.asyncio
async def test_sigkill_at_random_moments_loses_nothing_acknowledged(
    tmp_path: Path, snapshots: bool
) -> None:
    rng = random.Random(SEED + snapshots)
    data_dir = tmp_path / "data"
    config = snapshotting_config(tmp_path) if snapshots else ROOT / "configs" / "manual.toml"
    compared = 0
    async with aiohttp.ClientSession() as session:
        server = await start_server(data_dir, config)
        try:
            demo_keys = server.demo_keys
            admin = await connect(session, server.url)
            await admin.call("auth.admin", {"token": ADMIN_TOKEN})
            traders = []
            for number in range(CLIENTS):
                keys = await admin.call(
                    "admin.create_account", {"name": f"trader{number}", "deposit": "100000"}
                )
                traders.append(Trader(f"t{number}", keys, random.Random(rng.random())))
            await admin.socket.close()
            for round_number in range(ROUNDS):
                # Hot: kill while the clients' requests are in flight.
                connections = [await trader.login(session, server.url) for trader in traders]
                acks: asyncio.Queue[None] = asyncio.Queue()
                workers = [
                    asyncio.create_task(trader.trade(connection, round_number, acks))
                    for trader, connection in zip(traders, connections, strict=True)
                ]
                kill_after = rng.randint(5, 60)
                async with asyncio.timeout(TIMEOUT * 3):
                    for _ in range(kill_after):
                        await acks.get()
                await server.kill()
                await asyncio.wait_for(asyncio.gather(*workers), TIMEOUT)
                for connection in connections:
                    await connection.socket.close()
                server, hot = await restart_and_check(session, data_dir, config, traders, demo_keys)
                compared += hot

                # Quiet: kill right after the last read, with nothing in flight.
                for trader in traders:
                    connection = await trader.login(session, server.url)
                    await trader.trade_some(connection, round_number, rng.randint(1, 3))
                    await connection.socket.close()
                await server.kill()
                server, quiet = await restart_and_check(
                    session, data_dir, config, traders, demo_keys
                )
                assert quiet == CLIENTS
                compared += quiet
        finally:
            if server.process.returncode is None:
                await server.kill()
    assert sum(len(trader.acked) for trader in traders) >= ROUNDS * 5
    assert compared >= ROUNDS * CLIENTS
    snapshot_files = list((data_dir / "snapshots").glob("snapshot-*.snap"))
    assert bool(snapshot_files) == snapshots
