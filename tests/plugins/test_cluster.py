"""Plugins on a cluster (two instances on a real redis-server): a feed runs on one instance at a time
(a backplane lease), its messages reach subscribers of every instance, and price callbacks fire on every
instance, which per-connection work such as portfolio valuation relies on."""

from __future__ import annotations

import asyncio
import os
import types
from collections.abc import Callable, Iterator

import msgspec
import pytest
from redis.asyncio import Redis

from legend.bootstrap import Services
from legend.domain.inputs import PriceInput
from legend.domain.messages import PriceUpdate
from legend.plugins import PluginContext, hookimpl
from legend.settings import RedisSettings
from tests.support.redis_server import REDIS_SERVER, RedisServer
from tests.support.streaming import send
from tests.support.transport import RecordingTransport

from .helpers import eventually, settings_with
from .samples import echo


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("redis-server is not installed")
    with RedisServer() as server:
        yield server


def price_watcher() -> types.SimpleNamespace:
    seen: list[tuple[str, float]] = []

    @hookimpl
    def on_startup(context: PluginContext) -> None:
        def on_price(price: PriceUpdate) -> None:
            seen.append((price.ticker, price.price))

        context.on_price(on_price)

    return types.SimpleNamespace(on_startup=on_startup, seen=seen)


async def test_feeds_run_once_and_prices_reach_every_instance(
    build: Callable[..., Services], redis: RedisServer
) -> None:
    prefix = f"legend-test-{id(redis)}-"
    watchers = [price_watcher(), price_watcher()]
    nodes: list[Services] = []
    for watcher in watchers:
        settings = settings_with({"enabled": ["echo", "watcher"], "echo": {"interval": 0.05}})
        settings = msgspec.structs.replace(settings, redis=RedisSettings(url=redis.url, key_prefix=prefix))
        nodes.append(build(settings=settings, plugins={"echo": echo, "watcher": watcher}, backplane=None))
    for node in nodes:
        await node.start()
    states = await eventually(
        lambda: (
            sorted(n.plugins.records["echo"].feeds["chatter"].state for n in nodes if n.plugins)
            == ["running", "waiting"]
        ),
        what="one running feed and one waiting for the lease",
    )
    assert states
    sent: list[str] = []

    session = nodes[1].streaming.open_session(RecordingTransport(sent), "listener")
    await send(nodes[1].streaming, session, "subscribe", channel="echo")
    await eventually(
        lambda: any('"type":"echo"' in t and '"history"' not in t for t in sent), what="echo on node 2"
    )

    await nodes[0].publisher.price(PriceInput(ticker="AAPL", price=123.0))
    for watcher in watchers:
        await eventually(lambda w=watcher: ("AAPL", 123.0) in w.seen, what="the price on every instance")


async def test_a_feed_taken_over_elsewhere_cannot_publish_with_its_old_lease(
    build: Callable[..., Services], redis: RedisServer
) -> None:
    """What a holder frozen or cut past its lease sees when it carries on: another instance took the feed
    over (the lease is another's, with a new fencing token), so the old holder's next publish is refused
    by the publish script, the feed stops here without counting against its plugin, and it runs again
    once the lease is free."""
    prefix = f"legend-fence-{id(redis)}-"
    settings = settings_with({"enabled": ["echo"], "echo": {"interval": 0.05}})
    settings = msgspec.structs.replace(settings, redis=RedisSettings(url=redis.url, key_prefix=prefix))
    node = build(settings=settings, plugins={"echo": echo}, backplane=None)
    await node.start()
    assert node.plugins is not None
    record = node.plugins.records["echo"]
    feed = record.feeds["chatter"]
    await eventually(
        lambda: feed.state == "running" and record.messages_published > 2, what="the feed running"
    )
    raw = Redis.from_url(redis.url)
    lease, seq_key = f"{prefix}lease:plugin:echo:chatter", f"{prefix}{{echo}}:seq"
    try:
        # the takeover, as another instance's lease script makes it: its id, a new token
        await raw.set(lease, "another-instance", px=60_000)
        await raw.incr(f"{lease}:fence")
        await eventually(lambda: feed.fenced == 1, what="the old holder's publish fenced")
        stopped_at = await raw.get(seq_key)
        await asyncio.sleep(0.3)  # six intervals of the feed: nothing more may go out from here
        assert await raw.get(seq_key) == stopped_at
        assert feed.state == "waiting" and feed.errors == 0 and record.active
        assert node.backplane.health()["fenced"] == 1
        assert node.counters.publish_failures == 0  # refused on purpose: not a backplane failure
        await raw.delete(lease)  # the other instance is gone: the lease is free again
        await eventually(lambda: feed.state == "running", timeout=15, what="the feed taken back")
        assert feed.runs == 2
        published = record.messages_published
        await eventually(lambda: record.messages_published > published, what="publishing again")
        assert int(await raw.get(seq_key) or 0) > int(stopped_at or 0)
    finally:
        await raw.aclose()
