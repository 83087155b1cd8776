"""OHLCV bars on the real NYSE calendar: known prices across bar boundaries at every interval, session
alignment (a normal day, the 13:00 early close, a holiday, both DST changes), volume, late prices,
corrections and a takeover by a second builder."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest

from legend.adapters.market_calendar import ExchangeCalendarsMarketCalendar
from legend.domain.bar_alignment import SessionAlignment, exchange_day
from legend.domain.bar_building import BarBuilder
from legend.domain.bars import Bar, BarInterval
from legend.domain.market import SessionHours
from legend.ports.market import MarketCalendarError

NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def nyse() -> ExchangeCalendarsMarketCalendar:
    # A fixed range keeps the tests independent of today's date (and the build short).
    return ExchangeCalendarsMarketCalendar("XNYS", start="2025-01-01", end="2027-12-31")


@pytest.fixture
def builder(nyse: ExchangeCalendarsMarketCalendar) -> BarBuilder:
    return BarBuilder(nyse.zone, nyse.session_on)


def et(day: date, hour: int, minute: int, second: int = 0) -> datetime:
    """An instant given in New York wall time, as UTC."""
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=NY).astimezone(UTC)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


Row = tuple[BarInterval, datetime, float, float, float, float, int, bool]


def row(bar: Bar) -> Row:
    return (bar.interval, bar.start, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.regular)


def feed(builder: BarBuilder, prices: list[tuple[datetime, float, int]], ticker: str = "AAPL") -> list[Bar]:
    """Every price in order, with ``close_due`` at each price's instant (as the service does); the closed
    bars in the order they were reported (corrections included)."""
    closed: list[Bar] = []
    for at, price, volume in prices:
        closed += builder.close_due(at)
        closed += [bar for bar in builder.add(ticker, price, volume, at) if bar.closed]
    return closed


TUESDAY = date(2026, 12, 1)


def test_known_prices_across_bar_boundaries_at_every_interval(builder: BarBuilder) -> None:
    d = TUESDAY
    prices = [
        (et(d, 9, 29, 30), 10.0, 1000),  # pre-market; the first price gives the volume base
        (et(d, 9, 30), 11.0, 1100),
        (et(d, 9, 30, 40), 9.0, 1150),
        (et(d, 9, 31, 10), 12.0, 1300),
        (et(d, 9, 34, 59), 13.0, 1400),
        (et(d, 9, 35), 8.0, 1450),
        (et(d, 9, 45), 14.0, 1500),
        (et(d, 10, 29, 59), 15.0, 1600),
        (et(d, 10, 30), 7.0, 1700),
        (et(d, 15, 59, 59), 16.0, 2000),
        (et(d, 16, 0), 17.0, 2100),  # after the close
    ]
    closed = feed(builder, prices)
    closed += builder.close_due(et(d, 17, 0))
    assert builder.close_due(et(d, 17, 0)) == [] and builder.open_bars() == []
    assert all(bar.closed for bar in closed)
    expected: list[Row] = [
        ("1m", et(d, 9, 29), 10, 10, 10, 10, 0, False),
        ("1m", et(d, 9, 30), 11, 11, 9, 9, 150, True),
        ("1m", et(d, 9, 31), 12, 12, 12, 12, 150, True),
        ("1m", et(d, 9, 34), 13, 13, 13, 13, 100, True),
        ("1m", et(d, 9, 35), 8, 8, 8, 8, 50, True),
        ("1m", et(d, 9, 45), 14, 14, 14, 14, 50, True),
        ("1m", et(d, 10, 29), 15, 15, 15, 15, 100, True),
        ("1m", et(d, 10, 30), 7, 7, 7, 7, 100, True),
        ("1m", et(d, 15, 59), 16, 16, 16, 16, 300, True),
        ("1m", et(d, 16, 0), 17, 17, 17, 17, 100, False),
        ("5m", et(d, 9, 25), 10, 10, 10, 10, 0, False),
        ("5m", et(d, 9, 30), 11, 13, 9, 13, 400, True),
        ("5m", et(d, 9, 35), 8, 8, 8, 8, 50, True),
        ("5m", et(d, 9, 45), 14, 14, 14, 14, 50, True),
        ("5m", et(d, 10, 25), 15, 15, 15, 15, 100, True),
        ("5m", et(d, 10, 30), 7, 7, 7, 7, 100, True),
        ("5m", et(d, 15, 55), 16, 16, 16, 16, 300, True),
        ("5m", et(d, 16, 0), 17, 17, 17, 17, 100, False),
        ("15m", et(d, 9, 15), 10, 10, 10, 10, 0, False),
        ("15m", et(d, 9, 30), 11, 13, 8, 8, 450, True),
        ("15m", et(d, 9, 45), 14, 14, 14, 14, 50, True),
        ("15m", et(d, 10, 15), 15, 15, 15, 15, 100, True),
        ("15m", et(d, 10, 30), 7, 7, 7, 7, 100, True),
        ("15m", et(d, 15, 45), 16, 16, 16, 16, 300, True),
        ("15m", et(d, 16, 0), 17, 17, 17, 17, 100, False),
        ("1h", et(d, 9, 0), 10, 10, 10, 10, 0, False),  # 09:00-09:30, cut at the open
        ("1h", et(d, 9, 30), 11, 15, 8, 15, 600, True),
        ("1h", et(d, 10, 30), 7, 7, 7, 7, 100, True),
        ("1h", et(d, 15, 30), 16, 16, 16, 16, 300, True),  # 15:30-16:00, cut at the close
        ("1h", et(d, 16, 0), 17, 17, 17, 17, 100, False),
        ("1d", et(d, 9, 30), 11, 16, 7, 16, 1000, True),  # the session only: not 10 before, not 17 after
    ]
    assert sorted(map(row, closed)) == sorted(expected)
    assert len(closed) == len(expected)  # each bar closed exactly once
    daily = next(bar for bar in closed if bar.interval == "1d")
    assert daily.last_at == et(d, 15, 59, 59) and daily.session_volume == 2000


def test_a_bar_closes_when_its_end_has_passed_not_before(builder: BarBuilder) -> None:
    d = TUESDAY
    builder.add("AAPL", 10.0, 100, et(d, 9, 29, 30))
    assert builder.close_due(et(d, 9, 29, 59)) == []
    closed = builder.close_due(et(d, 9, 30))
    # At the open every interval's bar ends: 09:29, 09:25, 09:15 and the cut hour 09:00-09:30.
    assert sorted((bar.interval, bar.start) for bar in closed) == sorted(
        [("1m", et(d, 9, 29)), ("5m", et(d, 9, 25)), ("15m", et(d, 9, 15)), ("1h", et(d, 9, 0))]
    )
    assert builder.close_due(et(d, 9, 31)) == []


def test_add_returns_the_open_bars_it_changed(builder: BarBuilder) -> None:
    d = TUESDAY
    changed = builder.add("AAPL", 10.0, 100, et(d, 12, 0))
    assert [bar.interval for bar in changed] == ["1m", "5m", "15m", "1h", "1d"]
    assert not any(bar.closed for bar in changed) and all(bar.regular for bar in changed)
    assert [bar.interval for bar in builder.add("AAPL", 10.0, 100, et(d, 20, 0))] == ["1m", "5m", "15m", "1h"]
    assert (
        builder.add("MSFT", 3, 0, et(d, 12, 0))[0].close == 3.0 and type(builder.open_bars()[0].open) is float
    )


def span(
    alignment: SessionAlignment, interval: BarInterval, at: datetime
) -> tuple[datetime, datetime, bool] | None:
    return alignment.span(interval, at)


def test_alignment_on_a_normal_day(builder: BarBuilder) -> None:
    a, d = builder.alignment, TUESDAY
    assert span(a, "1h", et(d, 12, 0)) == (et(d, 11, 30), et(d, 12, 30), True)
    assert span(a, "1h", et(d, 9, 30)) == (et(d, 9, 30), et(d, 10, 30), True)
    assert span(a, "1h", et(d, 15, 45)) == (et(d, 15, 30), et(d, 16, 0), True)
    assert span(a, "1h", et(d, 16, 30)) == (et(d, 16, 0), et(d, 17, 0), False)
    assert span(a, "1h", et(d, 3, 10)) == (et(d, 3, 0), et(d, 4, 0), False)
    assert span(a, "1h", et(d, 23, 59)) == (et(d, 23, 0), et(d + timedelta(days=1), 0, 0), False)
    assert span(a, "15m", et(d, 9, 29, 59)) == (et(d, 9, 15), et(d, 9, 30), False)
    assert span(a, "5m", et(d, 13, 7)) == (et(d, 13, 5), et(d, 13, 10), True)
    assert span(a, "1m", et(d, 13, 7, 59)) == (et(d, 13, 7), et(d, 13, 8), True)
    assert span(a, "1d", et(d, 9, 30)) == (et(d, 9, 30), et(d, 16, 0), True)
    assert span(a, "1d", et(d, 9, 29, 59)) is None and span(a, "1d", et(d, 16, 0)) is None


def test_alignment_on_the_1300_early_close(builder: BarBuilder) -> None:
    a, d = builder.alignment, date(2026, 11, 27)
    assert span(a, "1d", et(d, 12, 59)) == (et(d, 9, 30), et(d, 13, 0), True)
    assert span(a, "1d", et(d, 13, 0)) is None
    assert span(a, "1h", et(d, 12, 45)) == (et(d, 12, 30), et(d, 13, 0), True)
    assert span(a, "1h", et(d, 13, 0)) == (et(d, 13, 0), et(d, 14, 0), False)
    assert span(a, "15m", et(d, 12, 59)) == (et(d, 12, 45), et(d, 13, 0), True)
    assert span(a, "5m", et(d, 13, 2)) == (et(d, 13, 0), et(d, 13, 5), False)


def test_alignment_on_a_holiday(builder: BarBuilder) -> None:
    a, d = builder.alignment, date(2026, 12, 25)
    assert span(a, "1d", et(d, 12, 0)) is None
    assert span(a, "1h", et(d, 9, 45)) == (et(d, 9, 0), et(d, 10, 0), False)  # aligned to midnight
    assert span(a, "15m", et(d, 9, 40)) == (et(d, 9, 30), et(d, 9, 45), False)


def test_alignment_across_the_spring_dst_change(builder: BarBuilder) -> None:
    a = builder.alignment
    # Sunday 2026-03-08 lasts 23 hours: 02:00 EST jumps to 03:00 EDT. Each hour bar: (a moment in it,
    # its start and end in UTC, its local start).
    hours = [
        (utc(2026, 3, 8, 5, 30), utc(2026, 3, 8, 5), utc(2026, 3, 8, 6), "00:00 EST"),
        (utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 6), utc(2026, 3, 8, 7), "01:00 EST"),
        (utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 7), utc(2026, 3, 8, 8), "03:00 EDT"),
        (utc(2026, 3, 9, 3, 30), utc(2026, 3, 9, 3), utc(2026, 3, 9, 4), "23:00 EDT"),
    ]
    for moment, start, end, local in hours:
        assert span(a, "1h", moment) == (start, end, False), local
    day = exchange_day(date(2026, 3, 8), NY, None)
    assert day.end - day.start == 23 * 3600 * 10**6
    # The sessions around it: 09:30 ET is 14:30 UTC on Friday, 13:30 UTC on Monday.
    assert span(a, "1d", utc(2026, 3, 6, 15)) == (utc(2026, 3, 6, 14, 30), utc(2026, 3, 6, 21), True)
    assert span(a, "1d", utc(2026, 3, 9, 15)) == (utc(2026, 3, 9, 13, 30), utc(2026, 3, 9, 20), True)
    assert span(a, "1h", utc(2026, 3, 9, 14)) == (utc(2026, 3, 9, 13, 30), utc(2026, 3, 9, 14, 30), True)
    assert span(a, "1h", utc(2026, 3, 9, 13)) == (utc(2026, 3, 9, 13), utc(2026, 3, 9, 13, 30), False)


def test_alignment_across_the_fall_dst_change(builder: BarBuilder) -> None:
    a = builder.alignment
    # Sunday 2026-11-01 lasts 25 hours: 01:00-02:00 happens twice, once in EDT and once in EST.
    assert span(a, "1h", utc(2026, 11, 1, 5, 30)) == (utc(2026, 11, 1, 5), utc(2026, 11, 1, 6), False)
    assert span(a, "1h", utc(2026, 11, 1, 6, 30)) == (utc(2026, 11, 1, 6), utc(2026, 11, 1, 7), False)
    assert span(a, "1h", utc(2026, 11, 2, 4, 30)) == (
        utc(2026, 11, 2, 4),
        utc(2026, 11, 2, 5),
        False,
    )  # 23:00 EST
    assert exchange_day(date(2026, 11, 1), NY, None).end - exchange_day(
        date(2026, 11, 1), NY, None
    ).start == (25 * 3600 * 10**6)
    assert span(a, "1d", utc(2026, 10, 30, 14)) == (utc(2026, 10, 30, 13, 30), utc(2026, 10, 30, 20), True)
    assert span(a, "1d", utc(2026, 11, 2, 15)) == (utc(2026, 11, 2, 14, 30), utc(2026, 11, 2, 21), True)
    assert span(a, "1h", utc(2026, 11, 2, 14)) == (utc(2026, 11, 2, 14), utc(2026, 11, 2, 14, 30), False)


def test_bars_on_an_early_close_and_a_holiday(builder: BarBuilder) -> None:
    early, holiday = date(2026, 11, 27), date(2026, 12, 25)
    prices = [
        (et(early, 12, 59), 20.0, 100),
        (et(early, 12, 59, 30), 21.0, 150),
        (et(early, 13, 0), 22.0, 200),
        (et(holiday, 10, 0), 23.0, 10),
        (et(holiday, 10, 5), 24.0, 30),
    ]
    closed = feed(builder, prices)
    closed += builder.close_due(et(holiday, 23, 0))
    hours = sorted(row(bar) for bar in closed if bar.interval == "1h")
    assert hours == [
        ("1h", et(early, 12, 30), 20, 21, 20, 21, 50, True),
        ("1h", et(early, 13, 0), 22, 22, 22, 22, 50, False),
        ("1h", et(holiday, 10, 0), 23, 24, 23, 24, 30, False),  # the drop to 10 starts a new count
    ]
    days = [row(bar) for bar in closed if bar.interval == "1d"]
    assert days == [("1d", et(early, 9, 30), 20, 21, 20, 21, 50, True)]  # none on the holiday


def test_the_daily_bar_closes_at_the_early_close(builder: BarBuilder) -> None:
    d = date(2026, 11, 27)
    builder.add("AAPL", 20.0, 100, et(d, 12, 40))
    assert [bar.interval for bar in builder.close_due(et(d, 12, 59, 59))] == ["1m", "5m", "15m"]
    assert sorted(bar.interval for bar in builder.close_due(et(d, 13, 0))) == ["1d", "1h"]


def test_volume_takes_the_rise_of_the_session_volume_and_never_goes_negative(builder: BarBuilder) -> None:
    d = TUESDAY
    builder.add("AAPL", 10.0, 5000, et(d, 10, 0, 0))  # first price: the base, adds nothing
    builder.add("AAPL", 10.0, 5200, et(d, 10, 0, 10))  # +200
    builder.add("AAPL", 10.0, 300, et(d, 10, 0, 20))  # a drop: a new count from 0, +300
    builder.add("AAPL", 10.0, 400, et(d, 10, 0, 30))  # +100
    builder.add("AAPL", 10.0, 5100, et(d, 10, 0, 5))  # late, from before the new count: nothing
    builder.add("AAPL", 10.0, 350, et(d, 10, 0, 25))  # late, below the latest: nothing
    changed = builder.add("AAPL", 10.0, 450, et(d, 10, 0, 28))  # late but further on: +50
    minute = changed[0]
    assert minute.interval == "1m" and minute.volume == 650 and minute.session_volume == 450


def test_a_late_price_in_an_open_bar(builder: BarBuilder) -> None:
    d = TUESDAY
    builder.add("AAPL", 10.0, 0, et(d, 10, 0, 30))
    builder.add("AAPL", 12.0, 0, et(d, 10, 0, 10))  # late: a new high, but not the close
    minute = builder.add("AAPL", 8.0, 0, et(d, 10, 0, 5))[0]  # late and the earliest: the open
    assert row(minute) == ("1m", et(d, 10, 0), 8, 12, 8, 10, 0, True)
    assert minute.last_at == et(d, 10, 0, 30)
    minute = builder.add("AAPL", 11.0, 0, et(d, 10, 0, 30))[0]  # the same instant, later in the log
    assert minute.close == 11 and not minute.closed


def test_a_late_price_corrects_a_recently_closed_bar_and_older_ones_are_dropped(
    nyse: ExchangeCalendarsMarketCalendar,
) -> None:
    builder = BarBuilder(nyse.zone, nyse.session_on, keep_closed=2)
    d = TUESDAY
    feed(builder, [(et(d, 10, minute, 30), 10.0, 100) for minute in range(5)])  # 10:00 ... 10:04
    builder.close_due(et(d, 10, 5))
    correction = builder.add("AAPL", 15.0, 100, et(d, 10, 3, 10))
    by_interval = {bar.interval: bar for bar in correction}
    # The earliest price of its minute (10:03:10 < 10:03:30): the open, not the close.
    assert by_interval["1m"].closed and row(by_interval["1m"]) == (
        "1m",
        et(d, 10, 3),
        15,
        15,
        10,
        10,
        0,
        True,
    )
    assert by_interval["5m"].closed and by_interval["5m"].start == et(d, 10, 0)  # closed at 10:05 too
    assert by_interval["15m"].high == 15 and not by_interval["15m"].closed
    assert builder.corrections == 2  # the 1m and 5m bars
    again = builder.add("AAPL", 16.0, 100, et(d, 10, 3, 20))  # corrected again: returned again
    assert [bar.closed for bar in again][:2] == [True, True]
    dropped = builder.add("AAPL", 9.0, 100, et(d, 10, 2, 0))  # only 10:03 and 10:04 are kept (keep_closed=2)
    assert [bar.interval for bar in dropped] == ["5m", "15m", "1h", "1d"]
    assert builder.late_dropped == 1
    kept = builder.add("AAPL", 9.0, 100, et(d, 10, 4, 0))[0]
    assert (kept.start, kept.low, kept.closed) == (et(d, 10, 4), 9.0, True)


def test_closed_exactly_once_through_a_whole_day(builder: BarBuilder) -> None:
    d = TUESDAY
    start = et(d, 0, 3)
    prices = [(start + timedelta(minutes=7 * i), 10.0 + i % 5, 100 * i) for i in range(200)]
    closed = feed(builder, prices)
    closed += builder.close_due(prices[-1][0] + timedelta(days=2))
    keys = [(bar.interval, bar.start) for bar in closed]
    assert len(keys) == len(set(keys))
    assert {interval for interval, _ in keys} == {"1m", "5m", "15m", "1h", "1d"}
    assert builder.open_bars() == [] and builder.late_dropped == 0 and builder.corrections == 0


def test_too_many_open_bars_close_the_oldest_early(nyse: ExchangeCalendarsMarketCalendar) -> None:
    builder = BarBuilder(nyse.zone, nyse.session_on, max_open=1)
    d = TUESDAY
    builder.add("AAPL", 10.0, 0, et(d, 10, 0))
    changed = builder.add("AAPL", 11.0, 0, et(d, 10, 1))  # close_due never called
    assert [(bar.interval, bar.start, bar.closed) for bar in changed if bar.closed] == [
        ("1m", et(d, 10, 0), True)
    ]
    assert ("1m", et(d, 10, 0)) not in [(bar.interval, bar.start) for bar in builder.close_due(et(d, 11, 0))]


def test_a_successor_restores_from_the_stored_bars_and_goes_on_the_same(
    nyse: ExchangeCalendarsMarketCalendar,
) -> None:
    d = TUESDAY
    before = [
        (et(d, 9, 58) + timedelta(seconds=10 * i), 10.0 + i, 1000 + 7 * i) for i in range(12)
    ]  # 09:58:00 to 09:59:50
    after = [(et(d, 10, 0, 5 * i), 20.0 - i, 1100 + 9 * i) for i in range(6)] + [
        (et(d, 9, 59, 55), 30.0, 1170)
    ]
    first = BarBuilder(nyse.zone, nyse.session_on)
    stored = feed(first, before) + first.close_due(et(d, 9, 59, 59))
    assert [(bar.interval, bar.start) for bar in stored] == [("1m", et(d, 9, 58))]
    stored += first.open_bars()
    successor = BarBuilder(nyse.zone, nyse.session_on)
    successor.restore(msgspec.json.decode(msgspec.json.encode(stored), type=list[Bar]))
    assert sorted(map(row, successor.open_bars())) == sorted(map(row, first.open_bars()))
    results = []
    for builder in (first, successor):
        closed = feed(builder, after) + builder.close_due(et(d, 17, 0))
        results.append(sorted(map(row, closed)))
    assert results[0] == results[1]
    # The late 09:59:55 price corrects the closed 09:59 minute (its latest price: the close)
    # and enters the open hour (the high and volume, not the close).
    assert ("1m", et(d, 9, 59), 16, 30, 16, 30, 67, True) in results[1]
    assert ("1h", et(d, 9, 30), 10, 30, 10, 15, 170, True) in results[1]


def test_restore_without_the_takeover_fields_takes_the_next_price_as_the_volume_base(
    builder: BarBuilder, nyse: ExchangeCalendarsMarketCalendar
) -> None:
    d = TUESDAY
    builder.add("AAPL", 10.0, 1000, et(d, 10, 0, 0))
    builder.add("AAPL", 11.0, 1500, et(d, 10, 0, 10))
    stored = [msgspec.structs.replace(bar, last_at=None, session_volume=None) for bar in builder.open_bars()]
    successor = BarBuilder(nyse.zone, nyse.session_on)
    successor.restore(stored)
    minute = successor.add("AAPL", 9.0, 1600, et(d, 10, 0, 20))[0]
    assert row(minute) == ("1m", et(d, 10, 0), 10, 11, 9, 9, 500, True)  # 500 before, nothing from this price
    assert successor.add("AAPL", 9.0, 1700, et(d, 10, 0, 30))[0].volume == 600


def test_restore_refuses_bad_bars(builder: BarBuilder, nyse: ExchangeCalendarsMarketCalendar) -> None:
    d = TUESDAY
    builder.add("AAPL", 10.0, 1000, et(d, 10, 0, 0))
    bars = builder.open_bars()
    with pytest.raises(ValueError, match="empty builder"):
        builder.restore(bars)
    hour = next(bar for bar in bars if bar.interval == "1h")
    for bad in (
        msgspec.structs.replace(hour, start=et(d, 10, 0)),  # hours start at :30 in the session
        msgspec.structs.replace(hour, regular=False),
        msgspec.structs.replace(hour, interval="1d", start=et(d, 9, 0), regular=True),
    ):
        with pytest.raises(ValueError, match="is not a"):
            BarBuilder(nyse.zone, nyse.session_on).restore([bad])
    successor = BarBuilder(nyse.zone, nyse.session_on)
    with pytest.raises(ValueError, match="given twice"):
        successor.restore([hour, hour])
    successor.restore(bars)  # a refused restore leaves the builder empty
    assert sorted(map(row, successor.open_bars())) == sorted(map(row, bars))


def test_bad_input_is_refused(builder: BarBuilder, nyse: ExchangeCalendarsMarketCalendar) -> None:
    at = et(TUESDAY, 10, 0)
    for price in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="price must be"):
            builder.add("AAPL", price, 0, at)
    with pytest.raises(ValueError, match="session_volume"):
        builder.add("AAPL", 1.0, -1, at)
    with pytest.raises(ValueError, match="timezone-aware"):
        builder.add("AAPL", 1.0, 0, datetime(2026, 12, 1, 15, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        builder.alignment.span("1h", datetime(2026, 12, 1, 15, 0))
    with pytest.raises(ValueError, match="unknown time zone"):
        BarBuilder("Mars/Olympus", nyse.session_on)
    with pytest.raises(MarketCalendarError, match="outside"):
        builder.add("AAPL", 1.0, 0, utc(2030, 1, 2, 15))
    session = SessionHours(day=date(2026, 12, 1), open=utc(2026, 12, 2, 14, 30), close=utc(2026, 12, 2, 21))
    with pytest.raises(ValueError, match="does not lie within 2026-12-01"):
        exchange_day(date(2026, 12, 1), NY, session)
