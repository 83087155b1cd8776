"""Each provider's bar history (legend.ports.bar_history) on the real NYSE calendar: the simulated demo's
(seeded, realistic, ending at the live price), the replay's (its file up to the bar replayed now), and
Finnhub's and Alpaca's against local servers speaking their documented candle and bars endpoints."""

from __future__ import annotations

import itertools
import math
import statistics
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.market_calendar import ExchangeCalendarsMarketCalendar
from legend.adapters.quotes import AlpacaQuoteProvider, FinnhubQuoteProvider, ProviderAuthError
from legend.adapters.quotes.replay import SAMPLE_FILE, ReplayQuoteProvider, ReplaySource
from legend.adapters.quotes.simulated import SimulatedQuoteProvider
from legend.domain.bars import INTERVALS, Bar, BarInterval
from legend.ports.bar_history import bar_history
from legend.settings import QuotesAlpacaSettings, QuotesFinnhubSettings
from tests.providers.support import FakeTime, Reply, Request, VendorServer

NY = ZoneInfo("America/New_York")
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
# Monday 7 December 2026, 10:03:20 in New York: the session is 33 minutes old, the weekend just behind.
MONDAY = datetime(2026, 12, 7, 15, 3, 20, tzinfo=UTC)
# Friday 4 December 2026, 15:07 in New York: the vendors' present in their tests.
FRIDAY = datetime(2026, 12, 4, 20, 7, tzinfo=UTC)


@pytest.fixture(scope="module")
def nyse() -> ExchangeCalendarsMarketCalendar:
    return ExchangeCalendarsMarketCalendar("XNYS", start="2019-01-01", end="2027-12-31")


def et(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY).astimezone(UTC)


def consistent(bars: list[Bar]) -> None:
    for bar in bars:
        assert bar.closed
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high, bar
        assert bar.volume >= 0


# ───────────── simulated ─────────────


def simulated(
    nyse: ExchangeCalendarsMarketCalendar, seed: int = 42, at: datetime = MONDAY
) -> SimulatedQuoteProvider:
    return SimulatedQuoteProvider(seed=seed, clock=FrozenClock(at), calendar=nyse)


async def every_interval(provider: Any, ticker: str) -> dict[BarInterval, list[Bar]]:
    return {interval: await provider.bars(ticker, interval, *EVER) for interval in INTERVALS}


async def test_simulated_history_ends_at_the_live_price_and_the_live_walk_continues_it(
    nyse: ExchangeCalendarsMarketCalendar,
) -> None:
    provider = simulated(nyse)
    assert bar_history(provider) is provider
    [quote] = await provider.fetch(["AAPL"])
    minutes = await provider.bars("AAPL", "1m", *EVER)
    assert minutes[-1].close == quote.price  # exactly: the chart's last bar and the live price meet
    assert minutes[-1].start == datetime(2026, 12, 7, 15, 2, tzinfo=UTC)  # the last whole minute before now
    [after] = await provider.fetch(["AAPL"])  # the walk goes on from there: one small step
    assert abs(math.log(after.price / quote.price)) < 0.01
    # A ticker never fetched: the history starts its walk, and the first live price continues it.
    fresh = await provider.bars("MSFT", "1m", *EVER)
    [first] = await provider.fetch(["MSFT"])
    assert abs(math.log(first.price / fresh[-1].close)) < 0.01


@pytest.mark.parametrize("ticker", ["AAPL", "ZZZQ"])
async def test_the_first_quote_has_the_session_figures_of_the_history(
    nyse: ExchangeCalendarsMarketCalendar, ticker: str
) -> None:
    # In a session (Monday 10:03:00, on a whole minute: no volume since the history's last minute yet).
    provider = simulated(nyse, at=MONDAY.replace(second=0))
    [quote] = await provider.fetch([ticker])
    minutes = await provider.bars(ticker, "1m", *EVER)
    days = await provider.bars(ticker, "1d", *EVER)
    today = [bar for bar in minutes if bar.regular and bar.start >= et(date(2026, 12, 7), 9, 30)]
    assert today[0].start == et(date(2026, 12, 7), 9, 30) and minutes[-1].close == quote.price
    assert quote.open == today[0].open
    assert quote.high == max(bar.high for bar in today) and quote.low == min(bar.low for bar in today)
    assert quote.volume == sum(bar.volume for bar in today) > 0
    assert quote.previous_close == days[-1].close  # Friday's
    assert days[-1].start == et(date(2026, 12, 4), 9, 30)
    if ticker == "AAPL":
        assert abs(quote.previous_close - 270.37) <= 0.01  # the session before closed at the reference
    # Outside one (Saturday noon): the last session's daily bar, as a real quote shows after hours; the
    # price goes on from the history's last minute, the day's figures stay.
    clock = FrozenClock(et(date(2026, 12, 5), 12))
    provider = SimulatedQuoteProvider(seed=42, clock=clock, calendar=nyse)
    [quote] = await provider.fetch([ticker])
    days = await provider.bars(ticker, "1d", *EVER)
    minutes = await provider.bars(ticker, "1m", *EVER)
    friday = days[-1]
    assert friday.start == et(date(2026, 12, 4), 9, 30)
    assert (quote.open, quote.high, quote.low, quote.volume) == (
        friday.open,
        friday.high,
        friday.low,
        friday.volume,
    )
    assert quote.previous_close == days[-2].close and minutes[-1].close == quote.price
    clock.advance(60)
    [later] = await provider.fetch([ticker])
    assert (later.open, later.high, later.low, later.volume) == (
        quote.open,
        quote.high,
        quote.low,
        quote.volume,
    )


