"""Requests in flight: started at once in order, resumed by their futures, bounded."""

from __future__ import annotations

import asyncio

import pytest

from exchange.api.ws import InFlight

TIMEOUT = 2.0


@pytest.mark.asyncio
async def test_requests_start_at_once_in_order_and_finish_when_their_futures_do() -> None:
    loop = asyncio.get_running_loop()
    requests = InFlight(limit=8)
    futures = [loop.create_future() for _ in range(3)]
    log: list[str] = []

    async def request(index: int) -> None:
        log.append(f"start {index}")
        value = await futures[index]
        await asyncio.sleep(0)
        log.append(f"end {index} {value}")

    for index in range(3):
        requests.start(request(index))
    # Each ran up to its first await before start returned.
    assert log == ["start 0", "start 1", "start 2"]
    assert requests.count == 3
    futures[2].set_result("c")
    futures[0].set_result("a")
    futures[1].set_result("b")
    await asyncio.wait_for(requests.drained(), TIMEOUT)
    assert log[3:] == ["end 2 c", "end 0 a", "end 1 b"]
    assert requests.count == 0


@pytest.mark.asyncio
async def test_a_full_connection_waits_for_room() -> None:
    loop = asyncio.get_running_loop()
    requests = InFlight(limit=2)
    gate = loop.create_future()

    async def request() -> None:
        await gate

    requests.start(request())
    requests.start(request())
    assert requests.full
    room = asyncio.ensure_future(requests.room())
    await asyncio.sleep(0)
    assert not room.done()
    gate.set_result(None)
    await asyncio.wait_for(room, TIMEOUT)
    await asyncio.wait_for(requests.drained(), TIMEOUT)
    assert not requests.full


@pytest.mark.asyncio
async def test_an_exception_in_a_request_is_logged_not_raised() -> None:
    requests = InFlight(limit=2)

    async def broken() -> None:
        raise ValueError("a bug")

    requests.start(broken())
    assert requests.count == 0
