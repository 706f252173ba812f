#!/usr/bin/env python3
"""Benchmark the WebSocket API end to end: a real server process and real loopback sockets.

The server runs as its own process (`python -m exchange.cli serve`, as `paperex serve` does)
on configs/manual.toml with the per-connection rate limit raised (200 requests/s would cap 10
connections at 2,000/s) and an operator token so the benchmark can open accounts. Client and
server share this machine's cores. The clients speak raw JSON-RPC over aiohttp WebSockets:

- Order round trips: 10 logged-in connections, each keeping a window of requests in flight;
  every request is an `order.place` of a GTC limit order 4% from the mark (it rests, far from
  the touch) or the `order.cancel` of it, so the book does not grow. A round trip is one order
  request answered; the rate is counted over a fixed wall-clock span after a warm-up.
- Round-trip latency: the same place/cancel requests sent open loop at 5,000 a second over
  the 10 connections, each timed from the moment it was due to be sent to its reply.
- Deliveries: 100, then 1,000 unauthenticated connections subscribed to trades.BTCUSDT while
  a driver's market orders trade against one large resting order each side (one trade each).
  Every stream message any subscriber receives is one delivery. The driver keeps twice the
  server's per-connection limit of requests in flight on its connection, so the server always
  has the next orders at hand and its loop, not the driver's round trips, sets the trade
  rate. It holds back (until the subscribers' side wakes it) when subscribers lag more than a
  few hundred trades, counting orders in flight as published, so no outbox reaches the
  server's limit; at the end every subscriber must have seen every trade since it
  subscribed, without gaps.
  The subscribers are raw WebSocket clients that count text frames as they are read off
  their sockets (aiohttp's client would take more CPU than the server it measures); each
  keeps its last frame, whose seq must equal the frames counted.

The last line printed is one JSON object: order_round_trips_per_s, rtt_p50_ms, rtt_p99_ms,
deliveries_per_s_100, deliveries_per_s_1000, then extra figures (server_us_per_round_trip is
the whole server process's CPU; server_loop_us_per_round_trip its main thread's, the event
loop, which bounds the throughput when other threads share the work). A benchmark, not a test.

    .venv/bin/python scripts/bench_ws.py [--quick] [--journal] [--rate N] [--profile FILE]
        [--only orders|deliveries] [--event-loop auto|uvloop|asyncio] [--client-loop ...]
        [--compiled auto|on|off]

The server runs on uvloop when it is installed (--event-loop), as `paperex serve` does; the
order clients on asyncio's loop (--client-loop), whose timers keep the open-loop sender on
time; the subscribers on uvloop (--subscriber-loop), where a thousand sockets cost less. Like
`paperex serve`, the server runs the modules compiled by mypyc when `paperex compile` (or
scripts/run) has built them for these sources (--compiled); "server_modules" in the JSON says
which ran.

The server journals every command as it ships (SQLite WAL, synchronous = normal); --journal
first runs the order phases with the journal off and prints both side by side. With --profile
the server runs under cProfile (which slows it down) and the top of the profile is printed
after the figures; --only orders|deliveries runs one half, so that a profile shows one
workload.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import pstats
import re
import resource
import secrets
import shutil
import sys
import tempfile
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
import orjson

from exchange.api.ws import MAX_IN_FLIGHT
from exchange.runtime import eventloop

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "manual.toml"
SYMBOL = "BTCUSDT"

BENCH_RATE_LIMIT = 1_000_000
"""Requests a second per connection in the benchmark's copy of the config."""

CONNECTIONS = 10
WINDOW = 32
"""Requests each connection keeps in flight in the throughput run."""
LATENCY_RATE = 5_000
"""Order requests a second in the open-loop latency run."""
SUBSCRIBERS = (100, 1_000)
DELIVERY_KEYS = ("deliveries_per_s_100", "deliveries_per_s_1000")
ORDER_QTY = "0.002"
"""The smallest BTCUSDT order over the 100 USDT minimum notional at these prices."""
BUY_PRICE = "57600.0"
SELL_PRICE = "62400.0"
"""Resting prices 4% from the 60,000 mark of configs/manual.toml: inside the 5% price band,
far from the market maker's ladder."""
DRIVER_MAKER_QTY = "100"
DRIVER_MAKER_ORDERS = 4
"""Resting orders of DRIVER_MAKER_QTY each side: 200,000 driver trades a side, room for a
full run's two phases at twice today's trade rate (one order of 100 lasted 50,000)."""
DRIVER_BID = "59997.0"
DRIVER_ASK = "60003.0"
"""The driver's resting orders sit inside the market maker's best bid and ask (1 bp away)."""
DRIVER_IN_FLIGHT = 2 * MAX_IN_FLIGHT
"""Market orders the driver keeps in flight on its one connection. The server runs up to
MAX_IN_FLIGHT of a connection's requests at once and reads the rest as room frees up: with
only a few in flight (4 once), the driver's round trips, not the server, set the trade rate,
and the server's loop sat idle a fifth of the time or more."""
MAX_LAG_TRADES = 256
"""Trades a subscriber may fall behind before the driver waits; the outbox limit is 4,096."""
HOLD_BACK_CHECK_S = 0.05
"""How often a held-back driver looks again, should no delivery wake it (a stop, say)."""
DEPOSIT = "10000000"