async def test_simulated_minutes_run_from_the_last_closed_session_through_the_weekend(
    nyse: ExchangeCalendarsMarketCalendar,
) -> None:
    minutes = await simulated(nyse).bars("SPY", "1m", *EVER)
    consistent(minutes)
    friday_open = et(date(2026, 12, 4), 9, 30)
    assert minutes[0].start == friday_open  # Friday's session: the last one closed by Monday 10:03
    starts = [bar.start for bar in minutes]
    assert starts == [
        friday_open + timedelta(minutes=k) for k in range(len(minutes))
    ]  # nights and weekend too
    regular = {bar.start for bar in minutes if bar.regular}
    assert et(date(2026, 12, 5), 12) not in regular and et(date(2026, 12, 5), 12) in starts  # Saturday
    assert et(date(2026, 12, 7), 9, 45) in regular


async def test_simulated_history_is_deterministic_per_seed_and_ticker(
    nyse: ExchangeCalendarsMarketCalendar,
) -> None:
    one = await every_interval(simulated(nyse, seed=7), "NVDA")
    again = await every_interval(simulated(nyse, seed=7), "NVDA")
    other_seed = await every_interval(simulated(nyse, seed=8), "NVDA")
    other_ticker = await every_interval(simulated(nyse, seed=7), "AMD")
    assert one == again
    assert [b.close for b in one["1d"]] != [b.close for b in other_seed["1d"]]
    assert [b.volume for b in one["1m"]] != [b.volume for b in other_ticker["1m"]]


async def test_simulated_history_looks_like_a_stock(nyse: ExchangeCalendarsMarketCalendar) -> None:
    bars = await every_interval(simulated(nyse), "AAPL")
    for series in bars.values():
        consistent(series)
    days = bars["1d"]
    assert 245 <= len(days) <= 255  # a year of sessions: no weekends, no holidays
    assert all(bar.regular and bar.start == et(bar.start.astimezone(NY).date(), 9, 30) for bar in days)
    assert et(date(2026, 11, 26), 9, 30) not in {bar.start for bar in days}  # Thanksgiving
    returns = [math.log(b.close / a.close) for a, b in itertools.pairwise(days)]
    assert 0.008 < statistics.stdev(returns) < 0.04  # 18 to 50 % a year, as drawn, with noise
    assert 0.5 < days[0].close / days[-1].close < 2.0
    # Hours on the session: 09:30-10:30 ... 15:30-16:00, closed ones only (Monday's 09:30 hour is not).
    hours = [bar.start.astimezone(NY).strftime("%a %H:%M") for bar in bars["1h"] if bar.regular]
    assert hours[:7] == [
        "Fri 09:30",
        "Fri 10:30",
        "Fri 11:30",
        "Fri 12:30",
        "Fri 13:30",
        "Fri 14:30",
        "Fri 15:30",
    ]
    assert hours[-1] == "Fri 15:30"
    # Friday's daily bar is made of its regular minutes, so that the two charts agree.
    friday = [
        bar for bar in bars["1m"] if bar.regular and bar.start.astimezone(NY).date() == date(2026, 12, 4)
    ]
    assert (days[-1].open, days[-1].close) == (friday[0].open, friday[-1].close)
    assert days[-1].volume == sum(bar.volume for bar in friday)
    # U-shaped volume: the first and last half hours trade far more than midday; the night almost nothing.
    volume = [bar.volume for bar in friday]
    midday = statistics.mean(volume[150:240])
    assert statistics.mean(volume[:30]) > 1.8 * midday and statistics.mean(volume[-30:]) > 1.5 * midday
    night = [bar.volume for bar in bars["1m"] if bar.start.astimezone(NY).date() == date(2026, 12, 5)]
    assert statistics.mean(night) < midday / 50


