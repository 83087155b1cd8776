"""The ``bars`` channel over a real uvicorn server and real WebSocket clients, on the memory backplane and on
a real redis-server: bars published through ``Publisher.publish_bar`` reach subscribers of their ticker and
interval; the open bar conflates within a slow client's budget, every closed bar arrives exactly once and
in ``seq`` order, history comes on subscribe and a resume since a ``seq`` gets exactly what was missed."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from legend.bootstrap import Services, bootstrap
from legend.domain.bars import Bar
from legend.settings import DatabaseSettings, RealtimeSettings, RedisSettings, Settings
from tests.support.inprocess import serving
from tests.support.redis_server import REDIS_SERVER, RedisServer
from tests.support.wsclient import Message, connect

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
_prefixes = itertools.count(1)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("redis-server is not installed")
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["memory", "redis"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Services, str]]:
    """Services with a small budget (2 messages a second, 1 kept for conflated ones) served by uvicorn."""
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend.db"),
        realtime=RealtimeSettings(max_messages_per_second=2, price_share=1),
    )
    if request.param == "redis":
        redis: RedisServer = request.getfixturevalue("redis")
        prefix = f"legend-bars-{os.getpid()}-{next(_prefixes)}-"
        settings = msgspec.structs.replace(settings, redis=RedisSettings(url=redis.url, key_prefix=prefix))
    services = bootstrap(settings, run_quote_poller=False)
    async with serving(services) as url:
        yield services, url


def bar(minute: int, close: float, closed: bool = False) -> Bar:
    return Bar(
        ticker="AAPL",
        interval="1m",
        start=T0 + timedelta(minutes=minute),
        open=100.0,
        high=max(100.0, close),
        low=min(100.0, close),
        close=close,
        volume=int(close * 10),
        regular=True,
        closed=closed,
    )


def bars_of(messages: list[Message]) -> list[Message]:
    return [m for m in messages if m.get("type") == "bar"]


async def test_subscribe_names_the_interval_and_a_bar_arrives_as_documented(
    server: tuple[Services, str],
) -> None:
    services, url = server
    client = await connect(url, user_id="amy")
    try:
        ack, (history,) = await client.subscribe("bars", "aapl", interval="1m")
        assert ack["channel"] == "bars" and ack["ticker"] == "AAPL" and ack["interval"] == "1m"
        assert ack["streams"] == ["bars:AAPL:1m"]
        assert history["channel"] == "bars:AAPL:1m" and history["messages"] == [] and history["seq"] == 0
        await services.publisher.publish_bar(bar(0, 101.5))
        await services.publisher.publish_bar(msgspec.structs.replace(bar(0, 101.5), interval="5m"))
        message = await client.expect("bar")
        message.pop("_at")
        assert message == {
            "type": "bar",
            "ticker": "AAPL",
            "interval": "1m",
            "time": "2026-03-02T14:30:00.000Z",
            "open": 100.0,
            "high": 101.5,
            "low": 100.0,
            "close": 101.5,
            "volume": 1015,
            "closed": False,
            "channel": "bars:AAPL:1m",
            "seq": 1,
        }
        assert bars_of(await client.quiet(0.3)) == []  # the 5m bar is another stream
        await client.send({"type": "unsubscribe", "channel": "bars", "ticker": "AAPL", "interval": "1m"})
        left = await client.expect("subscription")
        assert left["action"] == "unsubscribed" and left["streams"] == ["bars:AAPL:1m"]
    finally:
        await client.close()


async def test_open_bars_conflate_closed_bars_arrive_once_in_order(server: tuple[Services, str]) -> None:
    services, url = server
    client = await connect(url, user_id="slow")
    try:
        await client.subscribe("bars", "AAPL", interval="1m")
        publisher = services.publisher
        closes = [100.0 + i / 10 for i in range(40)]
        for close in closes:  # far faster than the 2 a second this client may receive
            await publisher.publish_bar(bar(0, close))
        closed = await publisher.publish_bar(bar(0, closes[-1], closed=True))
        assert closed is not None and closed.final
        assert await publisher.publish_bar(bar(0, closes[-1], closed=True)) is None  # a re-publish: dropped
        for close in (200.0, 201.0, 202.0):
            await publisher.publish_bar(bar(1, close))
        received = bars_of(await client.quiet(3.0))
    finally:
        await client.close()
    seqs = [m["seq"] for m in received]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # in order, never twice
    assert len(received) < len(closes)  # conflated within the budget
    finals = [m for m in received if m["closed"]]
    assert len(finals) == 1 and finals[0]["close"] == closes[-1] and finals[0]["seq"] == closed.seq
    assert received[-1]["close"] == 202.0 and not received[-1]["closed"]  # it ends on the newest


async def test_history_on_subscribe_and_a_resume_gets_exactly_the_missed_closed_bar(
    server: tuple[Services, str],
) -> None:
    services, url = server
    publisher = services.publisher
    await publisher.publish_bar(bar(0, 101.0))
    first = await publisher.publish_bar(bar(0, 102.0, closed=True))
    assert first is not None
    early = await connect(url, user_id="early")
    try:
        _, (history,) = await early.subscribe("bars", "AAPL", interval="1m")
        assert [(m["close"], m["closed"]) for m in history["messages"]] == [(101.0, False), (102.0, True)]
        assert history["seq"] == first.seq
    finally:
        await early.close()
    # while the client is away: the next bar forms and closes
    await publisher.publish_bar(bar(1, 103.0))
    missed = await publisher.publish_bar(bar(1, 104.0, closed=True))
    assert missed is not None
    back = await connect(url, user_id="early")
    try:
        _, (resumed,) = await back.subscribe("bars", "AAPL", interval="1m", since=history["seq"])
        assert resumed["recovered"] is True and resumed["seq"] == missed.seq
        assert [(m["close"], m["closed"], m["seq"]) for m in resumed["messages"]] == [
            (103.0, False, first.seq + 1),
            (104.0, True, missed.seq),
        ]
        assert bars_of(await back.quiet(0.3)) == []  # nothing twice beside the history
    finally:
        await back.close()


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"ticker": "AAPL"}, "Interval required for channel 'bars': one of 1m, 5m, 15m, 1h, 1d"),
        ({"ticker": "AAPL", "interval": "2m"}, "Invalid interval for channel 'bars': '2m' (one of 1m, 5m, 15m, 1h, 1d)"),
        ({"interval": "1m"}, "Ticker required for channel 'bars'"),
        ({"ticker": "AAPL", "interval": 5}, "Invalid subscribe message: Expected `str | null`, got `int` - at `$.interval`"),
    ],
)  # fmt: skip
async def test_a_missing_or_bad_interval_gets_a_clear_error(
    server: tuple[Services, str], request_: Message, message: str
) -> None:
    _, url = server
    client = await connect(url, user_id="amy")
    try:
        await client.send({"type": "subscribe", "channel": "bars", **request_})
        error = await client.expect("error")
        assert error["message"] == message
        assert error["code"] in ("invalid_subscription", "invalid_message")
        await client.send({"type": "subscribe", "channel": "ticker", "ticker": "AAPL", "interval": "1m"})
        assert (await client.expect("error"))["message"] == "Channel 'ticker' takes no interval"
    finally:
        await client.close()


async def test_two_instances_on_redis_a_closed_bar_reaches_the_other_once_and_a_successor_cannot_repeat_it(
    redis: RedisServer, tmp_path: Path
) -> None:
    """Instance A publishes (the builder), a client listens on instance B; then B, taking the builder
    over, publishes the same closed bar again: dropped, cluster-wide."""
    prefix = f"legend-bars-{os.getpid()}-{next(_prefixes)}-"
    nodes = [
        bootstrap(
            Settings(
                database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/{name}.db"),
                redis=RedisSettings(url=redis.url, key_prefix=prefix),
            ),
            run_quote_poller=False,
        )
        for name in ("a", "b")
    ]
    async with serving(nodes[0]), serving(nodes[1]) as url_b:
        client = await connect(url_b, user_id="amy")
        try:
            await client.subscribe("bars", "AAPL", interval="1m")
            await nodes[0].publisher.publish_bar(bar(0, 101.0))
            first = await nodes[0].publisher.publish_bar(bar(0, 102.0, closed=True))
            assert first is not None
            assert await nodes[1].publisher.publish_bar(bar(0, 102.0, closed=True)) is None
            received = bars_of(await client.quiet(1.0))
        finally:
            await client.close()
    assert [(m["close"], m["closed"], m["seq"]) for m in received] == [
        (101.0, False, first.seq - 1),
        (102.0, True, first.seq),
    ]
