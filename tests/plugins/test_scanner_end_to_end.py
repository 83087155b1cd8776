"""The scanner in a real server: prices of the S&P 500 sample (the close of 6 November 2019 and the open of
the 7th, replayed on 1 and 2 December 2026) published on a frozen clock, built into bars by the server's bar
builder, the closed bars handed to the built-in ``scanner`` (``on_bars``), and its ``pattern_alert`` received
once by a real WebSocket client subscribed to ``patterns`` over a real uvicorn."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from legend.adapters.clock.frozen import FrozenClock
from legend.bootstrap import Services
from legend.domain.inputs import PriceInput
from tests.support.inprocess import serving
from tests.support.redis_server import RedisServer, quick_redis_settings
from tests.support.wsclient import connect

from .helpers import eventually, settings_with

NEW_YORK = ZoneInfo("America/New_York")


def at(day: int, hhmmss: str) -> datetime:
    return datetime.fromisoformat(f"2026-12-{day:02d}T{hhmmss}").replace(tzinfo=NEW_YORK)


async def test_a_gap_up_at_the_open_reaches_a_patterns_subscriber_once(
    build: Callable[..., Services],
) -> None:
    clock = FrozenClock(at(1, "15:59:00"))
    services = build({"scanner": {"intervals": ["1m"]}}, clock=clock)
    building = services.bar_building
    assert building is not None
    scanner = services.plugins.records["scanner"]

    async def price(day: int, hhmmss: str, value: float) -> None:
        clock.set_now(at(day, hhmmss))
        await services.publisher.price(PriceInput(ticker="SPX", price=value, timestamp=at(day, hhmmss)))

    async with serving(services) as url:
        client = await connect(url, "trader")
        await client.subscribe("patterns")
        # SP500_NOV2019_IDay.csv, 11/6/2019 15:59: open 3075.69, close 3076.75
        # Each price built before the clock moves on: the builder stores (and counts) what it built once
        # the frozen clock has moved since its last store, so two prices set at once may wait for the next.
        await price(1, "15:59:00", 3075.69)
        await eventually(lambda: building.prices_built >= 1, what="the 15:59 open built")
        await price(1, "15:59:59", 3076.75)
        await eventually(lambda: building.prices_built >= 2, what="the 15:59 bar built")
        # 11/7/2019 9:30: open 3087.02 (0.33% above 3076.75), close 3089.93
        await price(2, "09:30:00", 3087.02)
        await eventually(lambda: building.prices_built >= 3, what="the 09:30 open built")
        await price(2, "09:30:59", 3089.93)
        await eventually(lambda: building.prices_built >= 4, what="the 09:30 bar built")
        clock.set_now(at(2, "09:31:05"))  # the 09:30 bar closes
        alert: dict[str, Any] = await client.expect(
            lambda m: m.get("type") == "pattern_alert" and m.get("pattern_type") == "GAP_UP", timeout=15
        )
        assert alert["ticker"] == "SPX" and alert["channel"] == "patterns"
        assert (alert["entry_price"], alert["stop_price"]) == (3089.93, 3076.75)
        assert alert["target_price"] == round(3089.93 + 2 * (3089.93 - 3076.75), 4)
        assert alert["risk_reward_ratio"] == 2.0 and 5 <= alert["score"] <= 10
        assert "gapped up 0.33% at the open: 3,087.02 vs the prior close 3,076.75 (1m)" in alert["message"]
        clock.set_now(at(2, "09:33:05"))  # another bar boundary passes: nothing announced again
        later = await client.quiet(1.5)
        assert [m for m in later if m.get("type") == "pattern_alert"] == []
        assert scanner.context is not None and scanner.context.metrics["alerts_published"] == 1
        assert scanner.errors == 0, scanner.last_error
        await client.close()


async def test_two_instances_on_one_redis_announce_a_pattern_once(build: Callable[..., Services]) -> None:
    """Exactly once in the cluster: the scanner runs where the bars are built (the ``bars`` lease holder),
    so with two instances on one Redis each one's subscriber gets the gap once, and the two scanners
    published it once between them."""
    redis = RedisServer().start()
    try:
        clock = FrozenClock(at(1, "15:59:00"))
        table = {"scanner": {"intervals": ["1m"]}}
        # A lease far longer than the test: the frozen clock jumps a night between the prices, and a lease
        # lapsing meanwhile would hand the bars to the other instance, which starts at the log's end
        settings = settings_with(table, redis=quick_redis_settings(redis.url, 60.0))
        first = build(table, settings=settings, clock=clock, backplane=None)
        second = build(table, settings=settings, clock=clock, backplane=None)

        async def price(day: int, hhmmss: str, value: float) -> None:
            clock.set_now(at(day, hhmmss))
            await first.publisher.price(PriceInput(ticker="SPX", price=value, timestamp=at(day, hhmmss)))

        async with serving(first) as first_url, serving(second) as second_url:
            clients = [await connect(first_url, "one"), await connect(second_url, "two")]
            for client in clients:
                await client.subscribe("patterns")
            builders = [s.bar_building for s in (first, second) if s.bar_building is not None]
            # One of them builds, from where the log is when it took the lease: a price of another ticker
            # first, built, says it reads (a price published while it took over would be behind it).
            clock.set_now(at(1, "15:58:00"))
            await first.publisher.price(PriceInput(ticker="WARM", price=1.0, timestamp=at(1, "15:58:00")))
            await eventually(lambda: sum(b.prices_built for b in builders) >= 1, timeout=30, what="a builder")
            # each price built before the clock moves on (as in the test above)
            for built, (day, hhmmss, value) in enumerate(
                [
                    (1, "15:59:00", 3075.69),
                    (1, "15:59:59", 3076.75),
                    (2, "09:30:00", 3087.02),
                    (2, "09:30:59", 3089.93),
                ],
                start=2,
            ):
                await price(day, hhmmss, value)
                await eventually(
                    lambda n=built: sum(b.prices_built for b in builders) >= n,
                    timeout=30,
                    what=f"{hhmmss} built",
                )
            clock.set_now(at(2, "09:31:05"))
            for client in clients:
                alert = await client.expect(
                    lambda m: m.get("type") == "pattern_alert" and m.get("pattern_type") == "GAP_UP",
                    timeout=15,
                )
                assert alert["ticker"] == "SPX"
            clock.set_now(at(2, "09:33:05"))
            for client in clients:
                later = await client.quiet(1.0)
                assert [m for m in later if m.get("type") == "pattern_alert"] == []
                await client.close()
            published = [
                s.plugins.records["scanner"].context.metrics.get("alerts_published", 0)  # type: ignore[union-attr]
                for s in (first, second)
            ]
            assert sorted(published) == [0, 1], published
    finally:
        redis.close()