GOAL_ROUND_TRIPS_PER_S = 30_000
GOAL_RTT_P99_MS = 5.0
GOAL_DELIVERIES_PER_S_1000 = 150_000

REQUEST_TIMEOUT = 30.0


def pause_s(seconds: float) -> float:
    """Return how long a client should sleep to wait `seconds` on the running loop.

    uvloop's timers count whole milliseconds and turn a shorter delay into the next loop
    turn: a client waiting less than that would spin and take the CPU the server needs.
    asyncio's loop waits at least its epoll's millisecond anyway, and wakes closer to the
    time asked, which the open-loop sender needs (the clients default to it).
    """
    if eventloop.loop_name(asyncio.get_running_loop()) == "uvloop":
        return max(0.001, seconds)
    return max(0.0, seconds)


CONNECT_CONCURRENCY = 100
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""RFC 6455's constant for the Sec-WebSocket-Accept check."""
PROFILE_TOP = 30


@dataclass(frozen=True)
class Durations:
    warmup: float
    throughput: float
    scaling: float
    latency: float
    deliveries: float


QUICK = Durations(warmup=0.5, throughput=3.0, scaling=1.0, latency=3.0, deliveries=3.0)
FULL = Durations(warmup=1.0, throughput=10.0, scaling=3.0, latency=10.0, deliveries=10.0)


# ---------------------------------------------------------------------- the server process


def write_config(directory: Path, rate_limit: int, *, journal: bool = True) -> Path:
    """Copy configs/manual.toml with the rate limit raised and paths made absolute.

    The server journals by default, durably against a process crash; journal=False turns
    the journal off, for the side-by-side run of --journal.
    """
    text = CONFIG.read_text()
    replacements = {
        r"^instruments_file\s*=.*$": "instruments_file = "
        + json.dumps(str(CONFIG.parent / "instruments.toml")),
        r"^data_dir\s*=.*$": f"data_dir = {json.dumps(str(directory / 'data'))}",
        r"^rate_limit_per_s\s*=.*$": f"rate_limit_per_s = {rate_limit}",
    }
    for pattern, line in replacements.items():
        text, count = re.subn(pattern, line, text, count=1, flags=re.MULTILINE)
        if count != 1:
            raise SystemExit(f"{CONFIG} has no line matching {pattern!r}")
    if not journal:
        text += "\n[journal]\nenabled = false\n"
    path = directory / ("bench.toml" if journal else "bench-no-journal.toml")
    path.write_text(text)
    return path


