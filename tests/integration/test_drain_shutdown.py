"""``legend serve`` on SIGINT/SIGTERM drains: clients closed one by one with 1001 and the reconnect hint over
``server.drain_seconds``; a Ctrl-C meanwhile cuts the drain short (tests/cluster/test_drain.py has the deploy)."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
import websockets

from legend.services.streaming.drain import reconnect_hint
from tests.support.server import LegendServer
from tests.support.wsclient import Client, connect


async def closed(client: Client, timeout: float) -> tuple[int | None, str | None, float]:
    """Read until the server closes: (code, reason, when)."""
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await client.recv(timeout=timeout)
    return client.connection.close_code, client.connection.close_reason, time.monotonic()


async def test_the_drain_spreads_the_closes_and_a_ctrl_c_cuts_it_short() -> None:
    # four clients over 20 s: closes due at 0, 5, 10 and 15 s
    srv = LegendServer({"server": {"drain_seconds": 20, "graceful_shutdown_seconds": 30}}).start()
    try:
        clients = [await connect(srv.ws_url, user_id=f"c{i}") for i in range(4)]
        assert srv.process is not None
        signalled = time.monotonic()
        srv.process.send_signal(signal.SIGTERM)
        ends = [asyncio.create_task(closed(client, 60)) for client in clients]
        done, _ = await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED, timeout=30)
        code, reason, _ = done.pop().result()
        assert code == 1001 and reason is not None and reconnect_hint(reason) == 1000
        await asyncio.sleep(0.5)
        assert sum(end.done() for end in ends) == 1, "the others are due 5, 10 and 15 s later"
        srv.process.send_signal(signal.SIGINT)  # impatient: Ctrl-C (uvicorn's force exit)
        await asyncio.wait_for(asyncio.to_thread(srv.process.wait), 30)
        results = await asyncio.gather(*ends)
        assert max(at for _, _, at in results) - signalled < 10, "the drain was not cut short"
        assert "closing clients failed" not in srv.logs()
    finally:
        srv.close()
