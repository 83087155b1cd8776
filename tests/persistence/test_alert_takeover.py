"""A crash or takeover in the middle of a window or a run of bars: the successor rebuilds what the rules
compare with from the price log (and the stored bars), so that it fires exactly what the crashed instance
would have fired: never twice, never a crossing missed. The single server's durable log in the database,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.sql import Database
from legend.bootstrap import Services, bootstrap
from legend.domain.alert_rules import AlertKind, Disarmed, Rearm, RuleSpec, Session
from legend.domain.inputs import MarketStatusInput, PriceInput
from legend.settings import Settings


def services(database: Database, clock: FrozenClock) -> Services:
    return bootstrap(Settings(), clock=clock, database=database, run_quote_poller=False, plugins={})


async def started(database: Database, clock: FrozenClock) -> Services:
    server = services(database, clock)
    await server.streaming.start()  # the backplane and its log; evaluation is driven by hand
    await server.alerting.evaluation.take_over()
    return server


async def publish(server: Services, clock: FrozenClock, price: float, seconds: float = 10.0) -> list[str]:
    """A price ``seconds`` after the last one; the keys of the triggers its evaluation fired."""
    clock.advance(seconds)
    await server.publisher.price(PriceInput(ticker="AAPL", price=price, timestamp=clock.now()))
    return [event.key for event in await server.alerting.evaluation.step(0)]


async def test_a_window_survives_a_crash_in_the_middle_of_it(database: Database, clock: FrozenClock) -> None:
    first = await started(database, clock)
    spec = RuleSpec(
        ticker="AAPL",
        kind=AlertKind.MOVING_UP,
        threshold=2.0,
        window_seconds=60,
        rearm=Rearm.RECROSS,
        session=Session.ANY,
    )
    rule = await first.alerting.create_rule("alice", spec)
    assert await publish(first, clock, 101.0) == []
    assert await publish(first, clock, 100.0) == []  # the low of the window
    assert await publish(first, clock, 101.5) == []
    # the process dies; its successor knows the low only from the log
    second = await started(database, clock)
    assert second.alerting.evaluation.warm_up.replayed >= 3
    assert await publish(second, clock, 102.0) == [f"{rule.id}:1"]  # 2.00 above the low, 20 s later
    third = await started(database, clock)  # and again: the trigger is stored with the position
    assert await publish(third, clock, 102.5) == []
    assert await publish(third, clock, 99.0, seconds=70) == []  # the window moved on
    assert await publish(third, clock, 101.0) == [f"{rule.id}:2"]
    await third.backplane.stop()


async def test_a_moving_average_survives_a_crash_between_bar_closes(
    database: Database, clock: FrozenClock
) -> None:
    first = await started(database, clock)
    spec = RuleSpec(
        ticker="AAPL",
        kind=AlertKind.SMA_CROSS_UP,
        interval="1m",
        period=3,
        rearm=Rearm.RECROSS,
        session=Session.ANY,
    )
    rule = await first.alerting.create_rule("alice", spec)
    for price in (10.0, 9.0, 8.0):  # one bar a minute: warm-up, then below its average
        assert await publish(first, clock, price, seconds=60) == []
    second = await started(database, clock)
    # the bar of 8 closes with the next price; then 9.5 closes above mean(9, 8, 9.5)
    assert await publish(second, clock, 9.5, seconds=60) == []
    assert await publish(second, clock, 9.5, seconds=60) == [f"{rule.id}:1"]
    await second.backplane.stop()


async def test_a_halt_survives_a_crash(database: Database, clock: FrozenClock) -> None:
    first = await started(database, clock)
    spec = RuleSpec(
        ticker="AAPL",
        kind=AlertKind.PRICE_ABOVE,
        threshold=100.0,
        window_seconds=None,
        rearm=Rearm.RECROSS,
        session=Session.ANY,
    )
    rule = await first.alerting.create_rule("alice", spec)
    moving = RuleSpec(
        ticker="AAPL", kind=AlertKind.MOVING_UP, threshold=50.0, window_seconds=600, session=Session.ANY
    )  # a window: the successor replays the log
    await first.alerting.create_rule("alice", moving)
    assert await publish(first, clock, 99.0) == []
    await first.publisher.market_status(MarketStatusInput(status="halted"))
    assert await publish(first, clock, 99.5) == []
    second = await started(database, clock)
    assert await publish(second, clock, 101.0) == []  # still halted: the successor read it from the log
    await second.publisher.market_status(MarketStatusInput(status="open"))
    assert await publish(second, clock, 101.5) == [f"{rule.id}:1"]
    await second.backplane.stop()


async def test_a_new_rule_s_window_covers_the_prices_before_it(
    database: Database, clock: FrozenClock
) -> None:
    server = await started(database, clock)
    for price in (100.0, 99.0, 100.5):
        assert await publish(server, clock, price) == []
    spec = RuleSpec(
        ticker="AAPL", kind=AlertKind.MOVING_UP, threshold=2.0, window_seconds=60, session=Session.ANY
    )
    rule = await server.alerting.create_rule("alice", spec)
    assert await publish(server, clock, 101.0) == [f"{rule.id}:1"]  # 2.00 above the 99 of 20 s before it
    await server.backplane.stop()


async def test_a_price_stamped_before_the_expiry_that_arrives_after_it_fires_nothing(
    database: Database, clock: FrozenClock
) -> None:
    server = await started(database, clock)
    expiry = clock.now() + timedelta(seconds=30)
    spec = RuleSpec(
        ticker="AAPL", kind=AlertKind.PRICE_ABOVE, threshold=100.0, session=Session.ANY, expires_at=expiry
    )
    rule = await server.alerting.create_rule("alice", spec)
    assert await publish(server, clock, 99.0) == []
    clock.advance(60)  # past the expiry; the price comes now, stamped 20 s before it
    stamped = expiry - timedelta(seconds=20)
    await server.publisher.price(PriceInput(ticker="AAPL", price=101.0, timestamp=stamped))
    assert await server.alerting.evaluation.step(0) == []
    stored = await server.alerting.rule("alice", rule.id)
    assert stored is not None and (stored.armed, stored.disarmed) == (False, Disarmed.EXPIRY)
    assert server.alerting.state(stored) == ("expired", None)
    await server.backplane.stop()
