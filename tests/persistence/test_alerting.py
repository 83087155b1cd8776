"""Trigger delivery end to end inside the process, on SQLite and PostgreSQL: each crossing fires exactly once,
on the owner's private stream only, across re-crossings, restarts, crashes and backplane outages."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.adapters.sql import Database, SqlAlchemyAlertRepository
from legend.domain.alert_rules import AlertEvent, AlertKind, AlertRule, Rearm, RulePatch, RuleSpec
from legend.domain.channels import ChannelRegistry
from legend.domain.inputs import PriceInput
from legend.domain.prices import LoggedPrice
from legend.domain.stats import Counters
from legend.ports.backplane import BackplaneUnavailable
from legend.services.alerts.service import AlertingService
from legend.services.streaming.publisher import Publisher
from tests.support.backplanes import InterceptedBackplane

from .conftest import alerting_service


class Crash(BaseException):
    """The process dies here: nothing after this point runs, no handler catches it."""


class CrashingBackplane(InterceptedBackplane):
    """The memory backplane, but the process dies on the first publish of an alert trigger."""

    async def before_publish(self, stream: str) -> None:
        if stream.startswith("alerts"):
            raise Crash


class FlakyBackplane(InterceptedBackplane):
    """The memory backplane, with an outage switch (as when Redis is down)."""

    down = False

    async def before_publish(self, stream: str) -> None:
        if self.down:
            raise BackplaneUnavailable("redis is down")


class CrashOnMark(SqlAlchemyAlertRepository):
    """The SQL repository, but the process dies after publishing, before marking the trigger published."""

    async def mark_published(self, event_ids: Sequence[int], at: datetime) -> None:
        if event_ids:
            raise Crash


class MarkFailsOnce(SqlAlchemyAlertRepository):
    """The SQL repository, but the first attempt to mark triggers published fails (the database blinked)."""

    failures = 1

    async def mark_published(self, event_ids: Sequence[int], at: datetime) -> None:
        if event_ids and self.failures:
            self.failures -= 1
            raise OSError("connection to the database lost")
        await super().mark_published(event_ids, at)


class StuckStore(SqlAlchemyAlertRepository):
    """The SQL repository, but storing an evaluated batch waits until ``go`` is set (a database that hangs)."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.go = asyncio.Event()
        self.storing = asyncio.Event()

    async def record_changes(self, *args: Any, **kwargs: Any) -> Any:
        self.storing.set()
        await self.go.wait()
        return await super().record_changes(*args, **kwargs)


def price(value: float, ticker: str = "AAPL") -> LoggedPrice:
    return LoggedPrice(ticker=ticker, price=value, change_percent=0.0, volume=1000.0)


async def messages(backplane: InMemoryBackplane, stream: str) -> list[dict[str, Any]]:
    replay = await backplane.replay(stream, None)
    return [msgspec.json.decode(e.text) for e in replay.envelopes]


async def observe_all(service: AlertingService, *values: float) -> list[AlertEvent]:
    fired: list[AlertEvent] = []
    for value in values:
        fired += await service.observe(price(value))
    return fired


BREAKOUT = RuleSpec(ticker="aapl", kind=AlertKind.BREAKOUT, threshold=150.0, rearm=Rearm.RECROSS)


async def armed(service: AlertingService) -> AlertRule:
    """Start ``service`` with alice's BREAKOUT rule and a first price below its level: the next price over
    it is a crossing."""
    await service.start()
    rule = await service.create_rule("alice", BREAKOUT)
    await service.observe(price(149))
    return rule


async def test_a_crossing_fires_once_and_a_recross_fires_again_for_its_owner_only(
    database: Database, clock: FrozenClock
) -> None:
    backplane = InMemoryBackplane()
    service = alerting_service(database, clock, backplane)
    await service.start()
    rule = await service.create_rule("alice", BREAKOUT)
    await service.create_rule("bob", RuleSpec(ticker="AAPL", kind=AlertKind.PRICE_BELOW, threshold=100.0))
    assert [e.key for e in await observe_all(service, 149, 151, 152, 150.5)] == [f"{rule.id}:1"]
    assert await observe_all(service, 149) == []
    assert [e.key for e in await observe_all(service, 151)] == [f"{rule.id}:2"]
    received = await messages(backplane, "alerts:user:alice")
    assert [m["alert_id"] for m in received] == [f"{rule.id}:1", f"{rule.id}:2"]
    first = received[0]
    assert {
        k: first[k] for k in ("type", "ticker", "alert_type", "trigger_price", "current_price", "message")
    } == {
        "type": "alert_trigger",
        "ticker": "AAPL",
        "alert_type": "breakout",
        "trigger_price": 150.0,
        "current_price": 151.0,
        "message": "AAPL breaking out at $151.00 (target: $150.00)",
    }
    assert first["timestamp"] == "2026-01-05T15:00:00.000Z" and first["channel"] == "alerts:user:alice"
    assert await messages(backplane, "alerts:user:bob") == []
    assert await messages(backplane, "alerts") == []  # the platform-wide stream never carries user triggers
    events = await service.events("alice", 10)
    assert [(e.key, e.published_at is not None) for e in events] == [
        (f"{rule.id}:2", True),
        (f"{rule.id}:1", True),
    ]
    assert await service.events("bob", 10) == []
    await service.stop()


