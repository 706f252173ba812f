"""Authentication, account isolation, and bad input that must leave the server unharmed."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.e2e.harness import Client, Server, signed_login

BUY_LIMIT = {"symbol": "BTCUSDT", "side": "buy", "type": "limit", "qty": "0.005", "price": "59000"}


@pytest.mark.asyncio
async def test_login_and_rights(server: Server) -> None:
    admin = await server.admin()
    keys = await admin.call("admin.create_account", {"name": "gina", "deposit": "100"})
    client = await server.connect()

    assert (await client.error("account.get"))["code"] == 5001
    assert (await client.error("admin.state"))["code"] == 5004
    assert (await client.error("subscribe", {"channels": ["account"]}))["code"] == 5001
    assert (await client.error("auth.admin", {"token": "wrong"}))["code"] == 5005
    bad = signed_login(keys, server.clock_ms)
    bad["signature"] = "0" * 64
    assert (await client.error("auth.login", bad))["code"] == 5002
    unknown = signed_login({**keys, "api_key": "nobody"}, server.clock_ms)
    assert (await client.error("auth.login", unknown))["code"] == 5002
    stale = signed_login(keys, server.clock_ms - 31_000)
    assert (await client.error("auth.login", stale))["code"] == 5003

    assert await client.call("auth.login", signed_login(keys, server.clock_ms)) == {
        "account_id": keys["account_id"]
    }
    account = await client.call("account.get")
    assert account["wallet_balance"] == "100.00000000"


@pytest.mark.asyncio
async def test_two_accounts_cannot_see_or_touch_each_other(server: Server) -> None:
    alice, _ = await server.trader("alice")
    mallory, _ = await server.trader("mallory")
    order = await alice.call("order.place", {**BUY_LIMIT, "client_order_id": "secret"})
    order_id = order["order_id"]

    assert (await mallory.error("order.get", {"order_id": order_id}))["code"] == 3002
    assert (await mallory.error("order.get", {"client_order_id": "secret"}))["code"] == 3002
    assert (await mallory.error("order.cancel", {"order_id": order_id}))["code"] == 3002
    assert (await mallory.error("order.amend", {"order_id": order_id, "qty": "0.001"}))[
        "code"
    ] == 3002
    assert (await mallory.call("order.cancel_all")) == {"canceled": []}
    assert await mallory.call("order.open") == []
    assert await mallory.call("account.fills") == []
    assert (await mallory.call("account.get"))["positions"] == []
    assert (await alice.call("order.get", {"order_id": order_id}))["status"] == "new"
    # Mallory's account stream saw its own deposit and nothing of Alice's order.
    seen = []
    queue = mallory.stream("account")
    while not queue.empty():
        seen.append(queue.get_nowait()["data"])
    assert all(item.get("order_id") != order_id for item in seen)


async def snapshot(admin: Client, client: Client) -> dict[str, object]:
    state = await admin.call("admin.state")
    for volatile in ("seq", "ts", "state_hash"):
        del state[volatile]
    return {
        "state": state,
        "account": await client.call("account.get"),
        "orders": await client.call("order.open"),
        "books": [await client.call("public.book", {"symbol": s}) for s in ("BTCUSDT", "ETHUSDT")],
        "accounts": await admin.call("admin.accounts"),
    }


@pytest.mark.asyncio
async def test_bad_input_gets_errors_and_changes_nothing(server: Server) -> None:
    admin = await server.admin()
    client, _ = await server.trader("henry")
    before = await snapshot(admin, client)

    raw_cases = [
        ("this is not json", -32700),
        ("[1, 2, 3]", -32600),
        ('"a string"', -32600),
        ("42", -32600),
        ('{"jsonrpc": "2.0", "method": "public.time"}', -32600),
        ('{"jsonrpc": "2.0", "id": 1, "method": "public.time", "params": [1]}', -32602),
        ('{"jsonrpc": "2.0", "id": 2, "method": "order.place", "params": {"qty": NaN}}', -32700),
        ("x" * (1024 * 1024), 6002),
    ]
    for text, code in raw_cases:
        await client.send_raw(text)
        reply = await client.next_unmatched()
        assert reply["error"]["code"] == code, text[:80]

    cases: list[tuple[str, dict[str, object], int, str | None]] = [
        ("no.such.method", {}, -32601, None),
        ("order.place", {"side": "buy", "type": "market", "qty": "1"}, -32602, "symbol"),
        ("order.place", {**BUY_LIMIT, "qty": "0.0005"}, 1004, "qty"),
        ("order.place", {**BUY_LIMIT, "qty": "0.001"}, 1009, None),
        ("order.place", {**BUY_LIMIT, "qty": True}, -32602, "qty.str"),
        ("order.place", {**BUY_LIMIT, "side": "up"}, -32602, "side"),
        ("order.place", {**BUY_LIMIT, "qty": "-1"}, 1003, "qty"),
        ("order.place", {**BUY_LIMIT, "qty": "NaN"}, 1001, "qty"),
        ("order.place", {**BUY_LIMIT, "qty": "1e400"}, 1001, "qty"),
        ("order.place", {**BUY_LIMIT, "price": "59000.05"}, 1006, "price"),
        ("order.place", {**BUY_LIMIT, "symbol": "DOGEUSDT"}, 1002, "symbol"),
        ("order.place", {**BUY_LIMIT, "extra": 1}, -32602, "extra"),
        ("order.place", {**BUY_LIMIT, "qty": "100"}, 2001, None),
        ("order.cancel", {"order_id": 10**9}, 3002, None),
        ("position.adjust_margin", {"symbol": "BTCUSDT", "amount": "1.000000001"}, 1020, "amount"),
        ("subscribe", {"channels": ["book.NOPE"]}, -32602, "channels.0"),
        ("public.book", {"symbol": "BTCUSDT", "depth": "10"}, -32602, "depth"),
    ]
    for method, params, code, field in cases:
        error = await client.error(method, params)
        assert error["code"] == code, (method, params, error)
        if field is not None:
            assert error["data"]["field"] == field, (method, params, error)
    # A JSON number too large for a float is read exactly, and refused as a number.
    await client.send_raw(
        json.dumps(
            {"jsonrpc": "2.0", "id": "big", "method": "order.place", "params": BUY_LIMIT}
        ).replace('"0.005"', "1e400")
    )
    assert (await client.next_unmatched())["error"]["code"] == 1001

    # Refusals the core makes (min notional, margin) take a seq, which the state hash counts;
    # everything else is as it was.
    assert await snapshot(admin, client) == before

    # The same connection still trades.
    order = await client.call(
        "order.place", {"symbol": "BTCUSDT", "side": "buy", "type": "market", "qty": "0.002"}
    )
    assert order["status"] == "filled"


@pytest.mark.asyncio
async def test_a_flood_is_rate_limited_and_others_trade_on(server: Server) -> None:
    flooder = await server.connect()
    requests = [
        json.dumps({"jsonrpc": "2.0", "id": n, "method": "public.time"}) for n in range(600)
    ]
    for text in requests:
        await flooder.send_raw(text)
    replies = [await flooder.next_unmatched() for _ in range(600)]
    limited = [r for r in replies if "error" in r]
    assert limited, "600 requests at once must exceed 200/s"
    assert {r["error"]["code"] for r in limited} == {6001}
    assert "retry_after_ms" in limited[0]["error"]["data"]

    client, _ = await server.trader("ivan")
    order = await asyncio.wait_for(
        client.call(
            "order.place", {"symbol": "BTCUSDT", "side": "sell", "type": "market", "qty": "0.002"}
        ),
        5,
    )
    assert order["status"] == "filled"
