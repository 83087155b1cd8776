"""Plugins on a cluster (two instances on a real redis-server): a feed runs on one instance at a time
(a backplane lease), its messages reach subscribers of every instance, and price callbacks fire on every
instance, which per-connection work such as portfolio valuation relies on."""

from __future__ import annotations

import os
import types
from collections.abc import Callable, Iterator

import msgspec
import pytest

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
