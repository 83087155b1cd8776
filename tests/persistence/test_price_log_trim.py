"""Alert evaluation that falls behind the Redis price log notices it, on a real ``redis-server``.

The log keeps about ``alerts.log_size`` prices (``XADD … MAXLEN ~``). An evaluator whose position was
trimmed away skips what is gone, logs an error and counts a gap (``log_gaps`` in the stats,
``legend_alert_evaluation_log_gaps_total``), and goes on with what is left: a crossing among the kept prices
still fires once (docs/alerts.md, "Falling behind"). Redis 7.0 does not advance the stream's
``max-deleted-entry-id`` when XADD trims, so the adapter reads the gap from the stream itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.sql import Database
from legend.bootstrap import Services, bootstrap
from legend.domain.alert_rules import AlertEvent, AlertKind, Rearm, RuleSpec
from legend.domain.inputs import PriceInput
from legend.settings import AlertSettings, RedisSettings, Settings
from tests.support.redis_server import RedisServer

LOG_SIZE = 1000  # the smallest ``alerts.log_size`` allowed; also the evaluator's batch


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


async def alice_triggers(services: Services) -> list[dict[str, Any]]:
    replay = await services.backplane.replay("alerts:user:alice", None)
    return [msgspec.json.decode(e.text) for e in replay.envelopes]


async def test_an_evaluator_whose_position_was_trimmed_counts_the_gap_and_fires_on_what_is_left(
    database: Database, clock: FrozenClock, redis_server: RedisServer
) -> None:
    settings = Settings(redis=RedisSettings(url=redis_server.url), alerts=AlertSettings(log_size=LOG_SIZE))
    services = bootstrap(settings, clock=clock, database=database, run_quote_poller=False, plugins={})
    assert services.alerting is not None
    alerting, evaluation = services.alerting, services.alerting.evaluation
    await services.streaming.start()  # the backplane; the evaluation loop is driven by hand below
    try:
        rule = await alerting.create_rule(
            "alice", RuleSpec(ticker="AAPL", kind=AlertKind.BREAKOUT, threshold=150.0, rearm=Rearm.RECROSS)
        )
        await evaluation.take_over()  # the position: the newest entry, the rule's creation
        await services.publisher.price(PriceInput(ticker="AAPL", price=149.0))
        assert await evaluation.step(0) == []  # read up to here: the evaluator is caught up
        assert evaluation.status()["log_gaps"] == 0

        # The evaluator falls behind (say its database is down) while the cluster publishes more than
        # the log keeps; the last price crosses the rule.
        for n in range(3 * LOG_SIZE):
            await services.publisher.price(PriceInput(ticker="AAPL", price=140.0 + n % 9))
        await services.publisher.price(PriceInput(ticker="AAPL", price=151.0))

        fired: list[AlertEvent] = []
        for _ in range(10):  # what is left of the log, a batch at a time
            before = evaluation.position
            fired += await evaluation.step(0)
            if evaluation.position == before:
                break
        assert evaluation.status()["log_gaps"] == 1  # noticed once, logged and counted
        assert alerting.status()["prices_dropped"] == 1
        assert [event.key for event in fired] == [f"{rule.id}:1"]  # the kept crossing still fires
        assert [m["current_price"] for m in await alice_triggers(services)] == [151.0]
        assert evaluation.saved == evaluation.position  # and the position past the gap is stored
        assert 0 < evaluation.prices_evaluated < 3 * LOG_SIZE  # the trimmed prices were never evaluated

        assert await evaluation.step(0) == []  # caught up again: no new gap
        assert evaluation.status()["log_gaps"] == 1
    finally:
        await services.backplane.stop()