# ───────────── replay ─────────────


async def test_replay_history_is_its_file_up_to_the_bar_replayed_now(
    nyse: ExchangeCalendarsMarketCalendar,
) -> None:
    provider = ReplayQuoteProvider({"SPX": ReplaySource(SAMPLE_FILE)}, speed=500, calendar=nyse)
    assert await provider.bars("SPX", "1m", *EVER) == []  # nothing replayed yet: no past
    await provider.fetch(["SPX"])
    [quote] = await provider.fetch(["SPX"])  # bar 500: 11:19 on 6 November 2019
    now = await provider.history_until("SPX")
    assert now is not None and now.timestamp() == quote.timestamp
    bars = await every_interval(provider, "SPX")
    for series in bars.values():
        consistent(series)
    minutes = bars["1m"]
    assert len(minutes) == 500 and minutes[-1].start == now - timedelta(minutes=1)
    # 11/5/2019 9:30,3080.8,3080.49,3081.47,3080.3,0 (Date,Open,Close,High,Low,Volume)
    assert (minutes[0].start, minutes[0].open, minutes[0].high, minutes[0].low, minutes[0].close) == (
        et(date(2019, 11, 5), 9, 30), 3080.8, 3081.47, 3080.3, 3080.49,
    )  # fmt: skip
    first_hour = [bar for bar in minutes if bar.start < et(date(2019, 11, 5), 10, 30)]
    hour = bars["1h"][0]
    assert (hour.start, hour.open, hour.close) == (
        et(date(2019, 11, 5), 9, 30),
        first_hour[0].open,
        first_hour[-1].close,
    )
    assert (hour.high, hour.low) == (max(b.high for b in first_hour), min(b.low for b in first_hour))
    # Nothing that ends after the replay's present: the 10:30-11:30 hour of the 6th is still forming.
    assert bars["1h"][-1].start == et(date(2019, 11, 6), 9, 30)
    assert [bar.start for bar in bars["1d"]] == [et(date(2019, 11, 5), 9, 30)]
    assert [bar.start.astimezone(NY).minute % 15 for bar in bars["15m"]] == [0] * len(bars["15m"])
    # A stretch asked for: only the bars that start in it.
    window = await provider.bars("SPX", "5m", et(date(2019, 11, 5), 10), et(date(2019, 11, 5), 11))
    assert [bar.start for bar in window] == [et(date(2019, 11, 5), 10, 5 * k) for k in range(12)]


async def test_replay_of_daily_bars_has_daily_history_only(
    nyse: ExchangeCalendarsMarketCalendar, tmp_path: Path
) -> None:
    path = tmp_path / "daily.csv"
    path.write_text(
        "Date,Open,High,Low,Close,Volume\n"
        "2019-11-04,10,11,9,10.5,100\n2019-11-05,10.5,12,10,11,200\n2019-11-06,11,11.5,10,10.2,300\n"
    )
    provider = ReplayQuoteProvider({"ABC": ReplaySource(path)}, calendar=nyse)
    for _ in range(3):
        await provider.fetch(["ABC"])  # the third day is replayed now
    days = await provider.bars("ABC", "1d", *EVER)
    assert [(bar.start, bar.open, bar.close, bar.volume) for bar in days] == [
        (et(date(2019, 11, 4), 9, 30), 10.0, 10.5, 100),
        (et(date(2019, 11, 5), 9, 30), 10.5, 11.0, 200),
    ]
    assert await provider.bars("ABC", "1m", *EVER) == []
    assert await provider.history_until("NOPE") is None and await provider.bars("NOPE", "1d", *EVER) == []


# ───────────── Finnhub and Alpaca: local servers with their documented endpoints ─────────────

STEPS = {"1": 60, "5": 300, "15": 900, "1Min": 60, "5Min": 300, "15Min": 900}


def figures(t: int) -> dict[str, float]:
    """A vendor's made-up bar at epoch ``t``: prices that say when they are from."""
    base = 100 + (t % 86_400) / 3600
    return {"o": base, "h": base + 0.5, "l": base - 0.5, "c": base + 0.1, "v": t % 1000}


