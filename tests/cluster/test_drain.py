"""A deploy: instance A gets SIGTERM while 300 traders of one office (one NAT address) are connected to it.

A drains (refuses newcomers with 1001, /ready 503, closes its clients one by one over server.drain_seconds
with a reconnect hint); the traders come back to instance B following the documented backoff (the hint,
then the JS client's equal-jitter backoff) and resume with ``since``. B has the default connection limits
(10 new connections a second per address, burst 50): none of the 300 is refused with 4429, and each one's
pattern stream is gap-free. Measured against the code before the drain (all closed at once, no hint): 241
were refused at first; with the spread but without the announcement of the reconnects: 221.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets

from legend.services.streaming.drain import reconnect_hint
from tests.cluster.conftest import pattern, until
from tests.support.redis_server import RedisServer
from tests.support.server import LegendServer

TRADERS = 300
DRAIN_SECONDS = 4.0
RECONNECT_DELAY_MS = 1000  # the JS client's defaults (docs/protocol.md, "The browser client")
BACKOFF_MULTIPLIER = 1.5
MAX_RECONNECT_DELAY_MS = 30000


def documented_backoff(attempt: int) -> float:
    """computeBackoff of web/static/js/client/connection.js, in seconds: equal jitter below the ceiling."""
    ceiling = min(MAX_RECONNECT_DELAY_MS, RECONNECT_DELAY_MS * BACKOFF_MULTIPLIER**attempt)
    return (ceiling / 2 + random.random() * ceiling / 2) / 1000


@dataclass
class Trader:
    """One client of the office: what it saw of the ``patterns`` stream and how its connections ended."""

    user: str
    seqs: list[int] = field(default_factory=list)
    closes: list[tuple[int, str]] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)  # close codes of connections refused right away
    resumed_on: str = ""
    recovered: bool | None = None

    @property
    def last(self) -> int | None:
        return self.seqs[-1] if self.seqs else None

    async def session(self, url: str, on_ready: asyncio.Event | None = None) -> bool:
        """One connection: subscribe (with ``since`` when resuming), then read until it closes. False
        when it was refused before its acknowledgement."""
        async with websockets.connect(f"{url}?user_id={self.user}", open_timeout=30) as ws:
            try:
                first = json.loads(await asyncio.wait_for(ws.recv(), 30))
            except websockets.ConnectionClosed:
                self.refused.append(ws.close_code or 0)
                return False
            assert first["type"] == "connection", first
            request: dict[str, Any] = {"type": "subscribe", "channel": "patterns"}
            if self.last is not None:
                request["since"] = self.last
                self.resumed_on = url
            await ws.send(json.dumps(request))
            try:
                async for raw in ws:
                    message = json.loads(raw)
                    if message["type"] == "history":
                        if "since" in request:
                            self.recovered = message.get("recovered")
                        self.seqs.extend(m["seq"] for m in message["messages"] if m["seq"] > (self.last or 0))
                        if on_ready is not None:
                            on_ready.set()
                    elif message["type"] == "pattern_alert":
                        self.seqs.append(message["seq"])
            except websockets.ConnectionClosed:
                pass
            self.closes.append((ws.close_code or 0, ws.close_reason or ""))
            return True

    async def run(self, first: str, then: str, ready: asyncio.Event, resumed: asyncio.Event) -> None:
        """Connected to ``first`` until it closes; then back, as the JS client does, to ``then`` (until
        cancelled). ``ready`` and ``resumed`` are set once each connection's history arrived."""
        await self.session(first, ready)
        code, reason = self.closes[-1]
        assert code == 1001, (code, reason)
        hint = (reconnect_hint(reason) or 0) / 1000
        attempt = 0
        while True:
            await asyncio.sleep(hint + documented_backoff(attempt))
            hint, attempt = 0, attempt + 1
            if await self.session(then, resumed):
                return


