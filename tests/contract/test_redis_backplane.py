"""What only a shared backplane can do: several instances on one real ``redis-server`` behave as one, and
losing Redis degrades without crashing, hanging or losing messages silently."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from legend.adapters.redis import RedisBackplane
from legend.adapters.redis.membership import evict
from legend.domain.events import BackplaneHealthChanged, StreamGap
from legend.ports.backplane import BackplaneUnavailable, Fenced, Outgoing
from legend.ports.cluster import SharedPositions
from tests.contract.conftest import Node, Nodes, Proxy, eventually
from tests.contract.test_backplane_contract import body, publish
from tests.support.fault_proxy import FaultProxy

SEED_PRICE = {
    "type": "price_update",
    "ticker": "aapl",
    "price": 150.25,
    "change": 2.5,
    "change_percent": 1.69,
    "volume": 75000000,
    "high": 151.0,
    "low": 148.5,
    "open": 149.0,
    "timestamp": "2025-11-18T10:30:00Z",
}


@pytest.fixture
async def raw(redis_nodes: Nodes) -> AsyncIterator[Redis]:
    """A plain client: another program on the same Redis."""
    client = Redis.from_url(redis_nodes.server.url)
    try:
        yield client
    finally:
        await client.aclose()


async def crash(node: Node) -> None:
    """Stop an instance the way SIGKILL would: no goodbye to Redis, its keys are left to expire."""
    backplane = node.redis
    await backplane.supervisor.stop_tasks([*backplane._tasks, *backplane.membership._tasks])
    backplane._tasks = backplane.membership._tasks = []
    for client in (backplane.connection.subscriber, backplane.connection.commands):
        if client is not None:
            await client.aclose()


async def test_a_publish_on_one_instance_reaches_every_instance_with_the_same_seq_and_text(
    redis_nodes: Nodes,
) -> None:
    a, b, c = [await redis_nodes.make() for _ in range(3)]
    published = []
    for n in range(12):
        node = (a, b, c)[n % 3]
        published.append(
            await node.backplane.publish(
                Outgoing("patterns", "pattern_alerts", "pattern_alert", body("patterns", n), 100)
            )
        )
    assert [env.seq for env in published] == list(range(1, 13))
    for node in (a, b, c):
        assert await node.recorder.wait_for(12) == published


async def test_any_instance_replays_what_another_published(redis_nodes: Nodes) -> None:
    a, b = await redis_nodes.make(), await redis_nodes.make()
    published = [
        await a.backplane.publish(
            Outgoing("patterns", "pattern_alerts", "pattern_alert", body("patterns", n), 100)
        )
        for n in range(5)
    ]
    replay = await b.backplane.replay("patterns", 2)
    assert replay.envelopes == published[2:]
    assert (replay.last_seq, replay.complete) == (5, True)


async def test_interest_is_the_union_over_live_instances(redis_nodes: Nodes) -> None:
    a, b = await redis_nodes.make(), await redis_nodes.make()
    dying = await redis_nodes.make(interest_ttl=1.0)
    await a.cluster.set_interest({"AAPL"})
    await b.cluster.set_interest({"MSFT", "AAPL"})
    await dying.cluster.set_interest({"TSLA"})
    assert await a.cluster.interest() == {"AAPL", "MSFT", "TSLA"}
    await b.backplane.stop()  # a clean stop withdraws at once
    assert await a.cluster.interest() == {"AAPL", "TSLA"}
    await crash(dying)  # a dead instance's interest lapses after interest_ttl
    took = await eventually(lambda: _interest_is(a, {"AAPL"}), timeout=5, what="TSLA forgotten")
    assert took < 3


async def _interest_is(node: Node, expected: set[str]) -> bool:
    return await node.cluster.interest() == expected


async def test_interest_outlives_the_interest_ttl_while_the_instance_lives(redis_nodes: Nodes) -> None:
    a = await redis_nodes.make(interest_ttl=1.0)
    b = await redis_nodes.make()
    await a.cluster.set_interest({"AAPL"})
    deadline = time.monotonic() + 2.5  # well past the ttl: the heartbeat keeps it
    while time.monotonic() < deadline:
        assert await b.cluster.interest() == {"AAPL"}
        await asyncio.sleep(0.2)


async def test_cluster_counts_live_instances_and_sums_their_figures(redis_nodes: Nodes) -> None:
    a, b = await redis_nodes.make(), await redis_nodes.make()
    await a.cluster.join(lambda: {"connections": 3, "subscriptions": 7})
    await b.cluster.join(lambda: {"connections": 2, "subscriptions": 1})
    await a.cluster.set_interest([])  # a heartbeat now rather than at the next tick
    await b.cluster.set_interest([])
    cluster = await a.cluster.cluster(wait=10)
    assert cluster["instances"] == 2
    assert (cluster["connections"], cluster["subscriptions"]) == (5, 8)
    assert cluster["members"] == {
        a.redis.instance_id: {"connections": 3, "subscriptions": 7},
        b.redis.instance_id: {"connections": 2, "subscriptions": 1},
    }
    await b.backplane.stop()
    assert (await a.cluster.cluster(wait=10))["instances"] == 1


async def test_cluster_figures_answer_at_once_when_redis_does_not_marked_stale(
    redis_nodes: Nodes, proxy: Proxy
) -> None:
    """The stats endpoint's cluster part answers within its wait whatever Redis does: on a silent cut, the
    last figures read, ``stale`` with their age and the reason; fresh again once Redis answers."""
    node = await redis_nodes.make(url=proxy.url, socket_timeout=2.0)
    await node.cluster.join(lambda: {"connections": 4})
    await node.cluster.set_interest([])
    fresh = await node.cluster.cluster(wait=10)
    assert fresh["connections"] == 4 and "stale" not in fresh
    proxy.freeze()
    started = time.monotonic()
    stale = await node.cluster.cluster(wait=0.05)
    assert time.monotonic() - started < 0.5  # not the 2 s socket timeout
    assert stale["stale"] is True and stale["connections"] == 4 and stale["instances"] == 1
    assert isinstance(stale["age_seconds"], float) and "within 50 ms" in str(stale["error"])
    proxy.thaw()
    again = await node.cluster.cluster(wait=10)
    assert "stale" not in again and again["connections"] == 4


async def test_cluster_figures_never_read_are_unavailable_not_made_up(
    redis_nodes: Nodes, proxy: Proxy
) -> None:
    node = await redis_nodes.make(url=proxy.url, socket_timeout=2.0)
    proxy.freeze()
    with pytest.raises(BackplaneUnavailable):
        await node.cluster.cluster(wait=0.05)
    proxy.thaw()


async def test_a_seed_message_from_another_program_is_sequenced_once_and_reaches_every_instance(
    redis_nodes: Nodes, raw: Redis
) -> None:
    a, b = await redis_nodes.make(), await redis_nodes.make()
    await raw.publish("price_updates", json.dumps(SEED_PRICE))  # both instances hear the raw message
    for node in (a, b):
        (envelope,) = await node.recorder.wait_for(1, "ticker:AAPL")
        assert envelope.seq == 1
        assert envelope.type == "price_update"
        message = json.loads(envelope.text)
        assert message == {**SEED_PRICE, "ticker": "AAPL", "channel": "ticker:AAPL", "seq": 1}
    # Both have decided about the raw message: exactly one sequenced it, the other stood down.
    await eventually(lambda: _decided(a) and _decided(b), what="both instances decided")
    assert a.redis.external.resequenced + b.redis.external.resequenced == 1
    # Nothing more follows: the next message on the stream is seq 2 on both instances.
    marker = await a.backplane.publish(
        Outgoing("ticker:AAPL", "price_updates", "price_update", body("ticker:AAPL", 1, "price_update"), 100)
    )
    for node in (a, b):
        assert [env.seq for env in await node.recorder.wait_for(2, "ticker:AAPL")] == [1, 2]
        assert node.recorder.of("ticker:AAPL")[1] == marker
    assert [env.seq for env in (await b.backplane.replay("ticker:AAPL", None)).envelopes] == [1, 2]


def _decided(node: Node) -> bool:
    return node.redis.external.resequenced + node.redis.external.duplicates >= 1


@pytest.mark.parametrize(
    ("topic", "message", "stream"),
    [
        (
            "pattern_alerts",
            {"type": "pattern_alert", "ticker": "nvda", "pattern_type": "VCP", "score": 8.5},
            "patterns",
        ),
        ("alert_triggers", {"type": "alert_trigger", "ticker": "AAPL", "alert_type": "breakout"}, "alerts"),
        ("alert_triggers", {"type": "alert_trigger", "ticker": "AAPL", "user_id": "bob"}, "alerts:user:bob"),
        ("market_status", {"type": "market_status", "status": "open", "next_open": None}, "market_status"),
        ("price_updates", {"type": "price_update", "ticker": "MSFT", "price": 1.0, "seq": 99}, "ticker:MSFT"),
    ],
)
async def test_each_seed_message_from_another_program_lands_on_its_stream(
    redis_nodes: Nodes, raw: Redis, topic: str, message: dict[str, object], stream: str
) -> None:
    node = await redis_nodes.make()
    await raw.publish(topic, json.dumps(message))
    (envelope,) = await node.recorder.wait_for(1, stream)
    got = json.loads(envelope.text)
    assert (got["channel"], got["seq"], envelope.seq, envelope.type) == (stream, 1, 1, message["type"])
    assert list(got)[-2:] == ["channel", "seq"]


async def test_invalid_messages_from_other_programs_are_counted_and_never_stop_delivery(
    redis_nodes: Nodes, raw: Redis
) -> None:
    node = await redis_nodes.make()
    junk = [
        b"not json",
        b"[1, 2, 3]",
        b'{"ticker": "AAPL"}',  # no type
        b'{"type": "price_update", "ticker": "$$$"}',  # not a ticker
        b'{"type": "price_update"}',  # no ticker
        b'{"type": "pattern_alert", "ticker": "AAPL"}',  # on the wrong topic
        b'{"type": "alert_trigger", "user_id": "no spaces allowed"}',
        b"\xff\xfe",
    ]
    for payload in junk[:-2]:
        await raw.publish("price_updates", payload)
    await raw.publish("alert_triggers", junk[-2])
    await raw.publish("market_status", junk[-1])
    await raw.publish("plugin_topic", b'{"type": "news"}')  # unknown topic without a channel
    await node.redis.add_topics(["plugin_topic"])
    await raw.publish(
        "plugin_topic", b'{"type": "news", "channel": "alerts:user:eve"}'
    )  # not a plugin stream
    await raw.publish("price_updates", json.dumps(SEED_PRICE))
    await node.recorder.wait_for(1, "ticker:AAPL")
    await eventually(
        lambda: node.redis.external.invalid_count == len(junk) + 1, what="every invalid message counted"
    )
    assert node.recorder.envelopes == node.recorder.of("ticker:AAPL")
    assert node.backplane.health()["ok"] is True


async def test_a_plugin_topic_reaches_instances_that_never_published_on_it(redis_nodes: Nodes) -> None:
    a, b = await redis_nodes.make(), await redis_nodes.make()
    first = await a.backplane.publish(
        Outgoing("news:AAPL", "news_updates", "news", body("news:AAPL", 0, "news"), 100)
    )
    # b learns the topic from a's announcement and replays the messages it could not hear yet
    assert await b.recorder.wait_for(1, "news:AAPL") == [first]
    rest = [
        await a.backplane.publish(
            Outgoing("news:AAPL", "news_updates", "news", body("news:AAPL", n, "news"), 100)
        )
        for n in range(1, 4)
    ]
    assert await b.recorder.wait_for(4, "news:AAPL") == [first, *rest]
    assert await a.recorder.wait_for(4, "news:AAPL") == [first, *rest]
    assert "news_updates" in b.backplane.health()["topics"]  # type: ignore[operator]


async def test_only_one_instance_holds_a_lease_until_its_holder_dies(redis_nodes: Nodes) -> None:
    a, b = await redis_nodes.make(lease_ttl=1.0), await redis_nodes.make(lease_ttl=1.0)
    assert (
        await a.cluster.hold_lease("streamer", 60) is True
    )  # capped at lease_ttl, renewed in the background
    assert await b.cluster.hold_lease("streamer", 60) is False
    deadline = time.monotonic() + 2.5  # more than twice the ttl: a living holder keeps it without asking
    while time.monotonic() < deadline:
        assert await b.cluster.hold_lease("streamer", 60) is False
        await asyncio.sleep(0.1)
    await crash(a)
    took = await eventually(lambda: b.cluster.hold_lease("streamer", 60), timeout=5, what="takeover")
    assert took < 1.5


async def test_a_lease_lapses_when_its_holder_cannot_renew_it(redis_nodes: Nodes, proxy: Proxy) -> None:
    a = await redis_nodes.make(url=proxy.url, lease_ttl=1.0)
    b = await redis_nodes.make(lease_ttl=1.0)
    assert await a.cluster.hold_lease("streamer", 60) is True
    proxy.freeze()  # a is cut off from Redis but alive
    took = await eventually(lambda: b.cluster.hold_lease("streamer", 60), timeout=5, what="takeover")
    assert took < 1.5
    proxy.thaw()
    await eventually(lambda: a.backplane.health()["ok"], what="a reconnected")
    assert await a.cluster.hold_lease("streamer", 60) is False  # and a learns it lost the lease


async def test_a_holder_cut_past_its_lease_is_fenced_from_publishing_after_the_takeover(
    redis_nodes: Nodes, proxy: Proxy
) -> None:
    a = await redis_nodes.make(url=proxy.url, lease_ttl=1.0)
    b = await redis_nodes.make(lease_ttl=1.0)
    assert await a.cluster.hold_lease("streamer", 60) is True
    old = a.cluster.fence("streamer")
    assert old is not None and old[0] == "streamer"
    assert await a.cluster.hold_lease("streamer", 60) is True
    assert a.cluster.fence("streamer") == old  # a renewal keeps the token
    price = body("ticker:AAPL", 0, "price_update")
    fenced = Outgoing("ticker:AAPL", "price_updates", "price_update", price, 100, fence=old)
    first = await a.backplane.publish(fenced)  # the holding is current: published
    assert await b.recorder.wait_for(1, "ticker:AAPL") == [first]
    proxy.freeze()  # a is cut off (or paused) past its lease
    await eventually(lambda: b.cluster.hold_lease("streamer", 60), timeout=5, what="takeover")
    new = b.cluster.fence("streamer")
    assert new is not None and new[1] > old[1]
    proxy.thaw()
    await eventually(lambda: a.backplane.health()["ok"], what="a reconnected")
    with pytest.raises(Fenced):
        await a.backplane.publish(fenced)  # the old holder comes back: refused
    assert a.backplane.health()["fenced"] == 1
    assert a.backplane.health()["ok"] is True  # a refusal is not an outage
    replay = await b.backplane.replay("ticker:AAPL", None)
    assert replay.last_seq == first.seq  # nothing was sequenced, stored or sent
    second = await b.backplane.publish(msgspec.structs.replace(fenced, fence=new))
    assert second.seq == first.seq + 1
    assert await a.recorder.wait_for(2, "ticker:AAPL") == [first, second]
    assert await a.cluster.hold_lease("streamer", 60) is False
    assert a.cluster.fence("streamer") is None


async def test_a_lease_token_is_never_handed_out_twice_even_after_redis_lost_its_data(
    redis_nodes: Nodes, raw: Redis
) -> None:
    a = await redis_nodes.make()
    assert await a.cluster.hold_lease("streamer", 60) is True
    before = a.cluster.fence("streamer")
    assert before is not None
    await raw.flushall()  # an empty restart, or a failover to a replica that had not got the counter
    assert await a.cluster.hold_lease("streamer", 60) is True
    after = a.cluster.fence("streamer")
    assert after is not None and after[1] > before[1]  # starts again from the time, above the old ones


async def test_a_shared_position_moves_on_from_wherever_any_instance_left_it(redis_nodes: Nodes) -> None:
    a, b = await redis_nodes.make(), await redis_nodes.make()
    assert isinstance(a.cluster, SharedPositions) and isinstance(b.cluster, SharedPositions)
    assert await a.cluster.advance_position("replay", False, 0.0) == 0.0  # none saved: the start given
    assert await a.cluster.advance_position("replay", False, 0.0) == 1.0
    assert await b.cluster.advance_position("replay", False, 0.0) == 2.0  # b continues a's series
    assert await a.cluster.advance_position("replay", False, 7.0) == 7.0  # never below its own
    first = await a.cluster.advance_position("timed", True, 5.0)
    assert first == 5.0
    await asyncio.sleep(0.2)
    later = await b.cluster.advance_position("timed", True, 0.0)
    assert 5.15 < later < 6.0  # moved on by the time since a moved it, not restarted at 0


async def test_stop_hands_a_held_lease_over_at_once(redis_nodes: Nodes) -> None:
    a, b = await redis_nodes.make(), await redis_nodes.make()
    assert await a.cluster.hold_lease("streamer", 60) is True
    assert await b.cluster.hold_lease("streamer", 60) is False
    await a.backplane.stop()
    assert await b.cluster.hold_lease("streamer", 60) is True


async def test_an_evicted_instances_connections_stop_counting_at_once(redis_nodes: Nodes) -> None:
    """What a supervisor does when it sees a worker die: the instance leaves the registry, and with it
    its connections' weight against the per-user and per-address limits, before they would expire."""
    a, b = await redis_nodes.make(), await redis_nodes.make()  # interest_ttl 15 s: expiry is far
    assert await a.backplane.admit("c1", "trader", "10.0.0.1", 1, 2) is None
    assert await b.backplane.admit("c2", "trader", "10.0.0.2", 1, 2) == "user"  # a's counts
    assert await b.backplane.admit("c3", "other", "10.0.0.1", 1, 1) == "address"
    await crash(a)
    assert await b.backplane.admit("c2", "trader", "10.0.0.2", 1, 2) == "user"  # nobody knows yet
    await evict(a.redis.settings, [a.redis.instance_id])
    assert await b.backplane.admit("c2", "trader", "10.0.0.2", 1, 2) is None
    assert await b.backplane.admit("c3", "other", "10.0.0.1", 1, 1) is None
    assert (await b.cluster.cluster(wait=10))["instances"] == 1
    assert await b.backplane.admit("c4", "trader", "10.0.0.3", 1, 2) == "user"  # b's own still count


