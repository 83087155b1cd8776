"""The PriceLog contract: the in-memory log, the database's (SQLite, PostgreSQL) and the Redis stream (a real
``redis-server``) keep the same entries in the same order and read them back the same way.

Each log is fed as the server feeds it: through its backplane's publish (a price, a market status, any
other message) and ``note_rule_change``. What enters it, and as what, is ``domain.prices.price_log_kind``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from legend.adapters.clock.system import SystemClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.adapters.memory.price_log import MemoryPriceLog
from legend.adapters.redis import RedisBackplane
from legend.adapters.sql import Database
from legend.adapters.sql import price_log as sql_price_log
from legend.adapters.sql.price_log import SqlPriceLog
from legend.domain.channels import ChannelRegistry
from legend.domain.inputs import MarketStatusInput, PatternInput, PriceInput
from legend.domain.market import MarketState
from legend.domain.stats import Counters
from legend.ports.backplane import Backplane, Outgoing
from legend.ports.price_log import LogEntry, LogRead, PriceLog
from legend.services.streaming.publisher import Publisher
from legend.settings import RedisSettings
from tests.contract.conftest import eventually
from tests.persistence.conftest import _truncate, sqlite_copy
from tests.support.postgres import run_sync
from tests.support.redis_server import RedisServer

LOGS = ["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "redis"]
_ids = itertools.count(1)


class Subject:
    """One log under test, the backplane that appends to it, and a publisher on that backplane."""

    def __init__(self, backplane: Backplane, log: PriceLog, redis: RedisServer | None = None) -> None:
        self.backplane = backplane
        self.log = log
        self.redis = redis
        self.publisher = Publisher(backplane, ChannelRegistry(), SystemClock(), Counters(), history_size=10)

    async def price(self, value: float) -> None:
        await self.publisher.price(PriceInput(ticker="AAPL", price=value))

    async def status(self, status: str) -> None:
        await self.publisher.market_status(MarketStatusInput(status=status))  # type: ignore[arg-type]

    async def entries(self) -> list[LogEntry]:
        """Everything the log holds, oldest first."""
        return (await self.log.read(None, 1000, 0)).entries


class Logs:
    """Makes the subject of one kind of log; ``close`` stops what was made."""

    def __init__(self, kind: str, request: pytest.FixtureRequest, directory: Path) -> None:
        self.kind = kind
        self.request = request
        self.directory = directory
        self._backplanes: list[Backplane] = []
        self._database: Database | None = None
        self._redis: RedisServer | None = None

    async def make(self, log_size: int = 100_000) -> Subject:
        backplane: Backplane
        if self.kind == "memory":
            backplane = InMemoryBackplane(SystemClock(), price_log=MemoryPriceLog(SystemClock(), log_size))
        elif self.kind == "redis":
            if self._redis is None:  # one entry a stream node: MAXLEN ~ trims to exactly log_size
                self._redis = RedisServer(args=["--stream-node-max-entries", "1"]).start()
            settings = RedisSettings(url=self._redis.url)
            backplane = RedisBackplane(settings, instance_id=f"log{next(_ids)}", log_size=log_size)
        else:
            if self._database is None:
                self._database = Database(self._database_url(), migrate_on_start=False)
                await self._database.start()
            log = SqlPriceLog(self._database, SystemClock(), log_size)
            backplane = InMemoryBackplane(SystemClock(), price_log=log)
        await backplane.start(lambda envelope: None)
        self._backplanes.append(backplane)
        return Subject(backplane, backplane, self._redis)

    def _database_url(self) -> str:
        if self.kind == "sqlite":
            return sqlite_copy(self.request.getfixturevalue("sqlite_template"), self.directory)
        url: str = self.request.getfixturevalue("postgres_migrated")
        run_sync(_truncate(url))
        return url

    async def close(self) -> None:
        for backplane in self._backplanes:
            async with asyncio.timeout(10):
                await backplane.stop()
        if self._database is not None:
            await self._database.close()
        if self._redis is not None:
            self._redis.close()


@pytest.fixture(params=LOGS)
async def logs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Logs]:
    made = Logs(request.param, request, tmp_path)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def redis_logs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Logs]:
    made = Logs("redis", request, tmp_path)
    try:
        yield made
    finally:
        await made.close()


def body(entry: LogEntry) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(entry.data)
    return decoded


# ───────────── what enters the log ─────────────


async def test_a_market_status_enters_the_log_as_a_status_between_the_prices_around_it(logs: Logs) -> None:
    subject = await logs.make()
    await subject.price(149.0)
    await subject.status("halted")
    pattern = PatternInput(
        ticker="AAPL", pattern_type="doji", score=50, entry_price=10, stop_price=9, target_price=12
    )
    await subject.publisher.pattern(pattern)  # not a price or a status: not in the log
    elsewhere = b'{"type":"market_status","status":"halted","channel":"news:halts"}'  # a plugin's stream
    await subject.backplane.publish(Outgoing("news:halts", "news", "market_status", elsewhere, 10))
    await subject.log.note_rule_change(7)
    await subject.price(151.0)
    opened = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    await subject.publisher.market_status(
        MarketState(at=opened, is_open=True, next_open=None, next_close=None)
    )
    await subject.price(152.0)

    entries = await subject.entries()
    assert [e.kind for e in entries] == ["price", "status", "rule", "price", "status", "price"]
    assert [e.data for e in entries if e.kind == "rule"] == ["7"]
    assert [body(e)["price"] for e in entries if e.kind == "price"] == [149.0, 151.0, 152.0]
    halted, opening = (body(e) for e in entries if e.kind == "status")
    assert (halted["type"], halted["status"], halted["channel"]) == (
        "market_status",
        "halted",
        "market_status",
    )
    assert (opening["status"], opening["timestamp"]) == ("open", "2026-03-02T14:30:00.000Z")
    assert [e.at for e in entries] == sorted(e.at for e in entries)


async def test_an_external_programs_market_status_enters_the_redis_log_once(redis_logs: Logs) -> None:
    """Another program ``PUBLISH``es a market status in the specification's format: every instance hears
    it, one sequences it, and it enters the log in that same step, once."""
    first, second = await redis_logs.make(), await redis_logs.make()
    assert isinstance(first.backplane, RedisBackplane) and isinstance(second.backplane, RedisBackplane)
    await first.price(149.0)
    assert first.redis is not None
    async with Redis.from_url(first.redis.url) as raw:
        message = {"type": "market_status", "status": "halted", "next_open": None, "next_close": None}
        assert await raw.publish("market_status", json.dumps(message)) == 2  # both instances listen

    def decided() -> bool:
        return sum(b.external.resequenced + b.external.duplicates for b in backplanes) == 2

    backplanes = (first.backplane, second.backplane)
    await eventually(decided, what="both instances decided about the message")
    await first.price(151.0)
    entries = await first.entries()
    assert [e.kind for e in entries] == ["price", "status", "price"]
    assert (body(entries[1])["status"], body(entries[1])["channel"]) == ("halted", "market_status")


# ───────────── reading back by time ─────────────


async def filled(subject: Subject, count: int) -> list[str]:
    """Append ``count`` entries of every kind, each in a millisecond of its own (Redis's ids are the
    server's milliseconds); the position of each, in order."""
    positions = []
    for n in range(count):
        if n % 4 == 1:
            await subject.status("halted" if n % 8 == 1 else "open")
        elif n % 4 == 2:
            await subject.log.note_rule_change(n)
        else:
            await subject.price(100.0 + n)
        positions.append(await subject.log.end())
        await asyncio.sleep(0.003)
    return positions


async def test_read_back_gives_what_came_since_a_time_up_to_a_position_oldest_first(logs: Logs) -> None:
    subject = await logs.make()
    back = subject.log.read_back
    assert await back(None, 0.0, 10) == LogRead([])  # an empty log
    await filled(subject, 8)
    entries = await subject.entries()
    assert [e.kind for e in entries] == ["price", "status", "rule", "price"] * 2
    assert await back(None, 0.0, 100) == LogRead(entries)
    assert await back(None, entries[3].at, 100) == LogRead(entries[3:])  # appended at ``since``: in
    between = (entries[2].at + entries[3].at) / 2
    assert await back(None, between, 100) == LogRead(entries[3:])
    assert await back(entries[5].id, 0.0, 100) == LogRead(entries[:6])  # up to and with ``until``
    assert await back(entries[5].id, entries[3].at, 100) == LogRead(entries[3:6])
    assert await back(entries[0].id, entries[1].at, 100) == LogRead([])
    assert await back(None, entries[-1].at + 1.0, 100) == LogRead([])


async def test_read_back_past_its_limit_gives_the_newest(logs: Logs) -> None:
    subject = await logs.make()
    await filled(subject, 8)
    entries = await subject.entries()
    back = subject.log.read_back
    assert await back(None, 0.0, 3) == LogRead(entries[-3:])
    assert await back(entries[4].id, 0.0, 2) == LogRead(entries[3:5])
    assert await back(entries[4].id, entries[4].at, 2) == LogRead(entries[4:5])
    assert await back(None, 0.0, 1) == LogRead(entries[-1:])


async def test_read_back_on_a_trimmed_log_says_when_it_no_longer_reaches_back(
    logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database's log also keeps its newest entries in memory, trimmed or not: fewer than it stores
    # here, so that what the table lost shows (tests/persistence/test_price_log.py reads the tail).
    monkeypatch.setattr(sql_price_log, "TAIL", 3)
    subject = await logs.make(log_size=5)
    positions = await filled(subject, 12)
    kept = await subject.entries()
    assert [e.id for e in kept] == positions[-5:]  # the log keeps its newest five
    back = subject.log.read_back
    assert await back(None, 0.0, 100) == LogRead(kept, missed=True)  # what came since 0 is partly gone
    assert await back(None, 0.0, 2) == LogRead(kept[-2:], missed=True)
    assert await back(positions[0], 0.0, 100) == LogRead([], missed=True)  # a position trimmed away
    # at the oldest entry left, a trimmed one may have shared its instant: the log cannot tell
    assert (await back(None, kept[0].at, 100)).missed
    assert await back(None, kept[1].at, 100) == LogRead(kept[1:])  # all of it still there
    assert await back(kept[3].id, kept[1].at, 100) == LogRead(kept[1:4])


async def test_read_back_refuses_what_is_not_a_position_or_a_limit(logs: Logs) -> None:
    subject = await logs.make()
    await subject.price(100.0)
    for position in ("x", "1-2-3", "", " 1", "-1"):
        with pytest.raises(ValueError, match="not a position"):
            await subject.log.read_back(position, 0.0, 10)
    with pytest.raises(ValueError, match="limit"):
        await subject.log.read_back(None, 0.0, 0)
    [entry] = (await subject.log.read_back(None, 0.0, 10)).entries
    huge = "9" * 20 if logs.kind != "redis" else f"{2**64 - 1}-{2**64 - 1}"  # past any entry: up to all
    assert await subject.log.read_back(huge, 0.0, 10) == LogRead([entry])
    if logs.kind == "redis":
        with pytest.raises(ValueError, match="not a position"):
            await subject.log.read_back(f"{2**64}-0", 0.0, 10)