async def test_a_restart_never_fires_the_same_crossing_twice_and_sees_crossings_across_it(
    database_url: str, clock: FrozenClock
) -> None:
    first_db = Database(database_url)
    first = alerting_service(first_db, clock)
    await first.start()
    breakout = await first.create_rule("alice", BREAKOUT)
    later = await first.create_rule(
        "alice", RuleSpec(ticker="AAPL", kind=AlertKind.PRICE_ABOVE, threshold=155.0, rearm=Rearm.RECROSS)
    )
    assert [e.key for e in await observe_all(first, 149, 151, 152)] == [f"{breakout.id}:1"]
    await first.stop()
    await first_db.close()

    second_db = Database(database_url)
    backplane = InMemoryBackplane()
    second = alerting_service(second_db, clock, backplane, instance_id="instance-b")
    await second.start()
    # 152 -> 156 across the restart: the breakout is still past its level (no new crossing), the 155 rule
    # was below it before the restart and is above now (a crossing, exactly once)
    assert [e.key for e in await observe_all(second, 156, 157)] == [f"{later.id}:1"]
    assert [e.key for e in await observe_all(second, 149, 151)] == [f"{breakout.id}:2"]
    assert [m["alert_id"] for m in await messages(backplane, "alerts:user:alice")] == [
        f"{later.id}:1",
        f"{breakout.id}:2",
    ]
    assert len(await second.events("alice", 10)) == 3
    await second.stop()
    await second_db.close()


async def test_a_crash_between_write_and_publish_is_delivered_once_on_recovery(
    database_url: str, clock: FrozenClock
) -> None:
    crashed_db = Database(database_url)
    crashed = alerting_service(crashed_db, clock, CrashingBackplane())
    rule = await armed(crashed)
    with pytest.raises(Crash):
        await crashed.observe(price(151))
    await crashed.stop()
    await crashed_db.close()  # the process is gone; its claim on the trigger is still in the database

    db = Database(database_url)
    [stored] = await SqlAlchemyAlertRepository(db).events("alice", 10)
    assert stored.key == f"{rule.id}:1" and stored.published_at is None

    backplane = InMemoryBackplane()
    recovered = alerting_service(db, clock, backplane, instance_id="instance-b")
    await recovered.start()  # one instance (memory backplane): takes over the dead process's claim at once
    assert [m["alert_id"] for m in await messages(backplane, "alerts:user:alice")] == [f"{rule.id}:1"]
    [event] = await recovered.events("alice", 10)
    assert event.published_at is not None
    assert await observe_all(recovered, 152) == []  # and the crossing is not evaluated again
    await recovered.stop()

    again = alerting_service(db, clock, backplane, instance_id="instance-c")
    await again.start()
    assert len(await messages(backplane, "alerts:user:alice")) == 1
    await again.stop()
    await db.close()


async def test_a_crash_after_publish_before_marking_is_not_sent_again_while_history_has_it(
    database_url: str, clock: FrozenClock
) -> None:
    backplane = InMemoryBackplane()  # outlives the process, as Redis does
    crashed_db = Database(database_url)
    crashed = alerting_service(crashed_db, clock, backplane)
    crashed.repository = CrashOnMark(crashed_db)
    rule = await armed(crashed)
    with pytest.raises(Crash):
        await crashed.observe(price(151))
    await crashed.stop()
    await crashed_db.close()
    assert len(await messages(backplane, "alerts:user:alice")) == 1

    db = Database(database_url)
    recovered = alerting_service(db, clock, backplane, instance_id="instance-b")
    await recovered.start()
    assert [m["alert_id"] for m in await messages(backplane, "alerts:user:alice")] == [f"{rule.id}:1"]
    [event] = await recovered.events("alice", 10)
    assert event.published_at is not None
    await recovered.stop()
    await db.close()