async def test_releases_at_once_go_in_one_batch_and_each_frees_its_place(
    redis_nodes: Nodes, raw: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drain or a blip ends thousands of connections at once: their releases share round trips (one a
    thousand), and every one of them is still released; a release alone goes out at once."""
    a = await redis_nodes.make()
    for i in range(2500):
        assert await a.backplane.admit(f"c{i}", f"u{i % 7}", f"10.0.{i % 5}.1", 0, 0) is None
    calls: list[str] = []
    call = a.redis.connection.call

    async def counted(what: str, op: Any, *args: Any) -> Any:
        calls.append(what)
        return await call(what, op, *args)

    monkeypatch.setattr(a.redis.connection, "call", counted)
    await asyncio.gather(*(a.backplane.release(f"c{i}", f"u{i % 7}", f"10.0.{i % 5}.1") for i in range(2500)))
    assert calls == ["release"] * 3  # 2,500 in chunks of 1,000
    for key in await raw.keys("legend:conn:*"):
        assert await raw.zcard(key) == 0, key
    assert await a.backplane.admit("solo", "u1", "10.0.0.1", 1, 1) is None
    await a.backplane.release("solo", "u1", "10.0.0.1")
    assert calls[-1] == "release" and await a.backplane.admit("again", "u1", "10.0.0.1", 1, 1) is None


async def test_an_instance_that_died_unseen_stops_counting_once_its_heartbeats_lapse(
    redis_nodes: Nodes,
) -> None:
    a, b = await redis_nodes.make(interest_ttl=1.5), await redis_nodes.make(interest_ttl=1.5)
    assert await a.backplane.admit("c1", "trader", "10.0.0.1", 1, 0) is None
    await crash(a)

    async def admitted() -> bool:
        return await b.backplane.admit("c2", "trader", "10.0.0.2", 1, 0) is None

    took = await eventually(admitted, timeout=5, what="a's connection lapsed")
    assert took > 0.5  # nothing told b: it learns from the registry, not at once
    assert took < 1.5 + 0.5  # interest_ttl after the last heartbeat or refresh, both every ttl / 3


async def test_connections_registered_without_an_instance_still_count(redis_nodes: Nodes, raw: Redis) -> None:
    """Entries as written before they named their instance (a rolling upgrade) count until they expire."""
    a = await redis_nodes.make()
    await raw.zadd("legend:conn:user:trader", {"trader_old": int(time.time() * 1000) + 60_000})
    assert await a.backplane.admit("c1", "trader", "10.0.0.1", 1, 0) == "user"


async def test_when_redis_is_down_everything_fails_fast_and_health_says_so(redis_nodes: Nodes) -> None:
    a = await redis_nodes.make()
    await publish(a.backplane, "patterns", 0)
    redis_nodes.server.stop()
    await eventually(lambda: a.backplane.health()["ok"] is False, timeout=3, what="health not ok")
    health = a.backplane.health()
    assert health["connected"] is False and health["last_error"]
    for attempt in (
        lambda: publish(a.backplane, "patterns", 1),
        lambda: a.backplane.replay("patterns", 0),
        lambda: a.cluster.set_interest({"AAPL"}),
        lambda: a.cluster.interest(),
        lambda: a.cluster.hold_lease("streamer", 5),
    ):
        started = time.monotonic()
        with pytest.raises(BackplaneUnavailable):
            await attempt()
        assert time.monotonic() - started < 1.5  # connect_timeout + socket_timeout at most
    assert a.backplane.health()["publish_failures"] == 1
    started = time.monotonic()
    await a.backplane.stop()
    assert time.monotonic() - started < 3


async def test_publish_on_an_unreachable_redis_fails_within_the_timeouts(redis_nodes: Nodes) -> None:
    """A Redis that accepts connections but never answers (a frozen server) must not hang a publish."""
    node = await redis_nodes.make()
    frozen = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = frozen.sockets[0].getsockname()[1]
    stuck = RedisBackplane(
        node.redis.settings.__class__(
            url=f"redis://127.0.0.1:{port}/0", connect_timeout=0.3, socket_timeout=0.3
        ),
        instance_id="stuck",
    )
    try:
        started = time.monotonic()
        await stuck.start(node.recorder)
        with pytest.raises(BackplaneUnavailable):
            await publish(stuck, "patterns", 0)
        assert stuck.health()["ok"] is False
        assert time.monotonic() - started < 3
    finally:
        started = time.monotonic()
        await stuck.stop()
        assert time.monotonic() - started < 3
        frozen.close()
        with contextlib.suppress(Exception):
            await frozen.wait_closed()


async def test_after_a_redis_restart_the_listener_resubscribes_and_seq_stays_monotonic(
    redis_nodes: Nodes,
) -> None:
    a, b = await redis_nodes.make(), await redis_nodes.make()
    for n in range(3):
        await publish(a.backplane, "patterns", n)
    await b.recorder.wait_for(3)
    redis_nodes.server.stop()
    await eventually(
        lambda: not a.backplane.health()["ok"] and not b.backplane.health()["ok"], what="both degraded"
    )
    redis_nodes.server.start()  # empty: no persistence
    await eventually(lambda: a.backplane.health()["ok"] and b.backplane.health()["ok"], what="both recovered")
    assert a.backplane.health()["reconnects"] == 1
    envelope = await b.backplane.publish(
        Outgoing("patterns", "pattern_alerts", "pattern_alert", body("patterns", 3), 100)
    )
    # Redis forgot the counter, but the instances remember where the stream was: no seq goes backwards,
    # so clients (and their outboxes) never mistake new messages for ones they already have.
    assert envelope.seq == 4
    for node in (a, b):
        delivered = await node.recorder.wait_for(4)
        assert [env.seq for env in delivered] == [1, 2, 3, 4]
        assert delivered[-1] == envelope


async def test_start_while_redis_is_down_then_connect_when_it_comes(redis_nodes: Nodes) -> None:
    server = redis_nodes.server
    server.stop()
    started = time.monotonic()
    a = await redis_nodes.make()
    assert time.monotonic() - started < 2
    assert a.backplane.health()["ok"] is False
    server.start()
    await eventually(lambda: a.backplane.health()["ok"], what="connected once Redis is up")
    assert await publish(a.backplane, "patterns", 0) == 1
    await a.recorder.wait_for(1)


async def cut_off(redis_nodes: Nodes, raw: Redis, away: float = 1.0, **settings: Any) -> tuple[Node, Node]:
    """Instances ``a`` and ``b`` (both with ``settings``), both delivering; then every subscriber
    connection drops (Redis keeps its data) and ``b`` waits ``away`` seconds before subscribing again."""
    a = await redis_nodes.make(**settings)
    b = await redis_nodes.make(reconnect_min_delay=away, reconnect_max_delay=away, **settings)
    await publish(a.backplane, "patterns", 0)
    await b.recorder.wait_for(1)
    await raw.client_kill_filter(_type="pubsub")
    return a, b


async def test_messages_published_while_an_instance_was_unsubscribed_are_replayed_to_it(
    redis_nodes: Nodes, raw: Redis
) -> None:
    a, b = await cut_off(redis_nodes, raw)
    # b cannot hear these: its subscription is gone, and it waits a second before subscribing again
    missed = [
        await a.backplane.publish(
            Outgoing("patterns", "pattern_alerts", "pattern_alert", body("patterns", n), 100)
        )
        for n in (1, 2, 3)
    ]
    delivered = await b.recorder.wait_for(4, timeout=5)
    assert delivered[1:] == missed
    assert b.redis.listener.gap_filled == 3
    after = await a.backplane.publish(
        Outgoing("patterns", "pattern_alerts", "pattern_alert", body("patterns", 4), 100)
    )
    assert await b.recorder.wait_for(5) == [delivered[0], *missed, after]
    assert await a.recorder.wait_for(5) == [delivered[0], *missed, after]


async def test_what_history_no_longer_holds_is_announced_as_a_gap_by_exact_range(
    redis_nodes: Nodes, raw: Redis
) -> None:
    a, b = await cut_off(redis_nodes, raw)
    gaps: list[StreamGap] = []
    b.redis.connection.bus.subscribe(StreamGap, gaps.append)
    first = b.recorder.envelopes[0].seq
    missed = [
        await a.backplane.publish(
            Outgoing("patterns", "pattern_alerts", "pattern_alert", body("patterns", n), 3)
        )
        for n in range(1, 9)
    ]
    delivered = await b.recorder.wait_for(4, timeout=5)
    assert delivered[1:] == missed[-3:]  # what the history of 3 still holds, after the gap
    assert [(g.stream, g.from_seq, g.to_seq) for g in gaps] == [("patterns", first + 1, first + 5)]
    assert b.redis.health()["history_gaps"] == 1
    # A stream whose history is gone altogether (expired, deleted): the gap runs to its newest seq.
    await raw.client_kill_filter(_type="pubsub")
    more = [
        await a.backplane.publish(
            Outgoing("patterns", "pattern_alerts", "pattern_alert", body("patterns", n), 3)
        )
        for n in (9, 10)
    ]
    await raw.delete(b.redis.listener.keys.stream("patterns")[1])
    await eventually(lambda: len(gaps) == 2, what="the second gap announced")
    assert (gaps[1].stream, gaps[1].from_seq, gaps[1].to_seq) == ("patterns", more[0].seq, more[1].seq)
    assert len(b.recorder.envelopes) == 4  # nothing delivered twice, nothing made up


def kept(stream: str, n: int, history_size: int = 3) -> Outgoing:
    """A must-deliver message (kept in the archive beyond the stream's history)."""
    return Outgoing(
        stream, "pattern_alerts", "pattern_alert", body(stream, n), history_size, must_deliver=True
    )


async def test_must_deliver_messages_beyond_the_history_are_replayed_from_the_archive(
    redis_nodes: Nodes, raw: Redis
) -> None:
    a, b = await cut_off(redis_nodes, raw)
    gaps: list[StreamGap] = []
    b.redis.connection.bus.subscribe(StreamGap, gaps.append)
    missed = [await a.backplane.publish(kept("patterns", n)) for n in range(1, 9)]  # history holds 3
    delivered = await b.recorder.wait_for(9, timeout=5)
    assert delivered[1:] == missed  # all 8, in order: 5 from the archive, 3 from history
    assert gaps == []
    health = b.redis.health()
    assert (health["archive_filled"], health["gap_filled"], health["history_gaps"]) == (5, 8, 0), health
    assert health["archive_incomplete"] == 0
    after = await a.backplane.publish(kept("patterns", 9))
    assert await b.recorder.wait_for(10) == [delivered[0], *missed, after]  # no copy of a replayed one


async def test_an_outage_beyond_the_archives_retention_is_told_as_a_gap(
    redis_nodes: Nodes, raw: Redis
) -> None:
    a, b = await cut_off(redis_nodes, raw, away=2.0, must_deliver_retention=0.3)
    first = b.recorder.envelopes[0]
    gaps: list[StreamGap] = []
    b.redis.connection.bus.subscribe(StreamGap, gaps.append)
    missed = [await a.backplane.publish(kept("patterns", n)) for n in range(1, 9)]
    await asyncio.sleep(0.5)  # older than the retention: the next publish trims them from the archive
    missed.append(await a.backplane.publish(kept("patterns", 9)))
    assert await raw.xlen(a.redis.listener.keys.archive) == 1
    delivered = await b.recorder.wait_for(4, timeout=6)
    assert delivered == [first, *missed[-3:]]  # what history still holds
    assert gaps == [StreamGap("patterns", first.seq + 1, first.seq + 6)]  # told, by exact range
    assert b.redis.health()["archive_incomplete"] == 1


async def test_the_final_messages_of_a_conflated_stream_are_kept_and_its_updates_are_not(
    redis_nodes: Nodes, raw: Redis
) -> None:
    a, b = await cut_off(redis_nodes, raw)
    gaps: list[StreamGap] = []
    b.redis.connection.bus.subscribe(StreamGap, gaps.append)
    stream = "bars:AAPL:1m"
    published = []
    for n in range(1, 13):  # every fourth one a closed bar: final, kept
        final = n % 4 == 0
        outgoing = Outgoing(
            stream, "bars", "bar", body(stream, n, "bar"), 2, "AAPL", final=final, must_deliver=final
        )
        published.append(await a.backplane.publish(outgoing))
    delivered = await b.recorder.wait_for(4, timeout=5)
    await asyncio.sleep(0.2)
    got = b.recorder.of(stream)
    assert [env.seq for env in got] == [published[i].seq for i in (3, 7, 10, 11)]  # finals, then history
    # the missing updates are announced, marked as no loss of a final one (the archive was complete)
    assert gaps and all(gap.finals_kept for gap in gaps), gaps
    assert len(delivered) == 5


async def test_a_stream_first_published_while_an_instance_was_unsubscribed_is_replayed_to_it(
    redis_nodes: Nodes, raw: Redis
) -> None:
    a, b = await cut_off(redis_nodes, raw)
    # Streams b never delivered: before the journal, a reconnect only looked at the streams it knew.
    fresh = [
        await a.backplane.publish(Outgoing(stream, "pattern_alerts", "pattern_alert", body(stream, n), 100))
        for n, stream in enumerate(["news:NEW1", "news:NEW1", "alerts:user:zed", "news:NEW1"])
    ]
    await eventually(lambda: len(b.recorder.envelopes) >= 5, what="the fresh streams replayed")
    await asyncio.sleep(0.2)
    for stream in ("news:NEW1", "alerts:user:zed"):  # each stream in order (streams are independent)
        assert b.recorder.of(stream) == [env for env in fresh if env.stream == stream]
    assert len(b.recorder.envelopes) == 5
    assert b.redis.health()["journal_incomplete"] == 0


async def test_a_stream_with_older_history_is_replayed_only_from_where_the_instance_left(
    redis_nodes: Nodes, raw: Redis
) -> None:
    a = await redis_nodes.make()
    for n in range(3):  # before b exists: b must not replay these as if they were new
        await publish(a.backplane, "news:OLD", n)
    b = await redis_nodes.make(reconnect_min_delay=1.0, reconnect_max_delay=1.0)
    await publish(a.backplane, "patterns", 0)
    await eventually(lambda: b.recorder.of("patterns"), what="b listening")
    await eventually(
        lambda: b.redis.listener.journal.checkpoint not in (None, "0-0"), what="a checkpoint past the start"
    )
    await asyncio.sleep(1.5)  # a checkpoint ping (health_check_interval) has come back
    await raw.client_kill_filter(_type="pubsub")
    missed = [
        await a.backplane.publish(
            Outgoing("news:OLD", "pattern_alerts", "pattern_alert", body("news:OLD", n), 100)
        )
        for n in (3, 4)
    ]
    await eventually(lambda: len(b.recorder.of("news:OLD")) >= 2, what="the missed messages replayed")
    await asyncio.sleep(0.2)
    assert b.recorder.of("news:OLD") == missed
    assert [env.seq for env in missed] == [4, 5]


async def test_a_stream_first_published_right_after_a_redis_restart_reaches_every_instance(
    redis_nodes: Nodes,
) -> None:
    a = await redis_nodes.make()
    b = await redis_nodes.make(reconnect_min_delay=1.0, reconnect_max_delay=1.0)
    await publish(a.backplane, "patterns", 0)
    await b.recorder.wait_for(1)
    redis_nodes.server.stop()
    await eventually(lambda: not b.backplane.health()["connected"], what="b lost its subscription")
    redis_nodes.server.start()  # empty: the journal b's checkpoint points into is gone
    published = []
    for stream in ("patterns", "news:AFTER", "news:AFTER"):
        envelope = None
        while envelope is None:
            with contextlib.suppress(BackplaneUnavailable):
                envelope = await a.backplane.publish(
                    Outgoing(stream, "pattern_alerts", "pattern_alert", body(stream, len(published)), 100)
                )
        published.append(envelope)
    assert [env.seq for env in published] == [2, 1, 2]
    await eventually(lambda: len(b.recorder.envelopes) >= 4, what="b caught up")
    await asyncio.sleep(0.2)
    for stream in ("patterns", "news:AFTER"):
        assert b.recorder.of(stream)[-1 if stream == "patterns" else 0 :] == [
            env for env in published if env.stream == stream
        ]
    assert len(b.recorder.envelopes) == 4


async def test_when_the_journal_was_trimmed_past_the_checkpoint_known_streams_are_still_filled(
    redis_nodes: Nodes, raw: Redis
) -> None:
    a = await redis_nodes.make(journal_size=100)
    b = await redis_nodes.make(journal_size=100, reconnect_min_delay=1.0, reconnect_max_delay=1.0)
    await publish(a.backplane, "patterns", 0)
    await b.recorder.wait_for(1)
    await raw.client_kill_filter(_type="pubsub")
    for n in range(1, 400):  # far more than the journal keeps
        await publish(a.backplane, "patterns", n, history_size=1000)
    await b.recorder.wait_for(400, timeout=10)
    assert [env.seq for env in b.recorder.envelopes] == list(range(1, 401))
    assert b.redis.health()["journal_incomplete"] == 1


async def test_a_command_that_works_again_cuts_the_listeners_backoff_short(redis_nodes: Nodes) -> None:
    node = await redis_nodes.make(reconnect_min_delay=0.1, reconnect_max_delay=30.0)
    redis_nodes.server.stop()
    # 0.1 + 0.2 + … + 1.6 s of failed attempts: the listener now sleeps 3.2 s (±20 %) before the next
    await eventually(lambda: node.redis.listener.backoff.current >= 6.4, timeout=15, what="a long backoff")
    redis_nodes.server.start()
    started = time.monotonic()
    await node.cluster.set_interest({"AAPL"})  # any command: the heartbeat, a publish, a lease…
    await eventually(lambda: node.backplane.health()["ok"], timeout=5, what="subscribed again")
    assert time.monotonic() - started < 2.0


async def test_health_changes_are_reported_once_each_and_recovery_only_once_caught_up(
    redis_nodes: Nodes,
) -> None:
    a = await redis_nodes.make()
    # b waits 2 s before each attempt to subscribe: a publishes in that window
    b = await redis_nodes.make(reconnect_min_delay=2.0, reconnect_max_delay=2.0)
    changes: list[tuple[bool, int]] = []
    b.bus.subscribe(
        BackplaneHealthChanged, lambda event: changes.append((event.ok, len(b.recorder.of("news:WHILE"))))
    )
    redis_nodes.server.stop()
    await eventually(lambda: changes, what="degradation reported")
    with pytest.raises(BackplaneUnavailable):  # more failures: still one report
        await publish(b.backplane, "patterns", 0)
    redis_nodes.server.start()
    missed = None
    while missed is None:  # as soon as Redis takes it, before b is subscribed again
        with contextlib.suppress(BackplaneUnavailable):
            missed = await a.backplane.publish(
                Outgoing("news:WHILE", "pattern_alerts", "pattern_alert", body("news:WHILE", 0), 100)
            )
    await eventually(lambda: len(changes) == 2, what="recovery reported")
    # ok only once what was published meanwhile had been delivered
    assert changes == [(False, 0), (True, 1)]
    assert b.recorder.of("news:WHILE") == [missed]
    assert b.backplane.health()["ok"] is True


async def test_a_command_failure_while_subscribed_degrades_until_commands_and_the_subscription_work(
    redis_nodes: Nodes, proxy: Proxy
) -> None:
    node = await redis_nodes.make(url=proxy.url, health_check_interval=30.0, socket_timeout=0.3)
    changes: list[bool] = []
    node.bus.subscribe(BackplaneHealthChanged, lambda event: changes.append(event.ok))
    proxy.freeze()
    with pytest.raises(BackplaneUnavailable):
        await publish(node.backplane, "patterns", 0)
    assert changes == [False]
    proxy.thaw()
    # ok once a command works (the membership heartbeat's, within seconds) and the subscription answers a
    # PING sent then, not 30 s later at the next health check: the line clients hear from is proven too
    took = await eventually(lambda: changes == [False, True], timeout=20, what="recovered")
    assert took < 15


async def test_a_command_sent_during_an_outage_failing_after_it_does_not_degrade_again(
    redis_nodes: Nodes,
) -> None:
    """Status that does not flap: once the link was found ok again, a command issued during a silent cut
    that times out late is old news (it fails its caller, not the health). The cut drops the command's
    bytes, so its pooled connection stays broken after the heal and the command times out then."""
    with FaultProxy(redis_nodes.server.port) as cut:
        node = await redis_nodes.make(url=cut.url, health_check_interval=0.5, socket_timeout=5.0)
        changes: list[bool] = []
        node.bus.subscribe(BackplaneHealthChanged, lambda event: changes.append(event.ok))
        cut.blackhole()
        late = asyncio.create_task(publish(node.backplane, "patterns", 0))  # its bytes are lost
        await eventually(lambda: changes == [False], timeout=10, what="the silent cut noticed (a PING)")
        cut.pass_through()  # new connections work: the listener subscribes again
        await eventually(lambda: changes == [False, True], timeout=10, what="recovered")
        assert not late.done()  # it fails only now, after the recovery was announced
        with pytest.raises(BackplaneUnavailable, match="timed out"):
            await late
        await asyncio.sleep(0.3)
        assert changes == [False, True]  # no degraded blip
        assert node.backplane.health()["ok"] is True
        assert await publish(node.backplane, "patterns", 1) >= 1  # and commands work


async def test_history_and_seq_survive_other_instances_restarting(redis_nodes: Nodes) -> None:
    a = await redis_nodes.make()
    for n in range(3):
        await publish(a.backplane, "patterns", n)
    await a.backplane.stop()
    b = await redis_nodes.make()
    assert await publish(b.backplane, "patterns", 3) == 4
    assert [env.seq for env in (await b.backplane.replay("patterns", 1)).envelopes] == [2, 3, 4]


async def test_health_never_shows_the_password(redis_nodes: Nodes) -> None:
    node = await redis_nodes.make()
    bare = node.redis.settings.__class__(url="redis://user:s3cret@127.0.0.1:1/0")
    shown = RedisBackplane(bare, instance_id="x").health()["url"]
    assert shown == "redis://user@127.0.0.1:1/0"
    assert node.backplane.health()["url"] == redis_nodes.server.url


async def test_a_silent_subscription_is_detected_and_replaced(redis_nodes: Nodes, proxy: Proxy) -> None:
    node = await redis_nodes.make(url=proxy.url, health_check_interval=0.5)
    assert node.backplane.health()["ok"] is True
    proxy.freeze()  # the connection stays open, but nothing comes back: only a PING can tell
    took = await eventually(lambda: node.backplane.health()["ok"] is False, timeout=5, what="silence noticed")
    assert took < 2.5  # health_check_interval + socket_timeout, plus the idle poll
    started = time.monotonic()
    with pytest.raises(BackplaneUnavailable):
        await publish(node.backplane, "patterns", 0)
    assert time.monotonic() - started < 1.5
    proxy.thaw()
    await eventually(lambda: node.backplane.health()["ok"], timeout=5, what="reconnected")
    envelope = await node.backplane.publish(
        Outgoing("patterns", "pattern_alerts", "pattern_alert", body("patterns", 1), 100)
    )
    # The publish that timed out may still reach Redis when the line thaws (a timeout cannot tell), so
    # it may or may not come before this one.
    await eventually(lambda: envelope in node.recorder.envelopes, what="delivery after the thaw")
