"""Many instances behave as one: real server processes on one Redis, real WebSocket clients.

Every wait is a condition polled against a deadline; processes are killed in fixture teardown.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import httpx

from legend.adapters.redis import RedisBackplane
from legend.settings import RedisSettings
from tests.cluster.conftest import LEASE_TTL, Cluster, pattern, stats, until
from tests.support.server import LegendServer, pattern_body
from tests.support.wsclient import Message, connect


def plain(message: Message) -> Message:
    """A received message without the client's bookkeeping, for comparing across clients."""
    return {k: v for k, v in message.items() if k != "_at"}


def is_price(ticker: str) -> Any:
    return lambda m: m.get("type") == "price_update" and m.get("ticker") == ticker


def gap_free(seqs: list[int]) -> bool:
    return seqs == list(range(seqs[0], seqs[0] + len(seqs)))


async def post(
    http: httpx.AsyncClient, server: LegendServer, kind: str, body: dict[str, object]
) -> httpx.Response:
    return await http.post(f"{server.url}/api/ws/broadcast/{kind}", json=body, headers=server.admin)


async def the_leader(
    http: httpx.AsyncClient, servers: list[LegendServer], timeout: float = 10.0
) -> tuple[LegendServer, float]:
    """The one instance whose quote poller holds the lease, once exactly one does; and how long that took."""

    async def exactly_one() -> LegendServer | None:
        leaders = [s for s in servers if (await stats(http, s))["streamer"]["leader"]]
        return leaders[0] if len(leaders) == 1 else None

    leader, took = await until(exactly_one, timeout, "exactly one quote poller leader")
    return leader, took


async def test_a_broadcast_to_any_instance_reaches_clients_of_every_instance_with_one_seq(
    cluster: Cluster,
) -> None:
    clients = [await connect(s.ws_url, user_id=f"fan{i}") for i, s in enumerate(cluster.servers)]
    heads = [(await c.subscribe("patterns"))[1][0]["seq"] for c in clients]
    assert len(set(heads)) == 1, heads
    async with httpx.AsyncClient(timeout=10) as http:
        answers = []
        for i in range(6):
            response = await post(http, cluster.servers[i % 3], "pattern", pattern(i))
            assert response.status_code == 200, response.text
            answers.append(response.json()["seq"])
    assert answers == list(range(heads[0] + 1, heads[0] + 7))
    received = [[plain(m) for m in await c.collect("pattern_alert", 6)] for c in clients]
    assert [m["seq"] for m in received[0]] == answers
    assert [m["message"] for m in received[0]] == [f"cluster pattern {i}" for i in range(6)]
    assert received[0] == received[1] == received[2]
    assert all(m["channel"] == "patterns" for m in received[0])
    for c in clients:
        await c.close()


async def test_a_watchlist_filter_follows_a_change_made_through_another_instance(cluster: Cluster) -> None:
    """The filter is on instance 1; the watchlist changes through instance 0's API: the change travels on
    the backplane (the ``watchlist`` channel) and the filter follows it, with no reconnect."""
    first, second = cluster.servers[0], cluster.servers[1]
    client = await connect(second.ws_url, user_id="roamer")
    await client.subscribe("patterns", filter={"ticker": "watchlist"})
    mine = {"X-User-Id": "roamer"}
    async with httpx.AsyncClient(timeout=10) as http:
        added = await http.post(f"{first.url}/api/watchlist", json={"ticker": "WLX"}, headers=mine)
        assert added.status_code in (200, 201), added.text

        async def followed() -> bool:
            for body in (pattern_body("other", ticker="WLY"), pattern_body("mine", ticker="WLX")):
                assert (await post(http, first, "pattern", body)).status_code == 200
            got = [m["message"] for m in await client.quiet(0.5) if m["type"] == "pattern_alert"]
            assert "other" not in got
            return "mine" in got

        await until(followed, 10, "the filter on instance 1 follows the watchlist changed on instance 0")
    await client.close()