async def test_a_backplane_outage_delays_a_trigger_but_never_loses_or_repeats_it(
    database: Database, clock: FrozenClock
) -> None:
    backplane = FlakyBackplane()
    service = alerting_service(database, clock, backplane)
    rule = await armed(service)
    backplane.down = True
    [stored] = await service.observe(price(151))
    assert stored.key == f"{rule.id}:1"
    assert service.status()["backlog"] is True and service.publish_failures == 1
    assert await service.deliver_pending() == 0
    backplane.down = False
    assert await service.deliver_pending() == 1
    assert await service.deliver_pending() == 0
    assert [m["alert_id"] for m in await messages(backplane, "alerts:user:alice")] == [f"{rule.id}:1"]
    assert service.status()["backlog"] is False
    await service.stop()


async def test_a_trigger_published_but_not_marked_is_marked_later_without_a_second_message(
    database: Database, clock: FrozenClock
) -> None:
    backplane = InMemoryBackplane()
    service = alerting_service(database, clock, backplane)
    service.repository = MarkFailsOnce(database)
    rule = await armed(service)
    [stored] = await service.observe(price(151))  # published; marking it failed; the error is contained
    assert service.status()["backlog"] is True
    assert await service.deliver_pending() == 1  # found in the stream's history: marked, not sent again
    assert [m["alert_id"] for m in await messages(backplane, "alerts:user:alice")] == [f"{rule.id}:1"]
    [event] = await service.events("alice", 10)
    assert event.id == stored.id and event.published_at is not None
    assert service.status()["backlog"] is False
    await service.stop()


async def test_in_a_cluster_another_instance_waits_for_a_live_claim(
    database_url: str, clock: FrozenClock
) -> None:
    crashed_db = Database(database_url)
    crashed = alerting_service(crashed_db, clock, CrashingBackplane(), instance_id="a", single_instance=False)
    rule = await armed(crashed)
    with pytest.raises(Crash):
        await crashed.observe(price(151))
    await crashed.stop()
    await crashed_db.close()

    db = Database(database_url)
    backplane = InMemoryBackplane()
    other = alerting_service(db, clock, backplane, instance_id="b", single_instance=False)
    await other.start()
    assert await messages(backplane, "alerts:user:alice") == []  # "a" might still be publishing it
    clock.advance(31)  # its claim (30 s) expires
    assert await other.deliver_pending() == 1
    assert await other.deliver_pending() == 0
    assert [m["alert_id"] for m in await messages(backplane, "alerts:user:alice")] == [f"{rule.id}:1"]
    await other.stop()
    await db.close()


async def test_two_instances_seeing_the_same_crossing_store_and_publish_it_once(
    database_url: str, clock: FrozenClock
) -> None:
    dbs = [Database(database_url), Database(database_url)]
    backplanes = [InMemoryBackplane(), InMemoryBackplane()]
    a, b = (
        alerting_service(db, clock, bp, instance_id=name, single_instance=False)
        for db, bp, name in zip(dbs, backplanes, "ab", strict=True)
    )
    await a.start()
    rule = await a.create_rule("alice", BREAKOUT)
    await b.start()
    for _ in range(3):
        await asyncio.gather(a.observe(price(149)), b.observe(price(149)))
        results = await asyncio.gather(a.observe(price(151)), b.observe(price(151)))
        assert sum(len(r) for r in results) == 1
    published = [m for bp in backplanes for m in await messages(bp, "alerts:user:alice")]
    assert sorted(m["alert_id"] for m in published) == [f"{rule.id}:1", f"{rule.id}:2", f"{rule.id}:3"]
    assert [e.key for e in await a.events("alice", 10)] == [f"{rule.id}:3", f"{rule.id}:2", f"{rule.id}:1"]
    for service, db in zip((a, b), dbs, strict=True):
        await service.stop()
        await db.close()


async def test_rule_changes_take_effect_at_the_next_price(database: Database, clock: FrozenClock) -> None:
    service = alerting_service(database, clock)
    await service.start()
    once = await service.create_rule(
        "alice", RuleSpec(ticker="AAPL", kind=AlertKind.PRICE_ABOVE, threshold=150.0)
    )
    assert [e.key for e in await observe_all(service, 149, 151)] == [f"{once.id}:1"]
    assert await observe_all(service, 149, 151) == []  # once: disarmed
    stored = await service.rule("alice", once.id)
    assert stored is not None and not stored.armed
    moved = await service.update_rule("alice", once.id, RulePatch(threshold=160.0))
    assert moved is not None and moved.armed and moved.side is None
    assert await observe_all(service, 155) == []
    assert [e.key for e in await observe_all(service, 161)] == [f"{once.id}:2"]
    assert await service.update_rule("bob", once.id, RulePatch(armed=True)) is None
    other = await service.create_rule("alice", BREAKOUT)
    await observe_all(service, 149)
    assert await service.delete_rule("alice", other.id)
    assert await observe_all(service, 151) == []
    await service.stop()


