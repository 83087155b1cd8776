"""Connection limits over a real server: per user, per client address and per-address connection rate;
a connection over a limit is accepted, then closed with 4429 and a reason, and counted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from tests.integration.conftest import QUIET
from tests.support.server import LegendServer, merge
from tests.support.wsclient import Client, connect, source


@pytest.fixture(scope="module")
def limited() -> Iterator[LegendServer]:
    limits = {"max_connections_per_user": 3, "max_connections_per_ip": 6, "connect_burst_per_ip": 100}
    with LegendServer(merge(QUIET, {"realtime": limits})) as server:
        yield server


async def refused(url: str, **kwargs: Any) -> tuple[int, str]:
    """Open a connection expected to be refused: its close code and reason (``kwargs`` as
    ``websockets.connect`` takes them: ``local_addr``, ``additional_headers``)."""
    async with websockets.connect(url, open_timeout=10, **kwargs) as ws:
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


async def test_the_address_is_the_forwarded_one_from_trusted_proxies_only() -> None:
    """``server.forwarded_allow_ips`` (a network here): a listed proxy's X-Forwarded-For names the client,
    the right-most address not in the list when there are several hops; anyone else is its own address
    whatever it sends."""
    config = {
        "server": {"log_level": "info", "forwarded_allow_ips": ["127.0.0.8/29"]},  # .8 to .15
        "realtime": {"max_connections_per_ip": 1, "connect_burst_per_ip": 100},
    }
    server = LegendServer(merge(QUIET, config)).start()
    url = server.ws_url
    try:
        held = [await connect(url, user_id="a", **source("127.0.0.9", "203.0.113.7"))]
        # the same client through another proxy of the list: one address, over its limit
        code, reason = await refused(f"{url}?user_id=b", **source("127.0.0.12", "203.0.113.7"))
        assert code == 4429 and "address" in reason
        held.append(await connect(url, user_id="c", **source("127.0.0.12", "203.0.113.8")))
        # several hops: the last proxy (listed) appended what it saw; the client forged the first entry
        held.append(
            await connect(url, user_id="d", **source("127.0.0.9", "198.51.100.1, 203.0.113.9, 127.0.0.11"))
        )
        assert (await refused(f"{url}?user_id=e", **source("127.0.0.9", "203.0.113.9")))[0] == 4429
        held.append(await connect(url, user_id="f", **source("127.0.0.9", "198.51.100.1")))
        # a peer not in the list cannot choose its address by sending the header
        held.append(await connect(url, user_id="g", **source("127.0.0.2", "203.0.113.20")))
        code, reason = await refused(f"{url}?user_id=h", **source("127.0.0.2", "203.0.113.21"))
        assert code == 4429 and "address" in reason
        assert server.stats()["refused_address_limit"] == 3
        logs = server.logs()
        assert '203.0.113.7:0 - "WebSocket /api/ws?user_id=a" [accepted]' in logs
        assert "refused a connection of b from 203.0.113.7" in logs
        assert "127.0.0.2:" in logs and "203.0.113.20" not in logs and "203.0.113.21" not in logs
        assert "127.0.0.9:" not in logs and "127.0.0.12:" not in logs  # never the proxy's address
        # invalid UTF-8 in a text frame: the one line about it names the client too
        bad = await connect(url, user_id="i", **source("127.0.0.9", "203.0.113.30"))
        await bad.connection.send(b"\xc3\x28", text=True)
        with pytest.raises(websockets.ConnectionClosed):
            await bad.recv(timeout=10)
        assert bad.connection.close_code == 1007

        def utf8_line() -> str | None:
            return next((line for line in server.logs().splitlines() if "(1007)" in line), None)

        deadline = time.monotonic() + 10
        while utf8_line() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert "203.0.113.30" in (utf8_line() or ""), server.logs()[-2000:]
        for client in held:
            await client.close()
    finally:
        server.close()