async def test_an_office_of_300_moves_from_a_draining_instance_without_4429_and_without_gaps() -> None:
    redis = RedisServer().start()
    common: dict[str, dict[str, Any]] = {
        "redis": {"url": redis.url, "lease_ttl": 2.0, "connect_timeout": 0.5, "socket_timeout": 1.0},
        "realtime": {"update_interval": 3600, "after_hours_interval": 3600},
        "server": {"drain_seconds": DRAIN_SECONDS, "graceful_shutdown_seconds": 15},
    }
    # A admits the office as fast as the test connects it (its own rate is not what is tested); B has
    # the defaults: 10 new connections a second per address, burst 50, 500 per address.
    a = LegendServer({**common, "realtime": {**common["realtime"], "connect_rate_per_ip": 0}})
    b = LegendServer(common)
    traders = [Trader(f"trader{i}") for i in range(TRADERS)]
    publishing = True
    runs: list[asyncio.Task[None]] = []
    try:
        await asyncio.gather(asyncio.to_thread(a.start, 60), asyncio.to_thread(b.start, 60))
        async with httpx.AsyncClient(timeout=10) as http:

            async def publish(i: int) -> int:
                response = await http.post(
                    f"{b.url}/api/ws/broadcast/pattern", json=pattern(i), headers=b.admin
                )
                response.raise_for_status()
                return int(response.json()["seq"])

            readies = [asyncio.Event() for _ in traders]
            resumes = [asyncio.Event() for _ in traders]
            for trader, ready, resumed in zip(traders, readies, resumes, strict=True):
                runs.append(asyncio.create_task(trader.run(a.ws_url, b.ws_url, ready, resumed)))
                await asyncio.sleep(0.005)
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
            assert (await asyncio.to_thread(a.stats))["active_connections"] == TRADERS

            async def keep_publishing() -> None:
                i = 0
                while publishing:
                    await publish(i)
                    i += 1
                    await asyncio.sleep(0.2)

            publisher = asyncio.create_task(keep_publishing())

            async def every_trader_has_a_pattern() -> bool:
                return all(trader.seqs for trader in traders)

            await until(every_trader_has_a_pattern, 30, "every trader received a pattern")
            assert a.process is not None
            stopped_at = time.monotonic()
            a.process.send_signal(signal.SIGTERM)

            # While it drains, A says so to the balancer and sends newcomers away with the hint.
            async def draining() -> bool:
                response = await http.get(f"{a.url}/ready")
                return response.status_code == 503 and response.json()["status"] == "draining"

            await until(draining, DRAIN_SECONDS, "A's /ready answers 503 draining")
            newcomer = Trader("newcomer")
            assert not await newcomer.session(a.ws_url)
            assert newcomer.refused == [1001]

            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in resumes)), 120)
            moved_in = time.monotonic() - stopped_at
            publishing = False
            await publisher
            assert await asyncio.to_thread(a.process.wait, 30) in (0, -signal.SIGTERM)
            final = await publish(10_000)

            async def all_have_final() -> bool:
                return all(trader.last == final for trader in traders)

            await until(all_have_final, 30, "every trader received the last pattern")

        refused = [t.user for t in traders if t.refused]
        assert not refused, f"{len(refused)} refused: {[t.refused for t in traders if t.refused][:5]}"
        for trader in traders:
            assert trader.closes[0][0] == 1001 and reconnect_hint(trader.closes[0][1]) == 1000
            assert trader.resumed_on == b.ws_url and trader.recovered is True, trader
            first = trader.seqs[0]
            assert trader.seqs == list(range(first, final + 1)), f"{trader.user}: gap or repeat"
        stats = await asyncio.to_thread(b.stats)
        assert stats["active_connections"] == TRADERS and stats["drain_reconnects"] > 0
        print(f"300 traders moved from A to B in {moved_in:.1f} s, none refused")
    finally:
        publishing = False
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        for server in (a, b):
            server.close()
        redis.close()