async def test_reload_picks_up_rules_created_on_another_instance(
    database_url: str, clock: FrozenClock
) -> None:
    dbs = [Database(database_url), Database(database_url)]
    a = alerting_service(dbs[0], clock, single_instance=False, instance_id="a")
    b = alerting_service(dbs[1], clock, single_instance=False, instance_id="b")
    await a.start()
    await b.start()
    rule = await b.create_rule("alice", BREAKOUT)
    assert await observe_all(a, 149, 151) == []  # a has not seen the rule yet
    await a.reload()
    assert [e.key for e in await observe_all(a, 149, 152)] == [f"{rule.id}:1"]
    for service, db in zip((a, b), dbs, strict=True):
        await service.stop()
        await db.close()


async def test_evaluation_lag_is_zero_while_caught_up_and_grows_while_a_batch_is_stuck(
    database: Database, clock: FrozenClock
) -> None:
    """``lag()`` (exported as legend_alert_evaluation_lag_seconds) is how far evaluation is behind the log:
    an hour without prices is no lag, unlike the age of the last price; a stuck batch is."""
    backplane = InMemoryBackplane(clock)
    repository = StuckStore(database)
    publisher = Publisher(backplane, ChannelRegistry(), clock, Counters(), history_size=100)
    service = AlertingService(
        repository,
        publisher,
        backplane,
        clock,
        price_log=backplane,
        cluster=backplane,
        instance_id="a",
        single_instance=True,
    )
    evaluation = service.evaluation
    assert evaluation.lag() is None  # this instance does not evaluate (yet)
    await evaluation.take_over()
    await service.create_rule("alice", BREAKOUT)
    assert await evaluation.step(0) == [] and evaluation.lag() == 0.0
    clock.advance(3600)  # the market is closed: no prices for an hour
    assert await evaluation.step(0) == []
    assert evaluation.lag() == 0.0 and evaluation.status()["lag"] == 0.0
    assert evaluation.status()["last_price_age"] == 3600.0
    for value in (149.0, 151.0):
        await publisher.price(PriceInput(ticker="AAPL", price=value))
    clock.advance(2)
    stepping = asyncio.create_task(evaluation.step(0))
    await asyncio.wait_for(repository.storing.wait(), 10)
    clock.advance(5)
    assert evaluation.lag() == 7.0  # the first price read has waited 7 s and is not taken into account yet
    repository.go.set()
    assert [e.ticker for e in await asyncio.wait_for(stepping, 10)] == ["AAPL"]
    assert evaluation.lag() == 0.0


class HeldBackplane(InterceptedBackplane):
    """The memory backplane, but publishing an alert trigger waits until ``go`` is set (a slow Redis); it
    counts every attempt to publish one, refused or not."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()
        self.holding = asyncio.Event()
        self.attempts = 0

    async def before_publish(self, stream: str) -> None:
        if stream.startswith("alerts"):
            self.attempts += 1
            self.holding.set()
            await self.go.wait()


async def test_a_retry_round_leaves_alone_the_triggers_evaluation_is_publishing(
    database: Database, clock: FrozenClock
) -> None:
    """A retry round takes this instance's own unpublished claims too (those whose publish failed); it must
    not take the ones evaluation stored a moment ago and is still publishing, or each goes out twice (the
    second refused by its once key, but the work and a Redis round trip per trigger are spent). In a
    cluster the round runs every alerts.retry_interval, whether or not a publish failed."""
    backplane = HeldBackplane()
    service = alerting_service(database, clock, backplane, single_instance=False)
    await service.start()
    try:
        await service.create_rule("alice", BREAKOUT)
        await service.observe(price(149))
        crossing = asyncio.create_task(service.observe(price(151)))
        await asyncio.wait_for(backplane.holding.wait(), 10)  # stored, claimed, on its way out
        retry = asyncio.create_task(service.deliver_pending())
        await asyncio.sleep(0.05)
        backplane.go.set()
        [fired] = await asyncio.wait_for(crossing, 10)
        assert await asyncio.wait_for(retry, 10) == 0  # nothing was left for the retry round
        assert backplane.attempts == 1 and service.triggers_published == 1
        assert [m["alert_id"] for m in await messages(backplane, "alerts:user:alice")] == [fired.key]
    finally:
        await service.stop()
