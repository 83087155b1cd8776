"""After Redis comes back, live delivery resumes with nothing acknowledged skipped.

Real ``legend serve`` processes on a private ``redis-server`` that the test kills and restarts empty on
the same port; prices are published through the REST broadcast as soon as an instance accepts them again.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from tests.cluster.conftest import Cluster, until
from tests.support.server import LegendServer
from tests.support.wsclient import Client, connect


def prices_of(client: Client, ticker: str) -> list[int]:
    return [
        m["seq"] for m in client.received if m.get("type") == "price_update" and m.get("ticker") == ticker
    ]


async def ready(http: httpx.AsyncClient, server: LegendServer) -> bool:
    return (await http.get(f"{server.url}/ready")).status_code == 200


async def degraded(http: httpx.AsyncClient, server: LegendServer) -> bool:
    return (await http.get(f"{server.url}/ready")).status_code == 503


async def test_prices_acknowledged_right_after_redis_returns_reach_live_clients_gap_free() -> None:
    # Listener backoff up to 2 s: the window in which publishes succeed before the subscription is back.
    # No conflation (a budget far above the rate), so every price must arrive, not just the newest.
    cluster = Cluster(
        2,
        redis={"reconnect_min_delay": 0.2, "reconnect_max_delay": 2.0},
        realtime={"max_messages_per_second": 1000, "update_interval": 60, "after_hours_interval": 60},
    ).start()
    try:
        a, b = cluster.servers
        client = await connect(a.ws_url, user_id="recover")
        known, fresh = "RCVA", "RCVB"  # RCVA was published before the outage; RCVB never was
        await client.subscribe("ticker", known)
        async with httpx.AsyncClient(timeout=5) as http:
            before = await http.post(
                f"{b.url}/api/ws/broadcast/price", json={"ticker": known, "price": 10.0}, headers=b.admin
            )
            assert before.status_code == 200, before.text
            await client.expect(lambda m: m.get("type") == "price_update" and m.get("ticker") == known)

            cluster.redis.stop()
            for server in (a, b):
                await until(lambda server=server: degraded(http, server), 10, "degraded")
            # Subscribed while Redis is down: live, but its history cannot be read (an error says so),
            # and no instance has delivered anything of its stream yet.
            await client.send({"type": "subscribe", "channel": "ticker", "ticker": fresh})
            await client.expect("subscription")
            unavailable = await client.expect("error")
            assert unavailable["code"] == "history_unavailable", unavailable
            await asyncio.sleep(2.5)  # the listeners back off to their longest delay
            cluster.redis.start()  # empty: no persistence

            acked: dict[str, list[int]] = {known: [], fresh: []}
            started = time.monotonic()
            i = 0
            while time.monotonic() - started < 4.0:
                ticker = (known, fresh)[i % 2]
                server = (a, b)[(i // 2) % 2]
                i += 1
                try:
                    response = await http.post(
                        f"{server.url}/api/ws/broadcast/price",
                        json={"ticker": ticker, "price": 10.0 + i / 100},
                        headers=server.admin,
                        timeout=2,
                    )
                except httpx.HTTPError:
                    continue
                if response.status_code == 200:
                    acked[ticker].append(response.json()["seq"])
                await asyncio.sleep(0.05)
            assert acked[known] and acked[fresh], acked

            async def all_arrived() -> bool:
                await client.quiet(0.2)
                return all(set(seqs) <= set(prices_of(client, t)) for t, seqs in acked.items())

            try:
                await until(all_arrived, 10, "every acknowledged price delivered")
            finally:
                for ticker, seqs in acked.items():
                    got = prices_of(client, ticker)
                    missing = sorted(set(seqs) - set(got))
                    print(ticker, "acked", seqs, "got", got, "missing", missing)
            for ticker in (known, fresh):
                got = prices_of(client, ticker)
                assert got == sorted(set(got)), got  # in order, no repeats
                assert got == list(range(got[0], got[0] + len(got))), got  # no hole
            errors = [m for m in client.received if m.get("type") == "error"]
            assert errors == [unavailable], errors
            await client.close()
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.close()


async def test_clients_are_told_when_redis_goes_down_and_when_live_delivery_is_back(
    own_cluster: Any,
) -> None:
    cluster: Cluster = own_cluster(1)
    (server,) = cluster.servers
    before = await connect(server.ws_url, user_id="told")
    await before.subscribe("patterns")
    async with httpx.AsyncClient(timeout=5) as http:
        cluster.redis.stop()
        degraded_frame = await before.expect("service_status", timeout=10)
        assert degraded_frame["status"] == "degraded"
        assert degraded_frame["component"] == "backplane"
        assert str(cluster.redis.port) not in json.dumps(degraded_frame)  # no internal address
        assert await degraded(http, server)

        during = await connect(server.ws_url, user_id="late")  # connects while degraded: told at once
        assert (await during.recv())["type"] == "service_status"
        assert during.received[-1]["status"] == "degraded"

        cluster.redis.start()
        for client in (before, during):
            back = await client.expect("service_status", timeout=15)
            assert back["status"] == "ok"
        assert await ready(http, server)
        after = await connect(server.ws_url, user_id="after")  # healthy again: nothing to tell
        await after.send({"type": "ping"})
        assert (await after.recv())["type"] == "pong"
        for client in (before, during):  # one frame per change, no repeats
            assert [m["status"] for m in client.received if m["type"] == "service_status"] == [
                "degraded",
                "ok",
            ]
        for client in (before, during, after):
            await client.close()
