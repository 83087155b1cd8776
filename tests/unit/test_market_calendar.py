"""NYSE sessions through ExchangeCalendarsMarketCalendar: DST, holidays, early closes, boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from legend.adapters.market_calendar import ExchangeCalendarsMarketCalendar
from legend.ports.market import MarketCalendar, MarketCalendarError


@pytest.fixture(scope="module")
def nyse() -> ExchangeCalendarsMarketCalendar:
    # A fixed range keeps the tests independent of today's date.
    return ExchangeCalendarsMarketCalendar("XNYS", start="2025-01-01", end="2027-12-31")


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_implements_the_port(nyse: ExchangeCalendarsMarketCalendar) -> None:
    calendar: MarketCalendar = nyse
    assert calendar.name == "XNYS"


def test_winter_weekday_open(nyse: ExchangeCalendarsMarketCalendar) -> None:
    state = nyse.state_at(utc(2026, 1, 6, 15, 0))
    assert state.is_open and state.status == "open"
    assert state.next_close == utc(2026, 1, 6, 21, 0)
    assert state.next_open is None
    assert not state.early_close


def test_winter_weekday_before_open_and_after_close(nyse: ExchangeCalendarsMarketCalendar) -> None:
    before = nyse.state_at(utc(2026, 1, 6, 14, 0))
    assert not before.is_open and before.status == "closed"
    assert before.next_open == utc(2026, 1, 6, 14, 30)
    assert before.next_close is None
    after = nyse.state_at(utc(2026, 1, 6, 21, 30))
    assert not after.is_open
    assert after.next_open == utc(2026, 1, 7, 14, 30)


def test_summer_weekday(nyse: ExchangeCalendarsMarketCalendar) -> None:
    assert nyse.state_at(utc(2026, 7, 14, 13, 0)).next_open == utc(2026, 7, 14, 13, 30)
    open_ = nyse.state_at(utc(2026, 7, 14, 19, 59))
    assert open_.is_open and open_.next_close == utc(2026, 7, 14, 20, 0)
    # 20:30 UTC would still be "open" with hours fixed at winter UTC times.
    assert not nyse.state_at(utc(2026, 7, 14, 20, 30)).is_open


def test_spring_forward_weekend(nyse: ExchangeCalendarsMarketCalendar) -> None:
    friday = nyse.state_at(utc(2026, 3, 6, 14, 30))
    assert friday.is_open and friday.next_close == utc(2026, 3, 6, 21, 0)
    weekend = nyse.state_at(utc(2026, 3, 7, 12, 0))
    assert not weekend.is_open and weekend.next_open == utc(2026, 3, 9, 13, 30)
    monday = nyse.state_at(utc(2026, 3, 9, 13, 30))
    assert monday.is_open and monday.next_close == utc(2026, 3, 9, 20, 0)


def test_fall_back_weekend(nyse: ExchangeCalendarsMarketCalendar) -> None:
    friday = nyse.state_at(utc(2026, 10, 30, 13, 30))
    assert friday.is_open and friday.next_close == utc(2026, 10, 30, 20, 0)
    weekend = nyse.state_at(utc(2026, 11, 1, 12, 0))
    assert not weekend.is_open and weekend.next_open == utc(2026, 11, 2, 14, 30)
    monday_early = nyse.state_at(utc(2026, 11, 2, 13, 30))
    assert not monday_early.is_open and monday_early.next_open == utc(2026, 11, 2, 14, 30)
    assert nyse.state_at(utc(2026, 11, 2, 20, 30)).next_close == utc(2026, 11, 2, 21, 0)


def test_thanksgiving_is_a_holiday(nyse: ExchangeCalendarsMarketCalendar) -> None:
    state = nyse.state_at(utc(2026, 11, 26, 16, 0))
    assert not state.is_open
    assert state.next_open == utc(2026, 11, 27, 14, 30)


def test_day_after_thanksgiving_closes_early(nyse: ExchangeCalendarsMarketCalendar) -> None:
    open_ = nyse.state_at(utc(2026, 11, 27, 17, 0))
    assert open_.is_open
    assert open_.next_close == utc(2026, 11, 27, 18, 0)
    assert open_.early_close
    closed = nyse.state_at(utc(2026, 11, 27, 18, 30))
    assert not closed.is_open and not closed.early_close
    assert closed.next_open == utc(2026, 11, 30, 14, 30)


def test_weekend(nyse: ExchangeCalendarsMarketCalendar) -> None:
    state = nyse.state_at(utc(2026, 1, 10, 15, 0))  # Saturday
    assert not state.is_open
    assert state.next_open == utc(2026, 1, 12, 14, 30)


def test_open_inclusive_close_exclusive(nyse: ExchangeCalendarsMarketCalendar) -> None:
    open_at = utc(2026, 1, 6, 14, 30)
    assert not nyse.state_at(open_at - timedelta(microseconds=1)).is_open
    assert nyse.state_at(open_at).is_open
    close_at = utc(2026, 1, 6, 21, 0)
    assert nyse.state_at(close_at - timedelta(microseconds=1)).is_open
    assert not nyse.state_at(close_at).is_open


def test_any_timezone_in_utc_out(nyse: ExchangeCalendarsMarketCalendar) -> None:
    state = nyse.state_at(datetime(2026, 3, 9, 9, 30, tzinfo=ZoneInfo("America/New_York")))
    assert state.is_open
    assert state.at == utc(2026, 3, 9, 13, 30)
    assert state.at.tzinfo is UTC
    assert state.next_close is not None and state.next_close.tzinfo is UTC
    assert type(state.next_close) is datetime  # not a pandas Timestamp


def test_naive_datetime_rejected(nyse: ExchangeCalendarsMarketCalendar) -> None:
    with pytest.raises(MarketCalendarError, match="timezone-aware"):
        nyse.state_at(datetime(2026, 1, 6, 15, 0))


def test_out_of_range_rejected(nyse: ExchangeCalendarsMarketCalendar) -> None:
    with pytest.raises(MarketCalendarError, match="covers 2025-01-02"):
        nyse.state_at(utc(2024, 6, 3, 15, 0))
    with pytest.raises(MarketCalendarError, match="covers"):
        nyse.state_at(utc(2030, 6, 3, 15, 0))
    first, last = nyse.coverage
    assert nyse.state_at(first).is_open
    with pytest.raises(MarketCalendarError):
        nyse.state_at(last)


def test_default_range_reaches_a_year_ahead() -> None:
    calendar = ExchangeCalendarsMarketCalendar()
    first, last = calendar.coverage
    assert first.year == 2000
    assert last > datetime.now(UTC) + timedelta(days=300)


def test_unknown_exchange_rejected() -> None:
    with pytest.raises(MarketCalendarError, match="unknown exchange calendar"):
        ExchangeCalendarsMarketCalendar("NOPE")
