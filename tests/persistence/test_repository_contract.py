"""The repository ports' contract, run against every adapter: SQLite and the real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from legend.adapters.sql import Database, SqlAlchemyAlertRepository, SqlAlchemyWatchlistRepository
from legend.domain.alert_index import Observation, Transition, transition
from legend.domain.alert_rules import AlertKind, AlertRule, Rearm, RuleSpec
from legend.ports.repositories import AlertRepository, RuleLimitReached, WatchlistRepository

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
SPEC = RuleSpec(ticker="AAPL", kind=AlertKind.BREAKOUT, threshold=150.0, rearm=Rearm.RECROSS)


@pytest.fixture
def watchlists(database: Database) -> WatchlistRepository:
    return SqlAlchemyWatchlistRepository(database)


@pytest.fixture
def alerts(database: Database) -> AlertRepository:
    return SqlAlchemyAlertRepository(database)


def crossing(rule: AlertRule, price: float, at: datetime = T0) -> Transition:
    change = transition(rule, price, None, Observation(rule.ticker, price, 0.0, 0.0, at))
    assert change is not None
    return change


async def fire(alerts: AlertRepository, rule: AlertRule, at: datetime = T0, owner: str = "a") -> AlertRule:
    """Store a crossing below then above the level; the rule as stored after it fired."""
    down = crossing(rule, 149.0, at)
    up = crossing(down.after, 151.0, at)
    assert up.event is not None
    recorded = await alerts.record([down], owner, at)
    assert recorded.applied == [down]
    recorded = await alerts.record([up], owner, at + timedelta(seconds=30))
    assert [e.key for e in recorded.events] == [up.event.key]
    return up.after


# ───────────────────────────── watchlists ─────────────────────────────


async def test_watchlist_keeps_tickers_in_order_once_each_per_user(watchlists: WatchlistRepository) -> None:
    assert await watchlists.tickers("alice") == []
    assert await watchlists.add("alice", "MSFT", 10) is True
    assert await watchlists.add("alice", "AAPL", 10) is True
    assert await watchlists.add("alice", "MSFT", 10) is False
    assert await watchlists.add("bob", "TSLA", 10) is True
    assert await watchlists.tickers("alice") == ["MSFT", "AAPL"]
    assert await watchlists.tickers("bob") == ["TSLA"]
    assert await watchlists.remove("alice", "MSFT") is True
    assert await watchlists.remove("alice", "MSFT") is False
    assert await watchlists.remove("alice", "TSLA") is False  # bob's
    assert await watchlists.tickers("alice") == ["AAPL"]
    assert await watchlists.tickers("bob") == ["TSLA"]


async def test_watchlist_cap_holds_even_under_concurrent_adds(watchlists: WatchlistRepository) -> None:
    assert await watchlists.add("alice", "AAPL", 2) is True
    results = await asyncio.gather(*(watchlists.add("alice", f"T{i}", 5) for i in range(12)))
    assert results.count(True) == 4 and results.count(None) == 8
    assert len(await watchlists.tickers("alice")) == 5
    assert await watchlists.add("alice", "AAPL", 5) is False  # already there: not refused for the cap
    assert await watchlists.add("bob", "AAPL", 5) is True  # the cap is per user


# ───────────────────────────── rules ─────────────────────────────


async def test_rules_are_created_armed_and_read_back_per_user(alerts: AlertRepository) -> None:
    rule = await alerts.create_rule("alice", SPEC, T0, limit=10)
    assert rule.id > 0
    assert (rule.user_id, rule.ticker, rule.kind, rule.threshold, rule.rearm) == (
        "alice",
        "AAPL",
        AlertKind.BREAKOUT,
        150.0,
        Rearm.RECROSS,
    )
    assert (rule.armed, rule.side, rule.generation, rule.version, rule.last_triggered_at) == (
        True,
        None,
        0,
        1,
        None,
    )
    assert rule.created_at == rule.updated_at == T0
    assert await alerts.rule("alice", rule.id) == rule
    assert await alerts.rule("bob", rule.id) is None
    other = await alerts.create_rule("bob", SPEC, T0, limit=10)
    assert await alerts.rules("alice") == [rule]
    assert await alerts.rules("bob") == [other]
    assert await alerts.rules_by_id([other.id, rule.id, 999]) == [rule, other]


async def test_timestamps_come_back_as_aware_utc(alerts: AlertRepository) -> None:
    local = datetime(2026, 1, 5, 10, 0, 0, 123456, tzinfo=UTC).astimezone(
        __import__("datetime").timezone(timedelta(hours=-5))
    )
    rule = await alerts.create_rule("alice", SPEC, local, limit=10)
    stored = await alerts.rule("alice", rule.id)
    assert stored is not None and stored.created_at == local and stored.created_at.tzinfo == UTC


async def test_rule_limit_is_per_user_and_nothing_is_written_past_it(alerts: AlertRepository) -> None:
    for _ in range(3):
        await alerts.create_rule("alice", SPEC, T0, limit=3)
    with pytest.raises(RuleLimitReached):
        await alerts.create_rule("alice", SPEC, T0, limit=3)
    assert len(await alerts.rules("alice")) == 3
    await alerts.create_rule("bob", SPEC, T0, limit=3)


async def test_update_is_guarded_by_version_and_owner(alerts: AlertRepository) -> None:
    rule = await alerts.create_rule("alice", SPEC, T0, limit=10)
    changed = msgspec.structs.replace(rule, threshold=160.0, version=2, updated_at=T0 + timedelta(minutes=1))
    assert await alerts.update_rule(changed, expected_version=1) is True
    assert await alerts.rule("alice", rule.id) == changed
    stale = msgspec.structs.replace(rule, threshold=170.0, version=2)
    assert await alerts.update_rule(stale, expected_version=1) is False
    stolen = msgspec.structs.replace(changed, user_id="bob", threshold=1.0, version=3)
    assert await alerts.update_rule(stolen, expected_version=2) is False
    assert await alerts.rule("alice", rule.id) == changed


async def test_delete_is_scoped_and_keeps_past_events(alerts: AlertRepository) -> None:
    rule = await alerts.create_rule("alice", SPEC, T0, limit=10)
    await fire(alerts, rule)
    assert await alerts.delete_rule("bob", rule.id) is False
    assert await alerts.delete_rule("alice", rule.id) is True
    assert await alerts.delete_rule("alice", rule.id) is False
    assert await alerts.rule("alice", rule.id) is None
    [event] = await alerts.events("alice", 10)
    assert (event.rule_id, event.key) == (None, f"{rule.id}:1")


async def test_rule_ids_are_never_reused_so_event_keys_stay_unique(alerts: AlertRepository) -> None:
    first = await alerts.create_rule("alice", SPEC, T0, limit=10)
    await fire(alerts, first)
    assert await alerts.delete_rule("alice", first.id)
    second = await alerts.create_rule("alice", SPEC, T0, limit=10)
    assert second.id > first.id
    await fire(alerts, second)
    assert [e.key for e in await alerts.events("alice", 10)] == [f"{second.id}:1", f"{first.id}:1"]


async def test_armed_rules_are_every_users_armed_rules(alerts: AlertRepository) -> None:
    a = await alerts.create_rule("alice", SPEC, T0, limit=10)
    b = await alerts.create_rule("bob", msgspec.structs.replace(SPEC, rearm=Rearm.ONCE), T0, limit=10)
    fired_b = await fire(alerts, b)
    assert fired_b.armed is False
    assert await alerts.armed_rules() == [a]


# ───────────────────────────── evaluation outcomes and the outbox ─────────────────────────────


async def test_record_stores_states_and_events_together(alerts: AlertRepository) -> None:
    rules = [await alerts.create_rule("alice", SPEC, T0, limit=10) for _ in range(3)]
    changes = [crossing(r, 149.0) for r in rules]  # first price: sides learned, nothing fires
    recorded = await alerts.record(changes, "a", T0)
    assert recorded.applied == changes and recorded.events == [] and recorded.conflicts == []
    assert [r.side for r in await alerts.rules("alice")] == [False, False, False]
    ups = [crossing(c.after, 151.0) for c in changes]
    recorded = await alerts.record(ups, "a", T0 + timedelta(seconds=30))
    assert [e.key for e in recorded.events] == [f"{r.id}:1" for r in rules]
    stored = await alerts.rules("alice")
    assert stored == [u.after for u in ups]
    assert all(r.side is True and r.generation == 1 and r.version == 3 for r in stored)
    event = recorded.events[0]
    assert (event.user_id, event.ticker, event.alert_type, event.threshold, event.value, event.price) == (
        "alice",
        "AAPL",
        "breakout",
        150.0,
        151.0,
        151.0,
    )
    assert event.message == "AAPL breaking out at $151.00 (target: $150.00)"
    assert event.published_at is None and event.triggered_at == T0


async def test_record_skips_rules_changed_meanwhile(alerts: AlertRepository) -> None:
    a = await alerts.create_rule("alice", SPEC, T0, limit=10)
    b = await alerts.create_rule("alice", SPEC, T0, limit=10)
    c = await alerts.create_rule("alice", SPEC, T0, limit=10)
    edited = msgspec.structs.replace(b, threshold=155.0, version=2)
    assert await alerts.update_rule(edited, expected_version=1)
    assert await alerts.delete_rule("alice", c.id)
    changes = [crossing(r, 149.0) for r in (a, b, c)]
    recorded = await alerts.record(changes, "a", T0)
    assert recorded.applied == [changes[0]]
    assert sorted(recorded.conflicts) == [b.id, c.id]
    assert await alerts.rule("alice", b.id) == edited  # untouched by the stale transition
    # a trigger computed from a stale copy (version 1; the stored one is at 2) stores nothing
    up = crossing(msgspec.structs.replace(a, side=False), 151.0)
    assert up.event is not None
    recorded = await alerts.record([up], "a", T0)
    assert recorded.applied == [] and recorded.events == [] and recorded.conflicts == [a.id]
    assert await alerts.events("alice", 10) == []


async def test_a_crossing_is_stored_once_even_when_offered_twice(alerts: AlertRepository) -> None:
    rule = await alerts.create_rule("alice", SPEC, T0, limit=10)
    fired = await fire(alerts, rule)
    # a second instance that missed the first one's write offers the same crossing again
    down = crossing(rule, 149.0)
    up = crossing(down.after, 151.0)
    recorded = await alerts.record([up], "b", T0)
    assert recorded.events == [] and recorded.conflicts == [rule.id]
    assert await alerts.rule("alice", rule.id) == fired
    assert len(await alerts.events("alice", 10)) == 1


async def test_claims_publishing_and_takeover(alerts: AlertRepository) -> None:
    rule = await alerts.create_rule("alice", SPEC, T0, limit=10)
    await fire(alerts, rule, owner="a")  # claimed by "a" until T0 + 30 s
    assert await alerts.claim_unpublished("b", T0, T0 + timedelta(seconds=30), 10) == []
    [mine] = await alerts.claim_unpublished("a", T0, T0 + timedelta(seconds=30), 10)
    expired = T0 + timedelta(seconds=31)
    [taken] = await alerts.claim_unpublished("b", expired, expired + timedelta(seconds=30), 10)
    assert taken.id == mine.id
    assert await alerts.claim_unpublished("a", expired, expired, 10) == []  # b holds it now
    [forced] = await alerts.claim_unpublished("c", expired, expired, 10, takeover=True)
    assert forced.id == mine.id
    await alerts.mark_published([forced.id], expired)
    assert await alerts.claim_unpublished("c", expired, expired, 10, takeover=True) == []
    [event] = await alerts.events("alice", 10)
    assert event.published_at == expired


async def test_claims_come_oldest_first_in_batches(alerts: AlertRepository) -> None:
    rules = [await alerts.create_rule("alice", SPEC, T0, limit=10) for _ in range(5)]
    for rule in rules:
        await fire(alerts, rule)
    first = await alerts.claim_unpublished("a", T0, T0, 3)
    assert [e.rule_id for e in first] == [r.id for r in rules[:3]]
    await alerts.mark_published([e.id for e in first], T0)
    rest = await alerts.claim_unpublished("a", T0, T0, 3)
    assert [e.rule_id for e in rest] == [r.id for r in rules[3:]]


async def test_events_are_per_user_newest_first_with_pages(alerts: AlertRepository) -> None:
    mine = [await alerts.create_rule("alice", SPEC, T0, limit=10) for _ in range(5)]
    theirs = await alerts.create_rule("bob", SPEC, T0, limit=10)
    for rule in [*mine[:2], theirs, *mine[2:]]:
        await fire(alerts, rule)
    page = await alerts.events("alice", 3)
    assert [e.rule_id for e in page] == [r.id for r in reversed(mine)][:3]
    rest = await alerts.events("alice", 3, before=page[-1].id)
    assert [e.rule_id for e in rest] == [mine[1].id, mine[0].id]
    assert [e.user_id for e in await alerts.events("bob", 10)] == ["bob"]
    assert await alerts.events("carol", 10) == []


async def test_many_side_changes_are_stored_in_bulk_and_conflicts_found(alerts: AlertRepository) -> None:
    rules = [await alerts.create_rule("alice", SPEC, T0, limit=2000) for _ in range(600)]  # two chunks
    edited = msgspec.structs.replace(rules[550], threshold=155.0, version=2)
    assert await alerts.update_rule(edited, expected_version=1)
    changes = [crossing(r, 149.0) for r in rules]
    recorded = await alerts.record(changes, "a", T0)
    assert recorded.conflicts == [rules[550].id]
    assert len(recorded.applied) == 599
    stored = await alerts.rules("alice")
    assert [r.side for r in stored].count(False) == 599 and stored[550] == edited
