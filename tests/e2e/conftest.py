from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.e2e.harness import Server, manual_config, running_server


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server(manual_config()) as running:
        yield running