def vendor_bars(resolution: str, since: int, until: int) -> list[tuple[int, dict[str, float]]]:
    """Bars every step in ``[since, until]`` (both vendors' ends are inclusive); daily ones at midnight UTC
    (Finnhub) of each weekday."""
    if resolution in ("D", "1Day"):
        day = datetime.fromtimestamp(since, UTC).date()
        out = []
        while (at := int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())) <= until:
            if day.weekday() < 5 and at >= since - 86_400:
                out.append((at, figures(at)))
            day += timedelta(days=1)
        return out
    step = STEPS[resolution]
    first = -(-since // step) * step
    return [(t, figures(t)) for t in range(first, until + 1, step)]


def finnhub_route(key: str = "k") -> Any:
    def route(request: Request) -> Reply:
        if request.path != "/api/v1/stock/candle":
            return Reply(404, {"error": "Not found"})
        if request.headers.get("x-finnhub-token") != key:
            return Reply(403, {"error": "You don't have access to this resource."})
        q = request.query
        rows = vendor_bars(q["resolution"], int(q["from"]), int(q["to"]))
        if not rows:
            return Reply(200, {"s": "no_data"})
        columns: dict[str, list[float]] = {k: [] for k in "tohlcv"}
        for t, values in rows:
            columns["t"].append(t)
            for k, v in values.items():
                columns[k].append(v)
        return Reply(200, {**columns, "s": "ok"})

    return route


def finnhub(
    server: VendorServer, fake_time: FakeTime, nyse: ExchangeCalendarsMarketCalendar
) -> FinnhubQuoteProvider:
    fake_time.wall_now = FRIDAY.timestamp()
    settings = QuotesFinnhubSettings(base_url=f"{server.url}/api/v1")
    return FinnhubQuoteProvider(settings, "k", timing=fake_time.timing, calendar=nyse)


async def test_finnhub_candles_become_closed_bars_on_the_session(
    server: VendorServer, fake_time: FakeTime, nyse: ExchangeCalendarsMarketCalendar
) -> None:
    server.route = finnhub_route()
    provider = finnhub(server, fake_time, nyse)
    friday = date(2026, 12, 4)
    try:
        assert await provider.history_until("AAPL") == FRIDAY
        minutes = await provider.bars("AAPL", "1m", et(friday, 9), et(friday, 17))
        hours = await provider.bars("AAPL", "1h", et(friday, 4), et(friday, 20))
        days = await provider.bars("AAPL", "1d", et(date(2026, 11, 30), 0), et(friday, 20))
    finally:
        await provider.aclose()
    candle = server.requests[0]
    assert (candle.path, candle.query["symbol"], candle.query["resolution"]) == (
        "/api/v1/stock/candle",
        "AAPL",
        "1",
    )
    assert (int(candle.query["from"]), int(candle.query["to"])) == (
        et(friday, 9).timestamp(),
        et(friday, 17).timestamp() - 1,
    )
    assert [r.query["resolution"] for r in server.requests] == ["1", "15", "D"]  # hours from quarter hours
    consistent(minutes + hours + days)
    # Minutes from 09:00 to the last one closed by 15:07; figures as Finnhub gave them.
    assert [bar.start for bar in minutes] == [et(friday, 9) + timedelta(minutes=k) for k in range(367)]
    first = figures(int(et(friday, 9).timestamp()))
    assert (minutes[0].open, minutes[0].high, minutes[0].low, minutes[0].close, minutes[0].volume) == (
        first["o"], first["h"], first["l"], first["c"], first["v"],
    )  # fmt: skip
    assert [bar.regular for bar in minutes[:31]] == [False] * 30 + [True]
    # Hours on our alignment: 04:00 ... 09:00-09:30, 09:30-10:30 ... 13:30-14:30; 14:30-15:30 still forms.
    starts = [bar.start.astimezone(NY).strftime("%H:%M") for bar in hours]
    assert starts == [
        "04:00",
        "05:00",
        "06:00",
        "07:00",
        "08:00",
        "09:00",
        "09:30",
        "10:30",
        "11:30",
        "12:30",
        "13:30",
    ]
    quarters = [figures(int((et(friday, 9, 30) + timedelta(minutes=15 * k)).timestamp())) for k in range(4)]
    assert (hours[6].open, hours[6].close, hours[6].volume) == (
        quarters[0]["o"], quarters[3]["c"], sum(int(q["v"]) for q in quarters),
    )  # fmt: skip
    assert hours[5].volume == sum(
        int(figures(int((et(friday, 9) + timedelta(minutes=15 * k)).timestamp()))["v"]) for k in range(2)
    )
    # Daily candles (stamped at midnight UTC) start at the session's open; Friday's is still forming.
    assert [bar.start for bar in days] == [et(date(2026, 11, d), 9, 30) for d in (30,)] + [
        et(date(2026, 12, d), 9, 30) for d in (1, 2, 3)
    ]


async def test_finnhub_without_candles_or_without_access(
    server: VendorServer, fake_time: FakeTime, nyse: ExchangeCalendarsMarketCalendar
) -> None:
    server.route = finnhub_route()
    provider = finnhub(server, fake_time, nyse)
    saturday = date(2026, 12, 5)
    try:
        assert await provider.bars("AAPL", "1d", et(saturday, 0), et(saturday, 23)) == []  # {"s": "no_data"}
        server.route = finnhub_route(key="another")
        with pytest.raises(ProviderAuthError, match="access"):
            await provider.bars("AAPL", "1m", et(saturday, 0), et(saturday, 1))
    finally:
        await provider.aclose()


def alpaca_route(page: int = 100) -> Any:
    """Alpaca's bars endpoint: RFC 3339 times, ``page`` bars a page, the rest behind next_page_token."""

    def route(request: Request) -> Reply:
        prefix, suffix = "/v2/stocks/", "/bars"
        if not (request.path.startswith(prefix) and request.path.endswith(suffix)):
            return Reply(404, {"message": "Not Found"})
        symbol = request.path[len(prefix) : -len(suffix)]
        q = request.query
        since = int(datetime.fromisoformat(q["start"]).timestamp())
        until = int(datetime.fromisoformat(q["end"]).timestamp())
        rows = vendor_bars(q["timeframe"], since, until)
        if q["timeframe"] == "1Day":  # Alpaca stamps daily bars at midnight in New York
            rows = [(int(et(datetime.fromtimestamp(t, UTC).date(), 0).timestamp()), f) for t, f in rows]
        offset = int(q.get("page_token") or 0)
        chunk = rows[offset : offset + min(page, int(q["limit"]))]
        more = offset + len(chunk) < len(rows)
        bars = [
            {
                "t": datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z"),
                **f,
                "n": 10,
                "vw": f["c"],
            }
            for t, f in chunk
        ]
        return Reply(
            200,
            {
                "bars": bars or None,
                "symbol": symbol,
                "next_page_token": str(offset + len(chunk)) if more else None,
            },
        )

    return route


async def test_alpaca_bars_page_after_page_onto_the_session(
    server: VendorServer, fake_time: FakeTime, nyse: ExchangeCalendarsMarketCalendar
) -> None:
    server.route = alpaca_route(page=100)
    fake_time.wall_now = FRIDAY.timestamp()
    settings = QuotesAlpacaSettings(base_url=server.url, feed="sip")
    provider = AlpacaQuoteProvider(settings, "id", "secret", timing=fake_time.timing, calendar=nyse)
    friday = date(2026, 12, 4)
    try:
        minutes = await provider.bars("BRK.B", "1m", et(friday, 9), et(friday, 17))
        hours = await provider.bars("BRK.B", "1h", et(friday, 9, 30), et(friday, 11, 30))
        days = await provider.bars("BRK.B", "1d", et(date(2026, 11, 30), 0), et(friday, 20))
    finally:
        await provider.aclose()
    pages = [r for r in server.requests if r.query["timeframe"] == "1Min"]
    assert len(pages) == 5 and [r.query.get("page_token") for r in pages] == [
        None,
        "100",
        "200",
        "300",
        "400",
    ]
    first = pages[0]
    assert first.path == "/v2/stocks/BRK.B/bars"
    assert (first.query["start"], first.query["end"]) == ("2026-12-04T14:00:00Z", "2026-12-04T22:00:00Z")
    assert (first.query["feed"], first.query["adjustment"], first.query["limit"]) == ("sip", "raw", "10000")
    assert (first.headers["apca-api-key-id"], first.headers["apca-api-secret-key"]) == ("id", "secret")
    consistent(minutes + hours + days)
    assert [bar.start for bar in minutes] == [et(friday, 9) + timedelta(minutes=k) for k in range(367)]
    assert {r.query["timeframe"] for r in server.requests} == {"1Min", "15Min", "1Day"}
    # Asked up to 11:30: the 10:30 hour needs the quarters up to 11:30, and the 11:30 bar at Alpaca's
    # inclusive end is not taken into it.
    assert [bar.start for bar in hours] == [et(friday, 9, 30), et(friday, 10, 30)]
    quarters = [figures(int((et(friday, 10, 30) + timedelta(minutes=15 * k)).timestamp())) for k in range(4)]
    assert (hours[1].open, hours[1].close, hours[1].high) == (
        quarters[0]["o"],
        quarters[3]["c"],
        max(q["h"] for q in quarters),
    )
    assert [bar.start for bar in days] == [et(date(2026, 11, 30), 9, 30)] + [
        et(date(2026, 12, d), 9, 30) for d in (1, 2, 3)
    ]
