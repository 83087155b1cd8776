"""NYSE sessions through ExchangeCalendarsMarketCalendar: DST, holidays, early closes, boundaries."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.market_calendar import ExchangeCalendarsMarketCalendar
from legend.bootstrap import bootstrap
from legend.domain.market import SessionHours
from legend.ports.market import MarketCalendar, MarketCalendarError
from legend.settings import DatabaseSettings, Settings


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


@pytest.mark.parametrize(
    ("at", "is_open", "next_change"),
    [
        (utc(2026, 3, 6, 14, 30), True, utc(2026, 3, 6, 21, 0)),  # spring forward: Friday on winter hours
        (utc(2026, 3, 7, 12, 0), False, utc(2026, 3, 9, 13, 30)),  # Monday opens on summer hours
        (utc(2026, 3, 9, 13, 30), True, utc(2026, 3, 9, 20, 0)),
        (utc(2026, 10, 30, 13, 30), True, utc(2026, 10, 30, 20, 0)),  # fall back: Friday on summer hours
        (utc(2026, 11, 1, 12, 0), False, utc(2026, 11, 2, 14, 30)),  # Monday opens on winter hours
        (utc(2026, 11, 2, 13, 30), False, utc(2026, 11, 2, 14, 30)),  # Monday early: not open yet
        (utc(2026, 11, 2, 20, 30), True, utc(2026, 11, 2, 21, 0)),
    ],
    ids=[
        "spring-friday",
        "spring-weekend",
        "spring-monday",
        "fall-friday",
        "fall-weekend",
        "fall-monday-early",
        "fall-monday-late",
    ],
)
def test_dst_weekends(
    nyse: ExchangeCalendarsMarketCalendar, at: datetime, is_open: bool, next_change: datetime
) -> None:
    """The session hours follow New York across both DST changes: the next close when open, else the next
    open."""
    state = nyse.state_at(at)
    assert state.is_open == is_open
    assert (state.next_close if is_open else state.next_open) == next_change


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


def test_the_coverage_follows_the_clock_a_year_and_five_years_ahead() -> None:
    """A server that runs for years: built on day one, asked a year (and five) later, it still answers;
    a clock that jumped past the end waits for the one rebuild instead of failing every tick."""
    clock = FrozenClock(datetime(2026, 1, 5, 15, 0, tzinfo=UTC))
    calendar = ExchangeCalendarsMarketCalendar("XNYS", now=clock.now)
    assert calendar.coverage[1] < clock.now() + timedelta(days=367)
    clock.set_now(datetime(2027, 1, 12, 15, 0, tzinfo=UTC))  # past the first build's end
    assert calendar.state_at(clock.now()).is_open  # a Tuesday, 10:00 in New York
    clock.set_now(datetime(2031, 1, 7, 15, 0, tzinfo=UTC))
    assert calendar.state_at(clock.now()).is_open
    assert calendar.coverage[1] > clock.now() + timedelta(days=300)
    assert calendar.coverage[0] < datetime(2000, 1, 5, tzinfo=UTC)  # the past still answers
    assert not calendar.state_at(utc(2030, 12, 25, 15, 0)).is_open  # Christmas


def test_near_its_end_it_is_rebuilt_in_a_thread_while_the_old_one_answers() -> None:
    gate = threading.Event()

    class Gated(ExchangeCalendarsMarketCalendar):
        builds = 0

        def _build(self, end: str) -> Any:
            Gated.builds += 1
            if Gated.builds > 1:
                assert gate.wait(60), "the test never opened the gate"
            return super()._build(end)

    clock = FrozenClock(datetime(2026, 1, 5, 15, 0, tzinfo=UTC))
    calendar = Gated("XNYS", now=clock.now)
    first_end = calendar.coverage[1]
    clock.set_now(first_end - timedelta(days=20))
    state = calendar.state_at(clock.now())  # returns while the rebuild waits at the gate
    assert state.at == clock.now() and calendar.coverage[1] == first_end and Gated.builds == 2
    calendar.state_at(clock.now())  # one rebuild at a time
    assert Gated.builds == 2
    gate.set()
    deadline = time.monotonic() + 60
    while calendar.coverage[1] == first_end and time.monotonic() < deadline:
        time.sleep(0.05)
    assert calendar.coverage[1] > clock.now() + timedelta(days=300)


def test_the_server_keeps_market_hours_after_a_year(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FrozenClock(datetime(2026, 1, 5, 15, 0, tzinfo=UTC))
    settings = Settings(database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend.db"))
    services = bootstrap(settings, clock=clock, run_quote_poller=False)
    for years in (1, 5):
        clock.set_now(datetime(2026 + years, 1, 13, 20, 0, tzinfo=UTC))
        state = services.quote_poller.market_state()
        assert state is not None and state.is_open, caplog.text
    assert "market calendar" not in caplog.text


def test_the_zone_is_the_exchange_s(nyse: ExchangeCalendarsMarketCalendar) -> None:
    assert nyse.zone == "America/New_York"


def test_session_on_a_weekday_across_dst(nyse: ExchangeCalendarsMarketCalendar) -> None:
    winter = nyse.session_on(date(2026, 3, 6))
    assert winter == SessionHours(
        day=date(2026, 3, 6), open=utc(2026, 3, 6, 14, 30), close=utc(2026, 3, 6, 21, 0)
    )
    summer = nyse.session_on(date(2026, 3, 9))  # the first weekday after the spring change
    assert summer is not None and (summer.open, summer.close) == (
        utc(2026, 3, 9, 13, 30),
        utc(2026, 3, 9, 20, 0),
    )
    assert type(summer.open) is datetime and summer.open.tzinfo is UTC
    after_fall = nyse.session_on(date(2026, 11, 2))
    assert after_fall is not None and after_fall.open == utc(2026, 11, 2, 14, 30)


def test_session_on_an_early_close_a_holiday_and_a_weekend(nyse: ExchangeCalendarsMarketCalendar) -> None:
    early = nyse.session_on(date(2026, 11, 27))
    assert early is not None and early.early_close
    assert (early.open, early.close) == (utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18, 0))
    assert nyse.session_on(date(2026, 12, 25)) is None  # Christmas
    assert nyse.session_on(date(2026, 11, 26)) is None  # Thanksgiving
    assert nyse.session_on(date(2026, 3, 8)) is None  # a Sunday


def test_session_on_refuses_what_it_does_not_cover(nyse: ExchangeCalendarsMarketCalendar) -> None:
    with pytest.raises(MarketCalendarError, match="covers sessions from 2025-01-02"):
        nyse.session_on(date(2024, 6, 3))
    with pytest.raises(MarketCalendarError, match="outside"):
        nyse.session_on(date(2028, 1, 3))
    with pytest.raises(MarketCalendarError, match="needs a date"):
        nyse.session_on(datetime(2026, 3, 9, 15, 0, tzinfo=UTC))  # type: ignore[arg-type]


def test_a_cache_directory_keeps_the_schedule_between_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nyse: ExchangeCalendarsMarketCalendar
) -> None:
    """The first start reads the library and writes the schedule; the next ones read the file (no library, no
    pandas) and answer alike; another range replaces the file, and an unreadable file is read from the library."""
    first = ExchangeCalendarsMarketCalendar(
        "XNYS", start="2025-01-01", end="2027-12-31", cache_dir=str(tmp_path)
    )
    (cached,) = tmp_path.glob("XNYS-2025-01-01-2027-12-31-*.json")
    assert first._schedule == nyse._schedule

    def no_library(self: ExchangeCalendarsMarketCalendar, end: str) -> Any:
        raise AssertionError("the library was read although the cache holds this range")

    with monkeypatch.context() as patched:
        patched.setattr(ExchangeCalendarsMarketCalendar, "_read_library", no_library)
        again = ExchangeCalendarsMarketCalendar(
            "XNYS", start="2025-01-01", end="2027-12-31", cache_dir=str(tmp_path)
        )
    assert again._schedule == nyse._schedule and again.zone == "America/New_York"
    assert again.session_on(date(2026, 11, 27)) == nyse.session_on(date(2026, 11, 27))

    ExchangeCalendarsMarketCalendar("XNYS", start="2025-01-01", end="2027-06-30", cache_dir=str(tmp_path))
    (newer,) = tmp_path.glob("XNYS-*.json")
    assert newer.name.startswith("XNYS-2025-01-01-2027-06-30-") and not cached.exists()

    newer.write_text("[1, 2", encoding="utf-8")
    read = ExchangeCalendarsMarketCalendar(
        "XNYS", start="2025-01-01", end="2027-06-30", cache_dir=str(tmp_path)
    )
    assert read.session_on(date(2026, 3, 6)) == nyse.session_on(date(2026, 3, 6))
    assert json.loads(newer.read_text(encoding="utf-8"))[0] == read._schedule.starts  # written anew