async def test_a_client_that_moves_to_another_instance_resumes_exactly_where_it_left(
    cluster: Cluster,
) -> None:
    a, b, c = cluster.servers
    witness = await connect(c.ws_url, user_id="witness")
    await witness.subscribe("patterns")
    mover = await connect(a.ws_url, user_id="mover")
    await mover.subscribe("patterns")
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await post(http, a, "pattern", pattern(100))).status_code == 200
        seen = (await mover.expect("pattern_alert"))["seq"]
        await witness.expect("pattern_alert")
        await mover.close()
        for i, server in enumerate((c, b, c)):
            assert (await post(http, server, "pattern", pattern(101 + i))).status_code == 200
    missed = [plain(m) for m in await witness.collect("pattern_alert", 3)]
    back = await connect(b.ws_url, user_id="mover")
    _, (history,) = await back.subscribe("patterns", since=seen)
    assert history["recovered"] is True
    assert history["seq"] == seen + 3
    assert history["messages"] == missed
    assert [m["seq"] for m in missed] == [seen + 1, seen + 2, seen + 3]
    await back.close()
    await witness.close()


async def test_exactly_one_instance_polls_and_it_fetches_what_clients_on_any_instance_watch(
    cluster: Cluster,
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        leader, _ = await the_leader(http, cluster.servers)
        others = [s for s in cluster.servers if s is not leader]
        polls_before = {s.port: (await stats(http, s))["streamer"]["polls"] for s in cluster.servers}
        # MSFT is watched only on the instances that do not poll: the leader must learn it from them.
        watchers = [await connect(s.ws_url, user_id=f"msft{i}") for i, s in enumerate(others)]
        for w in watchers:
            await w.subscribe("ticker", "MSFT")
        streams = [[plain(m) for m in await w.collect(is_price("MSFT"), 5, timeout=15)] for w in watchers]
        for prices in streams:
            assert gap_free([m["seq"] for m in prices]), [m["seq"] for m in prices]
            assert all(m["channel"] == "ticker:MSFT" for m in prices)
        by_seq = [{m["seq"]: m for m in prices} for prices in streams]
        common = by_seq[0].keys() & by_seq[1].keys()
        assert len(common) >= 3
        assert all(by_seq[0][seq] == by_seq[1][seq] for seq in common)  # one price, one seq, everywhere
        polls_after = {s.port: (await stats(http, s))["streamer"]["polls"] for s in cluster.servers}
        assert polls_after[leader.port] > polls_before[leader.port]
        assert all(polls_after[s.port] == polls_before[s.port] for s in others)
        assert (await the_leader(http, cluster.servers))[0] is leader

        for w in watchers:
            await w.close()
        # With its last watcher gone, MSFT is no longer fetched: its seq stops moving.
        observer = RedisBackplane(RedisSettings(url=cluster.redis.url), instance_id="observer")
        await observer.start(lambda envelope: None)
        try:
            last_seq = (await observer.replay("ticker:MSFT", None)).last_seq
            changed = time.monotonic()

            async def settled() -> bool:
                nonlocal last_seq, changed
                seq = (await observer.replay("ticker:MSFT", None)).last_seq
                if seq != last_seq:
                    last_seq, changed = seq, time.monotonic()
                return time.monotonic() - changed > 2.0  # four poll intervals without a price

            await until(settled, 10, "MSFT no longer polled")
        finally:
            await observer.stop()


async def test_killing_the_leader_hands_the_lease_over_and_prices_keep_flowing(own_cluster: Any) -> None:
    cluster: Cluster = own_cluster(3)
    async with httpx.AsyncClient(timeout=10) as http:
        leader, _ = await the_leader(http, cluster.servers)
        survivor = next(s for s in cluster.servers if s is not leader)
        client = await connect(survivor.ws_url, user_id="steady")
        await client.subscribe("ticker", "AAPL")
        before = await client.collect(is_price("AAPL"), 2, timeout=10)
        leader.stop(signal.SIGKILL)
        killed = time.monotonic()
        new_leader, _ = await the_leader(http, cluster.alive(), timeout=LEASE_TTL + 10)
        took = time.monotonic() - killed
        assert new_leader is not leader
        assert took < LEASE_TTL + 2.0, f"takeover took {took:.1f}s"
        after = await client.collect(
            lambda m: is_price("AAPL")(m) and m["_at"] > killed + took, 3, timeout=10
        )
        seqs = [m["seq"] for m in client.received if is_price("AAPL")(m)]
        assert gap_free(seqs), seqs  # nothing lost, nothing repeated across the handover
        assert after[-1]["seq"] > before[-1]["seq"]
        await client.close()


async def test_redis_failure_degrades_and_recovers_without_dropping_clients(own_cluster: Any) -> None:
    cluster: Cluster = own_cluster(2)
    a, b = cluster.servers
    on_a = await connect(a.ws_url, user_id="on_a")
    await on_a.subscribe("ticker", "AAPL")
    on_b = await connect(b.ws_url, user_id="on_b")
    await on_b.subscribe("patterns")
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await post(http, a, "pattern", pattern(1))).status_code == 200
        first = (await on_b.expect("pattern_alert"))["seq"]
        await on_a.expect(is_price("AAPL"), timeout=10)

        cluster.redis.stop()

        async def degraded(server: LegendServer) -> bool:
            response = await http.get(f"{server.url}/ready")
            return response.status_code == 503 and response.json()["status"] == "degraded"

        await until(lambda: degraded(a), 5, "A degraded")
        await until(lambda: degraded(b), 5, "B degraded")
        refused = await post(http, b, "pattern", pattern(2))
        assert refused.status_code == 503, refused.text
        for client in (on_a, on_b):  # still connected, still answered
            await client.send({"type": "ping"})
            await client.expect("pong")

        cluster.redis.start()  # empty: no persistence
        restarted = time.monotonic()

        async def ready(server: LegendServer) -> bool:
            return (await http.get(f"{server.url}/ready")).status_code == 200

        await until(lambda: ready(a), 10, "A ready again")
        await until(lambda: ready(b), 10, "B ready again")
        accepted = await post(http, a, "pattern", pattern(3))
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["seq"] == first + 1  # the seq carries on where it was, not from 1
        resumed = await on_b.expect("pattern_alert", timeout=10)
        assert resumed["seq"] == first + 1
        assert resumed["message"] == "cluster pattern 3"
        await on_a.expect(lambda m: is_price("AAPL")(m) and m["_at"] > restarted, timeout=10)
        health = (await stats(http, b))["backplane"]
        assert health["ok"] is True and health["reconnects"] >= 1
    for client in (on_a, on_b):
        await client.close()


async def test_stats_add_cluster_wide_figures_to_the_instance_figures(cluster: Cluster) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        base = (await stats(http, cluster.servers[0]))["cluster"]
        clients = [await connect(s.ws_url, user_id=f"count{i}") for i, s in enumerate(cluster.servers[:2])]
        for client in clients:
            await client.subscribe("patterns")
        await clients[1].subscribe("ticker", "CLST")

        async def counted() -> dict[str, Any] | None:
            figures: dict[str, Any] = (await stats(http, cluster.servers[2]))["cluster"]
            wanted = (base["connections"] + 2, base["subscriptions"] + 3)
            return figures if (figures["connections"], figures["subscriptions"]) == wanted else None

        figures, _ = await until(counted, 15, "cluster-wide connections and subscriptions")
        assert figures["instances"] == 3
        mine = await stats(http, cluster.servers[2])  # the instance asked has no client of its own
        assert mine["active_connections"] == 0 or mine["active_connections"] < figures["connections"]
        for client in clients:
            await client.close()
