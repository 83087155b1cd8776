"""Bar building (legend.services.bars.building) on a frozen clock, over a real in-memory backplane, the
database's price log and the SQL bar store (SQLite and PostgreSQL): known prices across bar boundaries give
the stored OHLCV of every interval, each closed bar stored and published once, the open bar last; a
builder that dies between publishing and storing is taken over without a closed bar lost or repeated; a
builder that lost its lease stores nothing.

The real-process version (two servers, Redis, SIGKILL) is tests/cluster/test_bars_cluster.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.market_calendar import ExchangeCalendarsMarketCalendar
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.adapters.sql import Database
from legend.adapters.sql.bars import SqlAlchemyBarStore
from legend.adapters.sql.price_log import SqlPriceLog
from legend.app import create_app
from legend.bar_settings import BarSettings
from legend.bootstrap import bootstrap
from legend.domain.bars import INTERVALS, Bar, BarInterval
from legend.domain.channels import ChannelRegistry
from legend.domain.inputs import MarketStatusInput, PriceInput
from legend.domain.messages import BarMessage
from legend.domain.stats import Counters
from legend.domain.stream_name import bar_stream
from legend.ports.backplane import Backplane
from legend.ports.bars import BarStore
from legend.ports.repositories import PositionConflict, PositionMove
from legend.services.bars.building import BarBuilding
from legend.services.streaming.publisher import Publisher
from legend.settings import DatabaseSettings, SecuritySettings, Settings

OPEN = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)  # Tuesday 1 December 2026, 09:30 in New York (EST)
Figures = tuple[str, float, float, float, float, int, bool]  # start (ET clock time), OHLC, volume, closed


@pytest.fixture(scope="module")
def nyse() -> ExchangeCalendarsMarketCalendar:
    return ExchangeCalendarsMarketCalendar("XNYS", start="2026-01-01", end="2027-12-31")


@pytest.fixture
async def price_log(database: Database, clock: FrozenClock) -> AsyncIterator[SqlPriceLog]:
    clock.set_now(OPEN)
    log = SqlPriceLog(database, clock)  # entries are stamped by the server's clock
    await log.start()
    yield log
    await log.stop()


def at(hhmmss: str) -> datetime:
    """An instant of that Tuesday, given in New York time."""
    h, m, s = (int(part) for part in hhmmss.split(":"))
    return OPEN + timedelta(hours=h - 9, minutes=m - 30, seconds=s)


async def sent(backplane: Backplane, ticker: str, interval: BarInterval) -> list[BarMessage]:
    """What the bars channel carried for ``ticker`` at ``interval``, in order."""
    replay = await backplane.replay(bar_stream(ticker, interval), None)
    return [msgspec.json.decode(e.text, type=BarMessage) for e in replay.envelopes]


class World:
    """One server's parts: a frozen clock, the in-memory backplane on the database's price log, the
    publisher, the bar store, and builders made on demand."""

    def __init__(
        self,
        database: Database,
        price_log: SqlPriceLog,
        nyse: ExchangeCalendarsMarketCalendar,
        clock: FrozenClock,
    ) -> None:
        self.clock = clock
        self.backplane = InMemoryBackplane(self.clock, price_log=price_log)
        self.publisher = Publisher(
            self.backplane, ChannelRegistry(), self.clock, Counters(), history_size=100
        )
        self.store = SqlAlchemyBarStore(database)
        self.price_log = price_log
        self.nyse = nyse

    def builder(
        self, store: BarStore | None = None, batch: int = 1000, store_every: float = 0.0
    ) -> BarBuilding:
        async def always(name: str, ttl: float) -> bool:
            return True

        return BarBuilding(
            store or self.store,
            self.price_log,
            always,
            self.clock,
            self.nyse.zone,
            self.nyse.session_on,
            self.publisher.publish_bar,
            batch=batch,
            store_every=store_every,
            publish_every=0.0,
            read_every=0.0,
        )

    async def price(self, when: str, price: float, volume: int, ticker: str = "AAPL") -> None:
        """A price stamped ``when`` (New York time), published when the clock says so."""
        self.clock.set_now(at(when))
        await self.publisher.price(PriceInput(ticker=ticker, price=price, volume=volume, timestamp=at(when)))

    async def stored(self, interval: BarInterval, ticker: str = "AAPL") -> list[Figures]:
        return [figures(bar) for bar in await self.store.history(ticker, interval, 100)]


def figures(bar: Bar | BarMessage) -> Figures:
    """A stored bar's or a sent one's figures, its start as New York clock time."""
    begins = bar.start if isinstance(bar, Bar) else datetime.fromisoformat(bar.time)
    start = begins.astimezone(UTC) - OPEN + timedelta(hours=9, minutes=30)
    clock = f"{int(start.total_seconds()) // 3600:02d}:{int(start.total_seconds()) % 3600 // 60:02d}"
    return (clock, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.closed)


# (New York time, price, session volume): across the 1m, 5m, 15m and 1h boundaries of the session
PRICES = [
    ("09:30:10", 100.0, 1000),  # the first price sets the volume base: it adds 0
    ("09:30:40", 102.0, 1500),
    ("09:31:05", 99.0, 1800),
    ("09:34:59", 101.0, 2000),
    ("09:35:00", 103.0, 2600),
    ("09:45:30", 98.0, 3000),
    ("10:30:00", 105.0, 3100),
]
EXPECTED: dict[BarInterval, list[Figures]] = {
    "1m": [
        ("09:30", 100.0, 102.0, 100.0, 102.0, 500, True),
        ("09:31", 99.0, 99.0, 99.0, 99.0, 300, True),
        ("09:34", 101.0, 101.0, 101.0, 101.0, 200, True),
        ("09:35", 103.0, 103.0, 103.0, 103.0, 600, True),
        ("09:45", 98.0, 98.0, 98.0, 98.0, 400, True),
        ("10:30", 105.0, 105.0, 105.0, 105.0, 100, True),
    ],
    "5m": [
        ("09:30", 100.0, 102.0, 99.0, 101.0, 1000, True),
        ("09:35", 103.0, 103.0, 103.0, 103.0, 600, True),
        ("09:45", 98.0, 98.0, 98.0, 98.0, 400, True),
        ("10:30", 105.0, 105.0, 105.0, 105.0, 100, True),
    ],
    "15m": [
        ("09:30", 100.0, 103.0, 99.0, 103.0, 1600, True),
        ("09:45", 98.0, 98.0, 98.0, 98.0, 400, True),
        ("10:30", 105.0, 105.0, 105.0, 105.0, 100, True),
    ],
    "1h": [
        ("09:30", 100.0, 103.0, 98.0, 98.0, 2000, True),
        ("10:30", 105.0, 105.0, 105.0, 105.0, 100, True),
    ],
    "1d": [("09:30", 100.0, 105.0, 98.0, 105.0, 2100, True)],
}


@pytest.fixture
def world(
    database: Database, price_log: SqlPriceLog, nyse: ExchangeCalendarsMarketCalendar, clock: FrozenClock
) -> World:
    return World(database, price_log, nyse, clock)


async def test_known_prices_across_boundaries_give_every_intervals_ohlcv_closed_once_open_bar_last(
    world: World,
) -> None:
    building = world.builder()
    await building.take_over()
    for when, price, volume in PRICES:
        await world.price(when, price, volume)
        await building.step(0)
    # 10:30:00 ET: the 10:30 bars are open, last of each interval; the earlier ones closed by the clock
    for interval in INTERVALS:
        stored = await world.stored(interval)
        assert stored[:-1] == EXPECTED[interval][:-1], interval
        assert stored[-1] == (*EXPECTED[interval][-1][:-1], False), interval
    world.clock.set_now(at("16:00:00"))  # the close: no price, the clock closes what is due
    await building.step(0)
    for interval in INTERVALS:
        assert await world.stored(interval) == EXPECTED[interval], interval
        went = await sent(world.backplane, "AAPL", interval)
        closed = [figures(bar) for bar in went if bar.closed]
        assert closed == EXPECTED[interval], interval  # each closed bar published once, in order
        assert (figures(went[-2]), went[-1].closed) == ((*EXPECTED[interval][-1][:-1], False), True)
    assert await world.store.open_bars() == []
    assert await world.store.position(world.price_log.name) == str(len(PRICES))
    status = building.status()
    assert status["leader"] is True and status["lag"] == 0.0
    assert status["prices_built"] == len(PRICES) and status["late_dropped"] == 0
    assert status["bars_written"] == building.bars_written > 0


async def test_a_backlog_longer_than_a_batch_is_built_as_if_live_not_dropped_as_late(world: World) -> None:
    await world.builder().take_over()  # it stores where it starts, and dies
    for when, price, volume in PRICES:  # published while no instance was building
        await world.price(when, price, volume)
    world.clock.set_now(at("16:00:00"))
    building = world.builder(batch=2)  # taken over hours later: four batches of the log
    await building.take_over()
    while await building.step(0):
        pass
    for interval in INTERVALS:
        assert await world.stored(interval) == EXPECTED[interval], interval
    assert building.late_dropped == 0 and building.corrections == 0


async def test_a_late_price_corrects_its_closed_bar_and_one_too_late_is_dropped(world: World) -> None:
    building = world.builder()
    await building.take_over()
    await world.price("09:30:10", 100.0, 1000)
    await world.price("09:31:10", 101.0, 1100)
    await building.step(0)  # 09:31:10: the 09:30 minute closed
    world.clock.set_now(at("09:31:20"))
    await world.publisher.price(PriceInput(ticker="AAPL", price=90.0, volume=1200, timestamp=at("09:30:50")))
    await building.step(0)
    assert (await world.stored("1m"))[0] == ("09:30", 100.0, 100.0, 90.0, 90.0, 100, True)  # corrected
    assert building.corrections == 1
    closed = [
        (b.low, b.close)
        for b in await sent(world.backplane, "AAPL", "1m")
        if b.closed and datetime.fromisoformat(b.time) == at("09:30:00")
    ]
    assert closed == [(100.0, 100.0), (90.0, 90.0)]  # the stream carries the correction too
    world.clock.set_now(at("09:40:00"))
    await world.publisher.price(PriceInput(ticker="AAPL", price=80.0, volume=1300, timestamp=at("09:20:00")))
    await building.step(0)  # 09:20 is before every bar held: dropped from 1m, 5m, 15m and 1h (no 1d)
    assert building.late_dropped == 4
    assert min(bar.low for bar in await world.store.history("AAPL", "1d", 1)) == 90.0


async def test_a_builder_that_dies_between_publishing_and_storing_is_taken_over_exactly_once(
    world: World,
) -> None:
    class DiesBeforeStoring:
        """The bar store of a process SIGKILLed after it published a batch's closed bars: the write that
        would store them never happens."""

        def __init__(self, store: BarStore) -> None:
            self.store, self.dead = store, False

        async def write(self, bars: Sequence[Bar], position: PositionMove) -> None:
            if self.dead:
                raise ConnectionError("killed")
            await self.store.write(bars, position)

        def __getattr__(self, name: str) -> object:
            return getattr(self.store, name)

    dying = DiesBeforeStoring(world.store)
    first = world.builder(dying)  # type: ignore[arg-type]
    await first.take_over()
    for when, price, volume in PRICES[:4]:
        await world.price(when, price, volume)
        await first.step(0)
    dying.dead = True
    await world.price(*PRICES[4])  # 09:35:00: the 09:34 minute and the 09:30 five minutes close ...
    with pytest.raises(ConnectionError):
        await first.step(0)  # ... are published, and the process dies before they are stored
    assert [figures(b) for b in await sent(world.backplane, "AAPL", "5m") if b.closed] == EXPECTED["5m"][:1]
    assert (await world.stored("5m"))[0][-1] is False  # stored: still open

    successor = world.builder()
    await successor.take_over()  # the stored open bars and position: it replays 09:35:00
    for when, price, volume in PRICES[5:]:
        await world.price(when, price, volume)
        await successor.step(0)
    world.clock.set_now(at("16:00:00"))
    await successor.step(0)
    for interval in INTERVALS:
        assert await world.stored(interval) == EXPECTED[interval], interval
        closed = [figures(bar) for bar in await sent(world.backplane, "AAPL", interval) if bar.closed]
        assert closed == EXPECTED[interval], interval  # none lost, none twice


async def test_changes_gather_for_store_every_and_each_closed_bar_is_written_once(world: World) -> None:
    class Counting:
        """The bar store, counting its writes."""

        def __init__(self, store: BarStore) -> None:
            self.store, self.writes = store, list[list[Bar]]()

        async def write(self, bars: Sequence[Bar], position: PositionMove) -> None:
            self.writes.append(list(bars))
            await self.store.write(bars, position)

        def __getattr__(self, name: str) -> object:
            return getattr(self.store, name)

    counting = Counting(world.store)
    building = world.builder(counting, store_every=1.0)  # type: ignore[arg-type]
    building.publish_every = 1.0
    await building.take_over()
    counting.writes.clear()
    for i in range(240):  # 09:30:00 to 09:31:59.5: a price every half second, and a batch after each
        when = OPEN + timedelta(seconds=i / 2)
        world.clock.set_now(when)
        await world.publisher.price(
            PriceInput(ticker="AAPL", price=100.0 + i % 7, volume=1000 + i, timestamp=when)
        )
        await building.step(0)
    world.clock.set_now(OPEN + timedelta(minutes=2, seconds=1))
    await building.step(0)  # the 09:31 minute closes, and what gathered is written
    assert 100 <= len(counting.writes) <= 121  # about one write a second, not one a batch (241)
    closed = [(bar.interval, bar.start) for write in counting.writes for bar in write if bar.closed]
    assert len(closed) == len(set(closed))  # each closed bar is written once
    assert sorted(closed) == [("1m", OPEN), ("1m", OPEN + timedelta(minutes=1))]
    assert building.saved == building.position and building.prices_built == 240
    # the open bars (one of each interval): their newest figures once a second (not once a price: 5 x 240),
    # and the two closed minutes once each
    assert 5 * 100 + 2 <= building.bars_published <= 5 * 121 + 2
    assert [(m.time, m.closed) for m in await sent(world.backplane, "AAPL", "1m") if m.closed] == [
        ("2026-12-01T14:30:00.000Z", True),
        ("2026-12-01T14:31:00.000Z", True),
    ]
    assert [row[:6] for row in await world.stored("1m")] == [
        ("09:30", 100.0, 106.0, 100.0, 100.0, 119),  # i = 0..119: 100 + i % 7, volume 1000 + i
        ("09:31", 101.0, 106.0, 100.0, 101.0, 120),
    ]


async def test_the_first_builder_builds_the_prices_logged_before_it_took_over(world: World) -> None:
    await world.price("09:30:10", 100.0, 1000)  # a server's first price, before its builder runs
    await world.price("09:30:20", 101.0, 1100)
    building = world.builder()
    await building.take_over()  # nothing stored yet: from the start of the log
    await building.step(0)
    assert await world.stored("1m") == [("09:30", 100.0, 101.0, 100.0, 101.0, 100, False)]


async def test_market_statuses_in_the_log_are_passed_over_and_make_no_bar(world: World) -> None:
    """A halt and a reopening enter the log between prices (alert evaluation holds rules on them); the
    builder steps over them: the same bars as without them, none counted as an unreadable price."""
    building = world.builder()
    await building.take_over()
    await world.price("09:30:10", 100.0, 1000)
    await world.publisher.market_status(MarketStatusInput(status="halted"))
    await world.price("09:30:40", 102.0, 1500)
    await world.publisher.market_status(MarketStatusInput(status="open"))
    kinds = [entry.kind for entry in (await world.price_log.read(None, 10, 0)).entries]
    assert kinds == ["price", "status", "price", "status"]
    await building.step(0)
    assert await world.stored("1m") == [("09:30", 100.0, 102.0, 100.0, 102.0, 500, False)]
    assert building.prices_built == 2 and building.prices_invalid == 0
    assert await world.store.position(world.price_log.name) == "4"  # past the last status too


async def test_a_builder_whose_position_moved_on_stores_nothing_and_reloads(world: World) -> None:
    stale, holder = world.builder(), world.builder()
    await stale.take_over()
    await holder.take_over()
    await world.price(*PRICES[0])
    await holder.step(0)
    await world.price(*PRICES[1])
    with pytest.raises(PositionConflict):
        await stale.step(0)  # it built 09:30:10 and 09:30:40 from the start: refused
    assert await world.stored("1m") == [("09:30", 100.0, 100.0, 100.0, 100.0, 0, False)]
    await stale.take_over()  # reloaded: it goes on from what the holder stored
    await stale.step(0)
    assert await world.stored("1m") == [("09:30", 100.0, 102.0, 100.0, 102.0, 500, False)]


@pytest.mark.parametrize("enabled", [True, False])
async def test_the_server_builds_bars_and_reports_them_in_its_stats_unless_disabled(
    database_url: str, enabled: bool
) -> None:
    settings = Settings(
        database=DatabaseSettings(url=database_url),
        security=SecuritySettings(admin_token="admin-secret"),
        bars=BarSettings(enabled=enabled),
    )
    services = bootstrap(settings, clock=FrozenClock(at("09:30:10")), run_quote_poller=False, plugins={})
    assert (services.bar_building is not None) is enabled
    admin = {"Authorization": "Bearer admin-secret"}
    store = SqlAlchemyBarStore(Database(database_url, migrate_on_start=False))  # this loop's own (the
    # test client runs the app in a loop of its own)
    async with AsyncTestClient(create_app(services=services), base_url="http://legend.localhost") as client:
        response = await client.post(
            "/api/ws/broadcast/price", json={"ticker": "AAPL", "price": 100.5, "volume": 10}, headers=admin
        )
        assert response.status_code == 200

        async def figures() -> dict[str, Any]:
            body: dict[str, Any] = (await client.get("/api/ws/stats", headers=admin)).json()
            return body

        try:
            if not enabled:
                await asyncio.sleep(0.5)
                assert (await figures())["bars"] == {"enabled": False}
                assert await store.open_bars() == []
                return
            async with asyncio.timeout(10):
                while (await figures())["bars"]["prices_built"] < 1:
                    await asyncio.sleep(0.02)
            bars = (await figures())["bars"]
            assert bars["leader"] is True and bars["lag"] == 0.0
            assert bars["bars_written"] == len(INTERVALS)  # one price: its bar of every interval, open
            assert bars["position"] == await store.position(bars["log"])  # stored with the bars
            assert [bar.close for bar in await store.history("AAPL", "1m", 5)] == [100.5]
            metrics = (await client.get("/metrics", headers=admin)).text
            assert "legend_bars_leader 1.0" in metrics and "legend_bars_written_total 5.0" in metrics
        finally:
            await store.database.close()
