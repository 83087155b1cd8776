"""Peers that stop reading: closed for being slow, and really dropped (socket, memory, descriptor), while
the clients that read get everything, in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import QUIET
from tests.support.rawsocket import SilentPeer, established, lingering, open_sockets
from tests.support.server import LegendServer, merge
from tests.support.wsclient import connect

ITEMS = 300  # news items of ~2.6 KB: 780 KB to every peer, far more than a stalled 64 KB socket takes


@pytest.fixture
def strict_server() -> Iterator[LegendServer]:
    config = merge(
        QUIET,
        {
            "realtime": {
                "max_pending_messages": 50,
                "close_timeout": 1.0,
                "cleanup_interval": 0.5,
                "slow_consumer_timeout": 2.0,
            }
        },
    )
    config["server"] = {**config.get("server", {}), "ws_send_buffer": 65536}
    server = LegendServer(config).start()
    try:
        yield server
    finally:
        server.close()


async def test_non_reading_peers_are_dropped_within_close_timeout_and_others_get_everything(
    strict_server: LegendServer,
) -> None:
    server = strict_server
    assert server.process is not None
    sockets_before = open_sockets(server.process.pid)
    silent = [SilentPeer(server.port, f"/api/ws?user_id=silent{i}") for i in range(5)]
    for peer in silent:
        peer.send({"type": "subscribe", "channel": "news"})
    reader = await connect(server.ws_url, user_id="reader")
    await reader.subscribe("news")
    await asyncio.sleep(0.5)
    ports = {peer.local_port for peer in silent}
    assert established(server.port, ports) == 5
    summary = "s" * 2000
    async with httpx.AsyncClient(base_url=server.url, headers=server.admin, timeout=30) as http:

        async def publish(i: int) -> None:
            item = {"id": f"item-{i}", "headline": f"{i:05d} headline", "summary": summary}
            response = await http.post("/api/news/broadcast", json=item)
            assert response.status_code == 200, response.text

        reading = asyncio.create_task(reader.collect("news", ITEMS, timeout=90))  # reads as it comes
        for start in range(0, ITEMS, 20):
            await asyncio.gather(*(publish(i) for i in range(start, start + 20)))
        got = await reading
        assert sorted(int(m["headline"][:5]) for m in got) == list(range(ITEMS))  # nothing lost
        assert [m["seq"] for m in got] == sorted(m["seq"] for m in got)  # in order
        deadline = time.monotonic() + 10
        while established(server.port, ports) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        stats = (await http.get("/api/ws/stats")).json()
        assert established(server.port, ports) == 0, stats  # every silent peer's socket is gone
        assert not lingering(server.port, ports)  # reset, not left to drain in the kernel
    assert stats["slow_consumers_closed"] == 5
    assert stats["connections_aborted"] == 5
    assert stats["active_connections"] == 1
    deadline = time.monotonic() + 5  # the publisher's keep-alive connections close too
    while open_sockets(server.process.pid) > sockets_before + 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert open_sockets(server.process.pid) <= sockets_before + 1  # the reader's: the peers' are closed
    await reader.close()
    for peer in silent:
        peer.close()