class ServerProcess:
    """`paperex serve` in a child process, its URL, and its CPU time from /proc."""

    def __init__(
        self, process: asyncio.subprocess.Process, url: str, token: str, modules: str
    ) -> None:
        self.process = process
        self.url = url
        self.token = token
        self.modules = modules
        """What the server runs, as it says at start: "compiled by mypyc, ..." or "interpreted"."""
        self.output: deque[str] = deque(maxlen=40)
        self._drain = asyncio.get_running_loop().create_task(self._read_output())

    @classmethod
    async def start(
        cls,
        config: Path,
        profile: Path | None,
        event_loop: str,
        compiled: str,
        wrapper: Sequence[str] = (),
    ) -> ServerProcess:
        """Start the server; wrapper is a command to run it under (scripts/count_ws.py)."""
        token = secrets.token_hex(16)
        python = ROOT / ".venv" / "bin" / "python"
        command = [*wrapper, str(python if python.exists() else sys.executable)]
        if profile is not None:
            command += ["-m", "cProfile", "-o", str(profile)]
        command += ["-m", "exchange.cli", "serve", "--config", str(config), "--port", "0"]
        command += ["--admin-token", token, "--log-level", "warning", "--event-loop", event_loop]
        command += ["--compiled", compiled]
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        seen: list[str] = []
        url = None
        try:
            # --compiled on may compile first (about a minute, once per state of the sources);
            # under valgrind everything is some 50 times slower.
            async with asyncio.timeout(600 if wrapper else 300 if compiled == "on" else 30):
                while True:
                    raw = await process.stdout.readline()
                    if not raw:
                        raise SystemExit("the server exited:\n" + "".join(seen))
                    line = raw.decode(errors="replace")
                    seen.append(line)
                    found = re.search(r"listening on (ws://\S+)", line)
                    if found:
                        url = found.group(1)
                    if line.startswith("paperex: modules ") and url is not None:
                        return cls(process, url, token, line.removeprefix("paperex: modules "))
        except TimeoutError:
            process.kill()
            raise SystemExit("the server did not start in 30 s:\n" + "".join(seen)) from None

    async def _read_output(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while raw := await stream.readline():
            self.output.append(raw.decode(errors="replace").rstrip())

    def cpu_seconds(self) -> float:
        """Return the server's user plus system CPU time so far."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        # Fields 14 and 15 of stat (utime, stime), counted after the command name.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def loop_cpu_seconds(self) -> float:
        """Return the CPU time of the server's main thread (its event loop) so far."""
        pid = self.process.pid
        try:
            stat = Path(f"/proc/{pid}/task/{pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self) -> int | None:
        """Ask the server to stop (SIGTERM), kill it if it takes over 15 s; return its code."""
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._drain, 5)
        return self.process.returncode


@dataclass(frozen=True)
class CpuShares:
    """CPU time over a span as shares of one core: server, client, and everything else."""

    server: float
    client: float
    other: float
    server_loop: float = 0.0
    """The server's event-loop thread alone: the part that bounds the server's throughput,
    whatever other threads (the WAL checkpointer, snapshot writes) add to the process."""

    def text(self) -> str:
        return (
            f"cpu: server {self.server:.0%}, client {self.client:.0%}, "
            f"other processes {self.other:.0%} of one core"
        )

    def figures(self) -> dict[str, float]:
        return {
            "server": round(self.server, 2),
            "client": round(self.client, 2),
            "other": round(self.other, 2),
            "server_loop": round(self.server_loop, 2),
        }


def machine_busy_seconds() -> float:
    """Return the CPU time all cores have spent busy since boot (from /proc/stat)."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    # user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Server, client and other CPU time over a span, as shares of one core."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self._wall = time.perf_counter()
        self._server = server.cpu_seconds()
        self._loop = server.loop_cpu_seconds()
        self._client = time.process_time()
        self._machine = machine_busy_seconds()

    def shares(self) -> CpuShares:
        wall = time.perf_counter() - self._wall
        server = (self.server.cpu_seconds() - self._server) / wall
        client = (time.process_time() - self._client) / wall
        machine = (machine_busy_seconds() - self._machine) / wall
        loop = (self.server.loop_cpu_seconds() - self._loop) / wall
        return CpuShares(server, client, max(0.0, machine - server - client), loop)


# ---------------------------------------------------------------------- a raw JSON-RPC client


ReplyHandler = Callable[[dict[str, Any], float], Awaitable[None] | None]
"""Told of a reply and when it was read; what it returns (the next send) the reader awaits."""


class RpcError(Exception):
    pass


class RpcClient:
    """Requests by id over one WebSocket; each reply goes to the handler registered for it."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.pending: dict[int, ReplyHandler] = {}
        self._ids = itertools.count(1)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        # orjson: the order clients share the server's two cores, so their CPU is its loss.
        loads, clock, pending = orjson.loads, time.perf_counter, self.pending
        async for message in self.socket:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            now = clock()
            data = loads(message.data)
            handler = pending.pop(data.get("id"), None)
            if handler is not None:
                follow_up = handler(data, now)
                if follow_up is not None:
                    await follow_up

    async def send(self, method: str, params: dict[str, Any], handler: ReplyHandler) -> None:
        request_id = next(self._ids)
        self.pending[request_id] = handler
        text = orjson.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        )
        await self.socket.send_str(text.decode())

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Send a request and return its result, or raise RpcError with the error."""
        future, handler = reply_future()
        await self.send(method, params or {}, handler)
        reply = await asyncio.wait_for(future, REQUEST_TIMEOUT)
        if "error" in reply:
            raise RpcError(f"{method}: {reply['error']}")
        return reply["result"]

    async def close(self) -> None:
        await self.socket.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def bounded(calls: Sequence[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    """Run calls concurrently, at most limit at a time, and return their results in order."""
    gate = asyncio.Semaphore(limit)

    async def run(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    return await asyncio.gather(*(run(call) for call in calls))


@dataclass
class Bench:
    """The server, one HTTP session, the operator connection and every client opened."""

    server: ServerProcess
    session: aiohttp.ClientSession
    admin: RpcClient | None = None
    clients: list[RpcClient] = field(default_factory=list)

    async def connect(self) -> RpcClient:
        socket = await self.session.ws_connect(self.server.url, max_msg_size=8 * 1024 * 1024)
        client = RpcClient(socket)
        self.clients.append(client)
        return client

    async def operator(self) -> RpcClient:
        if self.admin is None:
            self.admin = await self.connect()
            await self.admin.call("auth.admin", {"token": self.server.token})
        return self.admin

    async def trader(self, name: str) -> RpcClient:
        """Open an account with a large deposit and a connection logged in to it."""
        admin = await self.operator()
        keys = await admin.call("admin.create_account", {"name": name, "deposit": DEPOSIT})
        client = await self.connect()
        timestamp = int(time.time() * 1000)
        payload = f"{timestamp}.{keys['api_key']}".encode()
        signature = hmac.new(keys["api_secret"].encode(), payload, hashlib.sha256).hexdigest()
        await client.call(
            "auth.login",
            {"api_key": keys["api_key"], "timestamp": timestamp, "signature": signature},
        )
        return client

    async def traders(self, prefix: str, count: int) -> list[RpcClient]:
        calls = [lambda index=index: self.trader(f"{prefix}-{index}") for index in range(count)]
        return await bounded(calls, CONNECT_CONCURRENCY)

    async def close(self) -> None:
        await bounded([client.close for client in self.clients], CONNECT_CONCURRENCY)


def place_params(side: str) -> dict[str, Any]:
    price = BUY_PRICE if side == "buy" else SELL_PRICE
    return {"symbol": SYMBOL, "side": side, "type": "limit", "qty": ORDER_QTY, "price": price}


def percentile_ms(ordered: Sequence[float], share: float) -> float:
    """Return the nearest-rank percentile of sorted seconds, in milliseconds."""
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return round(ordered[index] * 1_000, 3)


# ---------------------------------------------------------------------- order round trips


@dataclass
class Counts:
    done: int = 0
    places: int = 0
    errors: int = 0
    first_error: str | None = None

    def error(self, reply: dict[str, Any]) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = json.dumps(reply.get("error"))[:200]


def reply_future() -> tuple[asyncio.Future[dict[str, Any]], ReplyHandler]:
    """Return a future for a reply and the handler that resolves it."""
    future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    def resolve(data: dict[str, Any], _: float) -> None:
        if not future.done():
            future.set_result(data)

    return future, resolve


class PlaceCancelChains:
    """Keep chains of place, cancel, place... going on one connection, driven by its reader.

    Each reply's handler sends the chain's next request from the connection's reader task,
    so a round trip costs the client no task switch and no timer.
    """

    def __init__(self, client: RpcClient, counts: Counts) -> None:
        self.client = client
        self.counts = counts
        self.running = True
        self.active = 0
        self.finished = asyncio.Event()

    async def start(self, chains: int) -> None:
        for chain in range(chains):
            self.active += 1
            await self._place(("buy", "sell")[chain % 2])

    def _place(self, side: str) -> Awaitable[None]:
        counts = self.counts

        def on_place(data: dict[str, Any], _: float) -> Awaitable[None] | None:
            counts.done += 1
            counts.places += 1
            if "error" in data:
                counts.error(data)
                return self._next(side)
            return self.client.send(
                "order.cancel", {"order_id": data["result"]["order_id"]}, on_cancel
            )

        def on_cancel(data: dict[str, Any], _: float) -> Awaitable[None] | None:
            counts.done += 1
            if "error" in data:
                counts.error(data)
            return self._next(side)

        return self.client.send("order.place", place_params(side), on_place)

    def _next(self, side: str) -> Awaitable[None] | None:
        if self.running:
            return self._place(side)
        self.active -= 1
        if self.active == 0:
            self.finished.set()
        return None


@dataclass
class Throughput:
    round_trips_per_s: float
    places_per_s: float
    errors: int
    first_error: str | None
    cpu: CpuShares


async def measure_throughput(
    bench: Bench, clients: Sequence[RpcClient], window: int, warmup: float, seconds: float
) -> Throughput:
    """Run window place/cancel loops per connection; count replies over a fixed span."""
    if window > 100:
        raise SystemExit("a window over 100 could pass the 200 open orders of one account")
    counts = Counts()
    connections = [PlaceCancelChains(client, counts) for client in clients]
    for connection in connections:
        await connection.start(window)
    await asyncio.sleep(warmup)
    meter = CpuMeter(bench.server)
    start_time, start_done, start_places = time.perf_counter(), counts.done, counts.places
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - start_time
    done, places = counts.done - start_done, counts.places - start_places
    cpu = meter.shares()
    for connection in connections:
        connection.running = False
    for connection in connections:
        await asyncio.wait_for(connection.finished.wait(), REQUEST_TIMEOUT)
    return Throughput(
        round_trips_per_s=done / elapsed,
        places_per_s=places / elapsed,
        errors=counts.errors,
        first_error=counts.first_error,
        cpu=cpu,
    )


# ---------------------------------------------------------------------- open-loop latency


@dataclass
class Latency:
    sent: int
    rate: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    send_lag_p99_ms: float
    errors: int
    first_error: str | None
    cpu: CpuShares


async def measure_latency(
    bench: Bench, clients: Sequence[RpcClient], rate: int, warmup: float, seconds: float
) -> Latency:
    """Send place/cancel requests at a fixed rate whatever the replies do; time each one.

    Each request is timed from when it was due, so a stalled sender counts against the
    latency (no coordinated omission). A connection cancels its oldest acknowledged order
    when it has one, and places a new one otherwise, so the book stays small.
    """
    counts = Counts()
    latencies: list[float] = []
    send_lags: list[float] = []
    acknowledged: list[deque[int]] = [deque() for _ in clients]
    outstanding = 0
    all_replied = asyncio.Event()
    start = time.perf_counter() + 0.05
    measured_from = start + warmup
    end = measured_from + seconds

    def on_reply(index: int, due: float, placing: bool) -> ReplyHandler:
        def handle(data: dict[str, Any], now: float) -> None:
            nonlocal outstanding
            outstanding -= 1
            if due >= measured_from:
                latencies.append(now - due)
            if "error" in data:
                counts.error(data)
            elif placing:
                acknowledged[index].append(data["result"]["order_id"])
            if outstanding == 0 and time.perf_counter() >= end:
                all_replied.set()

        return handle

    meter: CpuMeter | None = None
    clock = time.perf_counter
    sent = 0
    while True:
        now = clock()
        if meter is None and now >= measured_from:
            meter = CpuMeter(bench.server)
        if now >= end:
            break
        due_count = int((now - start) * rate) + 1 if now >= start else 0
        while sent < due_count:
            due = start + sent / rate
            index = sent % len(clients)
            client = clients[index]
            waiting = acknowledged[index]
            outstanding += 1
            if waiting:
                handler = on_reply(index, due, placing=False)
                await client.send("order.cancel", {"order_id": waiting.popleft()}, handler)
            else:
                side = ("buy", "sell")[(sent // len(clients)) % 2]
                await client.send("order.place", place_params(side), on_reply(index, due, True))
            if due >= measured_from:
                send_lags.append(clock() - due)
            sent += 1
        await asyncio.sleep(pause_s(start + sent / rate - clock()))
    assert meter is not None
    cpu = meter.shares()
    if outstanding:
        await asyncio.wait_for(all_replied.wait(), REQUEST_TIMEOUT)
    # Leave the book as it was: cancel what the run left resting.
    for client in clients:
        await client.call("order.cancel_all", {"symbol": SYMBOL})
    latencies.sort()
    send_lags.sort()
    return Latency(
        sent=sent,
        rate=len(latencies) / seconds,
        p50_ms=percentile_ms(latencies, 0.50),
        p99_ms=percentile_ms(latencies, 0.99),
        p999_ms=percentile_ms(latencies, 0.999),
        max_ms=percentile_ms(latencies, 1.0),
        send_lag_p99_ms=percentile_ms(send_lags, 0.99),
        errors=counts.errors,
        first_error=counts.first_error,
        cpu=cpu,
    )


# ---------------------------------------------------------------------- market-data deliveries


class Subscriber(asyncio.Protocol):
    """A connection on trades.BTCUSDT that only counts what arrives (and keeps the last).

    A raw WebSocket client (RFC 6455) on an asyncio protocol rather than aiohttp's: the
    subscribers share the machine with the server, and reading a thousand sockets through
    aiohttp's message objects costs the client more CPU than serving them costs the server.
    Every text frame is still read off the socket and counted as it arrives; the last one is
    kept whole and decoded at the end, where its seq must equal the frames counted.
    """

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.count = 0
        self.last = b""
        self.closed = False
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._key = base64.b64encode(secrets.token_bytes(16)).decode()
        self._upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._replied: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._handshake = True
        self._lost = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for future in (self._upgraded, self._replied):
            if not future.done():
                future.set_exception(ConnectionError("the server closed the connection"))
        if not self._lost.done():
            self._lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if self._handshake:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).decode("latin-1")
            del buffer[: end + 4]
            self._handshake = False
            accept = base64.b64encode(
                hashlib.sha1((self._key + WEBSOCKET_GUID).encode()).digest()
            ).decode()
            if not head.startswith("HTTP/1.1 101") or accept not in head:
                self._upgraded.set_exception(ConnectionError(f"upgrade refused: {head!r}"))
                return
            self._upgraded.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buffer = self._buffer
        size = len(buffer)
        offset = 0
        texts = 0
        last_start = last_end = -1
        while size - offset >= 2:
            opcode = buffer[offset] & 0x0F
            length = buffer[offset + 1] & 0x7F
            start = offset + 2
            if length == 126:
                if size - offset < 4:
                    break
                length = int.from_bytes(buffer[offset + 2 : offset + 4], "big")
                start = offset + 4
            elif length == 127:
                if size - offset < 10:
                    break
                length = int.from_bytes(buffer[offset + 2 : offset + 10], "big")
                start = offset + 10
            end = start + length
            if end > size:
                break
            if opcode == 0x1:
                if not self._replied.done():
                    # The first text frame is the reply to subscribe; the rest are deliveries.
                    self._replied.set_result(bytes(buffer[start:end]))
                else:
                    texts += 1
                    last_start, last_end = start, end
            elif opcode == 0x9:
                self._send(0xA, bytes(buffer[start:end]))
            elif opcode == 0x8:
                self._send(0x8, bytes(buffer[start : start + 2]))
                assert self.transport is not None
                self.transport.close()
            offset = end
        if texts:
            self.count += texts
            tally = self.tally
            tally.received += texts
            if tally.held is not None and tally.received >= tally.resume_at:
                tally.resume()
            self.last = bytes(buffer[last_start:last_end])
        if offset:
            del buffer[:offset]

    def _send(self, opcode: int, payload: bytes) -> None:
        """Write one final frame, masked as a client's frames must be."""
        assert self.transport is not None
        mask = secrets.token_bytes(4)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        if len(payload) < 126:
            header = bytes((0x80 | opcode, 0x80 | len(payload)))
        else:
            header = bytes((0x80 | opcode, 0x80 | 126)) + len(payload).to_bytes(2, "big")
        self.transport.write(header + mask + masked)

    # -- the benchmark's side

    async def open(self, url: str) -> None:
        """Connect, upgrade to WebSocket and subscribe; return once subscribed."""
        parsed = urllib.parse.urlsplit(url)
        assert parsed.hostname is not None
        assert parsed.port is not None
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self, parsed.hostname, parsed.port)
        assert self.transport is not None
        self.transport.write(
            (
                f"GET {parsed.path} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {self._key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await asyncio.wait_for(self._upgraded, REQUEST_TIMEOUT)
        request = {"jsonrpc": "2.0", "id": 1, "method": "subscribe"}
        request["params"] = {"channels": [f"trades.{SYMBOL}"]}
        self._send(0x1, json.dumps(request).encode())
        reply = await asyncio.wait_for(self._replied, REQUEST_TIMEOUT)
        if "result" not in json.loads(reply):
            raise SystemExit(f"subscribe failed: {reply!r}")

    async def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._send(0x8, (1000).to_bytes(2, "big"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._lost), REQUEST_TIMEOUT)
            self.transport.close()

    def check(self) -> tuple[int, int | None]:
        """Return (seq gap, last trade id): seq must equal the messages counted."""
        if not self.last:
            return 0, None
        params = json.loads(self.last)["params"]
        return params["seq"] - self.count, params["data"]["trade_id"]


@dataclass
class Tally:
    received: int = 0
    trades: int = 0
    last_trade_id: int | None = None
    resume_at: int = 0
    """The deliveries received at which a held-back driver goes on."""
    held: asyncio.Future[None] | None = None
    """Set while drivers hold back; resolved by the subscribers once `resume_at` is reached."""

    def hold(self, resume_at: int) -> asyncio.Future[None]:
        """Return the future the drivers wait on until `resume_at` deliveries have arrived."""
        if self.held is None:
            self.held = asyncio.get_running_loop().create_future()
            self.resume_at = resume_at
        else:
            self.resume_at = min(self.resume_at, resume_at)
        return self.held

    def resume(self) -> None:
        held, self.held = self.held, None
        if held is not None and not held.done():
            held.set_result(None)


@dataclass
class Deliveries:
    subscribers: int
    per_s: float
    trades_per_s: float
    complete: bool
    detail: str
    cpu: CpuShares
    hold_backs: int


async def open_subscribers(bench: Bench, tally: Tally, count: int) -> list[Subscriber]:
    async def open_one() -> Subscriber:
        subscriber = Subscriber(tally)
        await subscriber.open(bench.server.url)
        return subscriber

    return await bounded([open_one] * count, CONNECT_CONCURRENCY)


async def setup_driver(bench: Bench) -> RpcClient:
    """Rest a large bid and ask inside the market maker's quotes; return the taker."""
    maker = await bench.trader("bench-driver-maker")
    for side, price in (("buy", DRIVER_BID), ("sell", DRIVER_ASK)):
        params = {"symbol": SYMBOL, "side": side, "type": "limit", "price": price}
        for _ in range(DRIVER_MAKER_ORDERS):
            await maker.call("order.place", {**params, "qty": DRIVER_MAKER_QTY})
    return await bench.trader("bench-driver-taker")


async def measure_deliveries(
    bench: Bench,
    taker: RpcClient,
    subscribers: Sequence[Subscriber],
    tally: Tally,
    warmup: float,
    seconds: float,
) -> Deliveries:
    """Trade while the subscribers count; wait until every trade reached every subscriber."""
    count = len(subscribers)
    base_trades = tally.trades
    base_received = tally.received
    stop = False
    errors = Counts()
    in_flight = hold_backs = 0

    async def drive(worker: int) -> None:
        nonlocal in_flight, hold_backs
        sides = itertools.cycle(("buy", "sell") if worker % 2 == 0 else ("sell", "buy"))
        while not stop:
            # Hold back while subscribers lag: an outbox over its limit closes the socket.
            # An order in flight may have traded and been published already: count it.
            expected = base_received + (tally.trades - base_trades + in_flight) * count
            if expected - tally.received > MAX_LAG_TRADES * count:
                hold_backs += 1
                # Go on once they are within half the allowance: room for many orders, not
                # one per wake-up of every driver.
                held = tally.hold(expected - MAX_LAG_TRADES // 2 * count)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(held), HOLD_BACK_CHECK_S)
                continue
            params = {"symbol": SYMBOL, "side": next(sides), "type": "market", "qty": ORDER_QTY}
            in_flight += 1
            try:
                result = await taker.call("order.place", params)
            except RpcError as error:
                errors.error({"error": str(error)})
                continue
            finally:
                in_flight -= 1
            if result["filled_qty"] != ORDER_QTY:
                errors.error({"error": f"a driver order was not filled: {result}"})
                continue
            tally.trades += 1

    drivers = [asyncio.create_task(drive(worker)) for worker in range(DRIVER_IN_FLIGHT)]
    await asyncio.sleep(warmup)
    meter = CpuMeter(bench.server)
    start_time, start_received, start_trades = time.perf_counter(), tally.received, tally.trades
    start_hold_backs = hold_backs
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - start_time
    received, trades = tally.received - start_received, tally.trades - start_trades
    cpu = meter.shares()
    held_back = hold_backs - start_hold_backs
    stop = True
    await asyncio.gather(*drivers)
    tally.resume()
    trades_in_phase = tally.trades - base_trades
    goal = base_received + trades_in_phase * count
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(REQUEST_TIMEOUT):
            while tally.received < goal:
                await asyncio.sleep(0.01)

    last_trade_ids = set()
    gaps = closed = 0
    for subscriber in subscribers:
        gap, trade_id = subscriber.check()
        gaps += gap != 0
        closed += subscriber.closed
        last_trade_ids.add(trade_id)
    complete = (
        tally.received == goal
        and gaps == 0
        and closed == 0
        and len(last_trade_ids) == 1
        and errors.errors == 0
    )
    detail = (
        f"{trades_in_phase:,} trades, {tally.received - base_received:,} of "
        f"{trades_in_phase * count:,} deliveries, {gaps} subscribers with seq gaps, "
        f"{closed} closed, {len(last_trade_ids)} distinct last trade ids, "
        f"{errors.errors} driver errors {errors.first_error or ''}"
    ).strip()
    return Deliveries(
        subscribers=count,
        per_s=received / elapsed,
        trades_per_s=trades / elapsed,
        complete=complete,
        detail=detail,
        cpu=cpu,
        hold_backs=held_back,
    )


# ---------------------------------------------------------------------- the run


def raise_open_file_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


async def order_figures(
    bench: Bench, durations: Durations, rate: int
) -> tuple[dict[str, Any], int]:
    """Run the round-trip phases; return their figures and the errors seen."""
    clients = await bench.traders("bench", CONNECTIONS)

    # One connection's requests are served one after another: a window on one connection
    # only hides the client's part of each round trip, while more connections overlap.
    scaling: dict[str, int] = {}
    for connections, window in ((1, 1), (1, WINDOW), (CONNECTIONS, 1)):
        result = await measure_throughput(
            bench, clients[:connections], window, durations.warmup, durations.scaling
        )
        scaling[f"{connections}x{window}"] = round(result.round_trips_per_s)
        print(
            f"{connections:>2} connection(s), window {window:>2}: "
            f"{result.round_trips_per_s:>7,.0f} order round trips/s; " + result.cpu.text()
        )

    throughput = await measure_throughput(
        bench, clients, WINDOW, durations.warmup, durations.throughput
    )
    server_us = throughput.cpu.server / throughput.round_trips_per_s * 1e6
    print(
        f"{CONNECTIONS} connections, window {WINDOW}: "
        f"{throughput.round_trips_per_s:,.0f} order round trips/s "
        f"({throughput.places_per_s:,.0f} places and as many cancels) over "
        f"{durations.throughput:.0f} s, {throughput.errors} errors; "
        + throughput.cpu.text()
        + f"; server {server_us:.0f} us CPU per round trip"
    )
    if throughput.first_error:
        print(f"  first error: {throughput.first_error}")

    latency = await measure_latency(bench, clients, rate, durations.warmup, durations.latency)
    print(
        f"open loop at {rate:,} order requests/s over {CONNECTIONS} connections "
        f"({latency.rate:,.0f}/s measured): round trip p50 {latency.p50_ms} ms, "
        f"p99 {latency.p99_ms} ms, p99.9 {latency.p999_ms} ms, max {latency.max_ms} ms "
        f"(send lag p99 {latency.send_lag_p99_ms} ms), {latency.errors} errors; "
        + latency.cpu.text()
    )
    if latency.first_error:
        print(f"  first error: {latency.first_error}")

    figures = {
        "order_round_trips_per_s": round(throughput.round_trips_per_s),
        "rtt_p50_ms": latency.p50_ms,
        "rtt_p99_ms": latency.p99_ms,
        "order_places_per_s": round(throughput.places_per_s),
        "round_trips_by_connections_x_window": scaling,
        "server_us_per_round_trip": round(server_us, 1),
        "server_loop_us_per_round_trip": round(
            throughput.cpu.server_loop * 1e6 / max(throughput.round_trips_per_s, 1), 1
        ),
        "rtt_p999_ms": latency.p999_ms,
        "rtt_max_ms": latency.max_ms,
        "latency_requests_per_s": rate,
        "cpu_round_trips": throughput.cpu.figures(),
        "cpu_latency": latency.cpu.figures(),
    }
    return figures, throughput.errors + latency.errors


async def delivery_figures(bench: Bench, durations: Durations) -> dict[str, Any]:
    """Run the market-data phases, 100 then 1,000 subscribers; return their figures."""
    taker = await setup_driver(bench)
    tally = Tally()
    subscribers: list[Subscriber] = []
    figures: dict[str, Any] = {}
    complete = True
    for count in SUBSCRIBERS:
        opening = time.perf_counter()
        subscribers += await open_subscribers(bench, tally, count - len(subscribers))
        opened_in = time.perf_counter() - opening
        result = await measure_deliveries(
            bench, taker, subscribers, tally, durations.warmup, durations.deliveries
        )
        server_us = result.cpu.server / result.per_s * 1e6
        print(
            f"{count:>5} subscribers on trades.{SYMBOL} (opened in {opened_in:.1f} s): "
            f"{result.per_s:,.0f} deliveries/s ({result.trades_per_s:,.0f} trades/s, "
            f"{DRIVER_IN_FLIGHT} orders in flight, held back {result.hold_backs} times); "
            + result.cpu.text()
            + f"; server {server_us:.1f} us CPU per delivery"
        )
        print(f"  {'complete' if result.complete else 'INCOMPLETE'}: {result.detail}")
        complete = complete and result.complete
        figures[f"deliveries_per_s_{count}"] = round(result.per_s)
        figures[f"trades_per_s_{count}"] = round(result.trades_per_s)
        figures[f"server_us_per_delivery_{count}"] = round(server_us, 1)
        figures[f"cpu_deliveries_{count}"] = result.cpu.figures()
        figures[f"driver_hold_backs_{count}"] = result.hold_backs
    await bounded([subscriber.close for subscriber in subscribers], CONNECT_CONCURRENCY)
    figures["deliveries_complete"] = complete
    figures["driver_orders_in_flight"] = DRIVER_IN_FLIGHT
    return figures


async def run(args: argparse.Namespace, config: Path) -> dict[str, Any]:
    durations = QUICK if args.quick else FULL
    server = await ServerProcess.start(config, args.profile, args.event_loop, args.compiled)
    profiled = " (under cProfile)" if args.profile else ""
    print(f"server pid {server.process.pid} at {server.url}{profiled}")
    print(f"server modules: {server.modules.strip()}")
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    bench = Bench(server, session)
    orders: dict[str, Any] = {}
    deliveries: dict[str, Any] = {}
    errors = 0
    try:
        if args.only in (None, "orders"):
            orders, errors = await order_figures(bench, durations, args.rate)
        if args.only in (None, "deliveries"):
            # The subscribers get a loop of their own, in a thread, while this one waits.
            deliveries = await asyncio.to_thread(
                eventloop.run, deliveries_on_own_loop(server, durations), args.subscriber_loop
            )
    finally:
        await bench.close()
        await session.close()
        code = await server.stop()
        print(f"server stopped (exit code {code})")
        if code not in (0, None):
            print("\n".join(server.output))
    # The five headline figures first, then the rest.
    figures = {key: orders[key] for key in list(orders)[:3]}
    figures |= {key: deliveries[key] for key in DELIVERY_KEYS if key in deliveries}
    figures |= orders | deliveries
    figures["errors"] = errors
    figures["server_modules"] = "mypyc" if server.modules.startswith("compiled") else "interpreted"
    return figures


async def deliveries_on_own_loop(server: ServerProcess, durations: Durations) -> dict[str, Any]:
    """Run the delivery phases with their own HTTP session, on the loop running this."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        bench = Bench(server, session)
        try:
            return await delivery_figures(bench, durations)
        finally:
            await bench.close()


def print_profile(path: Path) -> None:
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(PROFILE_TOP)
    stats.sort_stats("cumulative").print_stats(PROFILE_TOP)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs, under 60 s in all")
    parser.add_argument("--rate", type=int, default=LATENCY_RATE, help="latency run requests/s")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=BENCH_RATE_LIMIT,
        help=f"the server's per-connection requests/s (default {BENCH_RATE_LIMIT:,})",
    )
    parser.add_argument("--profile", type=Path, help="run the server under cProfile into FILE")
    parser.add_argument(
        "--only", choices=("orders", "deliveries"), help="run one half (to profile it alone)"
    )
    parser.add_argument(
        "--event-loop",
        choices=eventloop.LOOP_CHOICES,
        default="auto",
        help="the server's event loop (default: auto, uvloop if installed, as paperex serve)",
    )
    parser.add_argument(
        "--client-loop",
        choices=eventloop.LOOP_CHOICES,
        default="asyncio",
        help="the order clients' event loop (default: asyncio, whose timers keep the "
        "open-loop sender on schedule; uvloop's count whole milliseconds)",
    )
    parser.add_argument(
        "--subscriber-loop",
        choices=eventloop.LOOP_CHOICES,
        default="auto",
        help="the market-data subscribers' event loop, in a thread of their own (default: "
        "auto, uvloop if installed: a thousand sockets cost the client less on it)",
    )
    parser.add_argument(
        "--compiled",
        choices=("auto", "on", "off"),
        default="auto",
        help="the server's --compiled (default: auto, as paperex serve: the mypyc build if "
        "paperex compile made one of these sources)",
    )
    parser.add_argument(
        "--journal",
        action="store_true",
        help="also run the order phases with the journal off, and print both side by side",
    )
    args = parser.parse_args(argv)

    began = time.perf_counter()
    load = os.getloadavg()[0]
    files = raise_open_file_limit(4 * max(SUBSCRIBERS) + 256)
    print(f"load average before: {load:.2f} on {os.cpu_count()} cpus; open-file limit {files:,}")
    print(f"server config: {CONFIG.relative_to(ROOT)} with rate_limit_per_s = {args.rate_limit:,}")
    directory = Path(tempfile.mkdtemp(prefix="bench_ws_"))
    try:
        unjournalled: dict[str, Any] = {}
        if args.journal:
            print("\n-- orders with the journal off --")
            off = argparse.Namespace(**{**vars(args), "only": "orders", "profile": None})
            unjournalled = eventloop.run(
                run(off, write_config(directory, args.rate_limit, journal=False)), args.client_loop
            )
            print("\n-- the server as shipped: journal on, synchronous = normal --")
        figures = eventloop.run(
            run(args, write_config(directory, args.rate_limit)), args.client_loop
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if unjournalled and "order_round_trips_per_s" in figures:
        on, off_rate = figures["order_round_trips_per_s"], unjournalled["order_round_trips_per_s"]
        ratio = on / off_rate if off_rate else 0.0
        print(
            f"journal on vs off: {on:,} vs {off_rate:,} order round trips/s ({ratio:.0%}); "
            f"p99 {figures['rtt_p99_ms']} vs {unjournalled['rtt_p99_ms']} ms"
        )
        figures["order_round_trips_per_s_no_journal"] = off_rate
        figures["rtt_p99_ms_no_journal"] = unjournalled["rtt_p99_ms"]
        figures["journal_throughput_ratio"] = round(ratio, 3)

    goals = [
        ("order round trips/s", "order_round_trips_per_s", GOAL_ROUND_TRIPS_PER_S, ">="),
        ("round-trip p99 ms", "rtt_p99_ms", GOAL_RTT_P99_MS, "<"),
        ("deliveries/s to 1,000", "deliveries_per_s_1000", GOAL_DELIVERIES_PER_S_1000, ">="),
    ]
    for name, key, goal, sense in goals:
        if key in figures:
            value = figures[key]
            met = value >= goal if sense == ">=" else value < goal
            print(f"goal {name} {sense} {goal:,}: {value:,} ({'met' if met else 'NOT met'})")
    if args.profile:
        print(f"\ncProfile of the server (slowed by the profiler), top {PROFILE_TOP}:")
        print_profile(args.profile)
    figures["load_average"] = round(load, 2)
    figures["seconds"] = round(time.perf_counter() - began, 1)
    figures["quick"] = args.quick
    figures["event_loop"] = args.event_loop
    figures["client_loop"] = args.client_loop
    figures["subscriber_loop"] = args.subscriber_loop
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
