"""Issue 23's restart storm, small: one ``legend serve`` on Redis with 300 subscribed clients over 8
loopback addresses gets SIGTERM; a new process starts on the same port once it has exited. Every client
comes back following the documented backoff (the close's ``reconnect_after_ms`` hint, then the JS
client's equal-jitter backoff, attempts counted from the last open socket) and resumes its price stream
with ``since``: its seqs are contiguous across the restart up to the last price published, and no
connection is refused by the per-address limits (4429) or as a full server (503).

So that the check can fail, a few clients reconnect as a careless client would, without ``since`` and
taking only live frames: each of them must show the hole the restart left.
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
from websockets.exceptions import InvalidStatus

from legend.services.streaming.drain import reconnect_hint
from tests.cluster.conftest import until
from tests.support.redis_server import RedisServer, quick_redis_settings
from tests.support.server import LegendServer

CLIENTS = 300
CARELESS = 6  # of them, reconnecting without since (the control)
CARELESS_AWAY = 2.0  # seconds the control waits more before each reconnect: prices pass it meanwhile
ADDRESSES = [f"127.0.23.{i}" for i in range(1, 9)]
TICKER = "AAPL"
PRICES_PER_SECOND = 4.0
RECONNECT_DELAY_MS = 1000  # the JS client's defaults (docs/protocol.md, "The browser client")
BACKOFF_MULTIPLIER = 1.5
MAX_RECONNECT_DELAY_MS = 30000
# per-address or per-user limits; a full server. Not a refusal: the HTTP 503 "restarting" a handshake gets
# when it reaches the old process as it stops (LegendWebSocketProtocol.shutdown); the client backs off and
# comes back like any failed connect.
REFUSALS = (4429, 429, 503)
RESTARTING = b"restarting"


def documented_backoff(attempt: int) -> float:
    """computeBackoff of web/static/js/client/connection.js, in seconds: equal jitter below the ceiling."""
    ceiling = min(MAX_RECONNECT_DELAY_MS, RECONNECT_DELAY_MS * BACKOFF_MULTIPLIER**attempt)
    return (ceiling / 2 + random.random() * ceiling / 2) / 1000


@dataclass
class Client:
    """One subscriber of the ticker: the seqs it was given and how its connections went."""

    user: str
    address: str
    resume: bool = True
    seqs: list[int] = field(default_factory=list)
    closes: list[int] = field(default_factory=list)  # close codes of sockets that were subscribed
    refused: list[int] = field(default_factory=list)  # 4429 after the handshake, HTTP 429 or 503
    failed: list[int] = field(default_factory=list)  # other HTTP statuses of a handshake
    unreachable: int = 0  # connects that failed at TCP level (nothing listening: the restart)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    recovered: bool | None = None
    opened: int = 0  # sockets whose handshake succeeded
    subscribed: int = 0
    resumed_at: float | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # set by the first history

    @property
    def last(self) -> int | None:
        return self.seqs[-1] if self.seqs else None

    async def session(self, url: str) -> str:
        """One socket: subscribe (``since`` when resuming), read until it closes; the close's reason
        ("" when it failed before being subscribed: the refusal is recorded)."""
        try:
            ws = await websockets.connect(
                f"{url}?user_id={self.user}", open_timeout=10, local_addr=(self.address, 0)
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 503 and RESTARTING in (exc.response.body or b""):
                self.failed.append(status)
            elif status in REFUSALS:
                self.refused.append(status)
            else:  # not a limit
                self.failed.append(status)
            return ""
        except (OSError, TimeoutError, websockets.InvalidHandshake):
            self.unreachable += 1
            return ""
        self.opened += 1
        async with ws:
            request: dict[str, Any] = {"type": "subscribe", "channel": "ticker", "ticker": TICKER}
            if self.resume and self.last is not None:
                request["since"] = self.last
            try:
                await ws.send(json.dumps(request))
                async for raw in ws:
                    message = json.loads(raw)
                    kind = message["type"]
                    if kind == "history":
                        self.subscribed += 1
                        self.ready.set()
                        if self.subscribed > 1:
                            self.resumed_at = time.monotonic()
                        if "since" in request:
                            self.recovered = message.get("recovered")
                        if self.resume or self.subscribed == 1:
                            self.seqs.extend(m["seq"] for m in message["messages"])
                    elif kind == "price_update":
                        self.seqs.append(message["seq"])
                    elif kind == "gap":
                        self.gaps.append(message)
            except websockets.ConnectionClosed:
                pass
        code = ws.close_code or 1006
        if code in REFUSALS:
            self.refused.append(code)
        self.closes.append(code)
        return ws.close_reason or ""

    async def run(self, url: str) -> None:
        """Connected until cancelled, reconnecting as the JS client does: the hint of the close, then
        ``computeBackoff(attempt)``; ``attempt`` is reset by a socket that opened (``_handleOpen``)."""
        attempt = 0
        while True:
            before = self.opened
            reason = await self.session(url)
            if self.opened > before:
                attempt = 0
            hint = (reconnect_hint(reason) or 0) / 1000
            # the control stays away long enough for prices to be published without it (4 a second)
            away = 0.0 if self.resume or not self.opened else CARELESS_AWAY
            await asyncio.sleep(hint + documented_backoff(attempt) + away)
            attempt += 1

    def contiguous_to(self, final: int) -> bool:
        first = self.seqs[0] if self.seqs else final + 1
        return self.seqs == list(range(first, final + 1))


async def test_300_clients_resume_gap_free_across_a_restart_and_none_is_locked_out() -> None:
    redis = RedisServer().start()
    config: dict[str, dict[str, Any]] = {
        "redis": quick_redis_settings(redis.url, 2.0),
        # a quiet quote poller: the test publishes the prices; otherwise the shipped defaults (drain over
        # 2 s within 5 s of grace, 10 new connections a second per address, burst 50, 500 per address)
        "realtime": {"update_interval": 3600, "after_hours_interval": 3600},
    }
    server = LegendServer(config)
    clients = [
        Client(f"storm{i}", ADDRESSES[i % len(ADDRESSES)], resume=i >= CARELESS) for i in range(CLIENTS)
    ]
    runs: list[asyncio.Task[None]] = []
    acknowledged: list[int] = []
    not_accepted = 0
    publishing = True
    try:
        await asyncio.to_thread(server.start, 60)
        async with httpx.AsyncClient(timeout=5) as http:

            async def publish(i: int) -> int | None:
                try:
                    response = await http.post(
                        f"{server.url}/api/ws/broadcast/price",
                        json={"ticker": TICKER, "price": 100 + i / 100, "volume": i},
                        headers=server.admin,
                    )
                except httpx.HTTPError:
                    return None
                return int(response.json()["seq"]) if response.status_code == 200 else None

            async def keep_publishing() -> None:
                nonlocal not_accepted
                i = 0
                while publishing:
                    seq = await publish(i)
                    if seq is None:
                        not_accepted += 1
                    else:
                        acknowledged.append(seq)
                    i += 1
                    await asyncio.sleep(1 / PRICES_PER_SECOND)

            for client in clients:
                runs.append(asyncio.create_task(client.run(server.ws_url)))
                await asyncio.sleep(0.01)
            await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 60)
            publisher = asyncio.create_task(keep_publishing())

            async def everyone_has_a_price() -> bool:
                return len(acknowledged) >= 2 and all(c.last and c.last >= acknowledged[1] for c in clients)

            await until(everyone_has_a_price, 30, "every client received a price")
            assert server.process is not None
            stopped_at = time.monotonic()
            assert await asyncio.to_thread(server.stop, signal.SIGTERM, 30) in (0, -signal.SIGTERM)
            outage_from = len(acknowledged)
            await asyncio.to_thread(server.start, 60)  # the same port, a new process
            restarted_in = time.monotonic() - stopped_at

            async def everyone_resumed() -> bool:
                return all(c.subscribed >= 2 for c in clients)

            await until(everyone_resumed, 45, "every client resubscribed to the new process")
            resumed = [c.resumed_at - stopped_at for c in clients if c.resumed_at is not None]
            await asyncio.sleep(1.0)
            publishing = False
            await publisher
            final = await publish(10**6)
            assert final is not None
            acknowledged.append(final)

            async def everyone_has_the_last() -> bool:
                return all(c.last == final for c in clients)

            await until(everyone_has_the_last, 20, "every client received the last price")

        refused = [(c.user, c.refused) for c in clients if c.refused]
        assert not refused, f"{len(refused)} clients refused (locked out): {refused[:5]}"
        errors = [(c.user, c.failed) for c in clients if any(status != 503 for status in c.failed)]
        assert not errors, f"handshakes answered with an error, not 503 restarting: {errors[:5]}"
        assert len(acknowledged) > outage_from + 2, "prices were published around the restart"
        for client in clients:
            assert client.closes[0] in (1001, 1006), (client.user, client.closes)
            assert not client.gaps, (client.user, client.gaps)
        for client in clients[CARELESS:]:
            assert client.recovered is True, (client.user, client.recovered)
            assert client.contiguous_to(final), f"{client.user}: a hole or a repeat: {client.seqs[-30:]}"
        # The control: without since, the prices acknowledged while a client was away never reach it.
        for client in clients[:CARELESS]:
            assert not client.contiguous_to(final), f"{client.user} saw no hole: the check cannot fail"
        print(
            f"restart storm: {CLIENTS} clients, new process up {restarted_in:.1f} s after SIGTERM, all "
            f"resumed {max(resumed):.1f} s after it; {len(acknowledged)} prices acknowledged, "
            f"{not_accepted} not accepted; {sum(c.unreachable for c in clients)} connects found nothing "
            f"listening, {sum(len(c.failed) for c in clients)} failed otherwise"
        )
    finally:
        publishing = False
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        server.close()
        redis.close()
