"""Connection limits over a real server: per user, per client address and per-address connection rate;
a connection over a limit is accepted, then closed with 4429 and a reason, and counted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import websockets

from tests.integration.conftest import QUIET
from tests.support.server import LegendServer, merge
from tests.support.wsclient import Client, connect


@pytest.fixture(scope="module")
def limited() -> Iterator[LegendServer]:
    limits = {"max_connections_per_user": 3, "max_connections_per_ip": 6, "connect_burst_per_ip": 100}
    server = LegendServer(merge(QUIET, {"realtime": limits})).start()
    try:
        yield server
    finally:
        server.close()


async def refused(url: str) -> tuple[int, str]:
    """Open a connection expected to be refused: its close code and reason."""
    async with websockets.connect(url, open_timeout=10) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code is not None
        return ws.close_code, ws.close_reason or ""


async def test_a_user_over_max_connections_is_closed_4429_and_may_come_back_later(
    limited: LegendServer,
) -> None:
    before = limited.stats()["refused_user_limit"]
    first = [await connect(limited.ws_url, user_id="busy") for _ in range(3)]
    code, reason = await refused(f"{limited.ws_url}?user_id=busy")
    assert code == 4429 and "at most 3" in reason and "user" in reason
    assert limited.stats()["refused_user_limit"] == before + 1
    await first[0].close()
    await asyncio.sleep(0.3)  # the release is recorded
    again = await connect(limited.ws_url, user_id="busy")  # room again
    await again.send({"type": "ping"})
    await again.expect("pong")
    for client in (*first[1:], again):
        await client.close()


async def test_an_address_over_max_connections_is_closed_4429(limited: LegendServer) -> None:
    await asyncio.sleep(0.3)
    clients: list[Client] = [await connect(limited.ws_url, user_id=f"ip{i}") for i in range(6)]
    code, reason = await refused(f"{limited.ws_url}?user_id=ip6")
    assert code == 4429 and "address" in reason and "at most 6" in reason
    assert limited.stats()["refused_address_limit"] >= 1
    for client in clients:
        await client.close()


async def test_a_reconnect_loop_is_slowed_down_by_the_connection_rate() -> None:
    rate = {"connect_rate_per_ip": 1, "connect_burst_per_ip": 4, "max_connections_per_ip": 100}
    server = LegendServer(merge(QUIET, {"realtime": rate})).start()
    try:
        codes = []
        for i in range(8):  # a client reconnecting as fast as it can
            async with websockets.connect(f"{server.ws_url}?user_id=loop{i}", open_timeout=10) as ws:
                try:
                    first = await asyncio.wait_for(ws.recv(), 5)
                    codes.append("connected" if '"connection"' in str(first) else "?")
                except websockets.ConnectionClosed:
                    codes.append(ws.close_code)
        assert codes[:4] == ["connected"] * 4  # the burst
        assert codes.count(4429) >= 3  # then about one a second
        assert server.stats()["refused_connect_rate"] == codes.count(4429)
    finally:
        server.close()
