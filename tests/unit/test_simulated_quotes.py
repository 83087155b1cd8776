"""SimulatedQuoteProvider: reproducible, internally consistent quotes whose day figures roll at each session's
open, starting from realistic levels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.quotes.simulated import REFERENCE_CLOSES, SimulatedQuoteProvider
from legend.domain.quotes import Quote
from legend.ports.quotes import QuoteProvider

# 15:00 UTC = 10:00 in New York (winter); the New York date changes at 05:00 UTC.
START = datetime(2026, 1, 6, 15, 0, tzinfo=UTC)


async def _run(
    provider: SimulatedQuoteProvider, clock: FrozenClock, tickers: list[str], n: int
) -> list[Quote]:
    quotes: list[Quote] = []
    for _ in range(n):
        quotes += await provider.fetch(tickers)
        clock.advance(5)
    return quotes


async def test_implements_the_port() -> None:
    provider: QuoteProvider = SimulatedQuoteProvider(clock=FrozenClock(START))
    assert provider.name == "simulated"
    await provider.aclose()


async def test_same_seed_same_quotes() -> None:
    runs = []
    for _ in range(2):
        clock = FrozenClock(START)
        runs.append(await _run(SimulatedQuoteProvider(seed=7, clock=clock), clock, ["AAPL", "MSFT"], 20))
    assert runs[0] == runs[1]


async def test_other_seed_other_quotes() -> None:
    a = await SimulatedQuoteProvider(seed=1, clock=FrozenClock(START)).fetch(["AAPL", "ZZZQ"])
    b = await SimulatedQuoteProvider(seed=2, clock=FrozenClock(START)).fetch(["AAPL", "ZZZQ"])
    assert (a[0].open, a[0].price) != (b[0].open, b[0].price)  # AAPL: same reference close, other walk
    assert a[1].previous_close != b[1].previous_close  # a symbol without one: another drawn level


async def test_well_known_tickers_start_from_their_reference_close() -> None:
    clock = FrozenClock(START)
    provider = SimulatedQuoteProvider(seed=7, clock=clock)
    tickers = ["AAPL", "NVDA", "SPY", "QQQ", "MSFT", "BRK.B"]
    first = await provider.fetch(tickers)
    for quote, ticker in zip(first, tickers, strict=True):  # the history is placed there, within a cent
        assert quote.previous_close is not None
        assert abs(quote.previous_close - REFERENCE_CLOSES[ticker]) <= 0.01
    assert 250 < first[0].price < 290 and 600 < first[2].price < 760  # AAPL near $270, SPY near $682
    for quote in first:  # the opening gap and the session's first half hour stay close to the reference
        assert quote.previous_close is not None
        assert abs(quote.open / quote.previous_close - 1) < 0.05
        assert abs(quote.price / quote.open - 1) < 0.05
    for _ in range(100):  # an hour and more of five-second polls at the default volatility
        clock.advance(5)
        later = await provider.fetch(tickers)
    for quote, reference in zip(later, first, strict=True):
        assert quote.previous_close == reference.previous_close  # the same session
        assert abs(quote.price / reference.previous_close - 1) < 0.2


def test_the_reference_table_is_plausible() -> None:
    assert {"AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "SPY", "QQQ", "DIA", "IWM"} <= set(
        REFERENCE_CLOSES
    )
    assert all(t == t.upper() and 1 <= price < 5000 for t, price in REFERENCE_CLOSES.items())
    assert all(price == round(price, 2) for price in REFERENCE_CLOSES.values())


async def test_a_symbol_without_a_reference_gets_a_plausible_level_that_depends_only_on_the_seed() -> None:
    quotes = [
        await SimulatedQuoteProvider(seed=3, clock=FrozenClock(START)).fetch(["ZZZQ"]) for _ in range(2)
    ]
    assert quotes[0] == quotes[1]
    assert quotes[0][0].previous_close is not None and 5 <= quotes[0][0].previous_close <= 800


async def test_different_tickers_differ_and_look_plausible() -> None:
    tickers = [f"T{i}" for i in range(50)]
    quotes = await SimulatedQuoteProvider(clock=FrozenClock(START)).fetch(tickers)
    assert [q.ticker for q in quotes] == tickers
    closes = {q.previous_close for q in quotes}
    assert len(closes) == len(tickers)
    assert all(q.previous_close is not None and 5 <= q.previous_close <= 800 for q in quotes)


async def test_figures_are_consistent() -> None:
    clock = FrozenClock(START)
    provider = SimulatedQuoteProvider(clock=clock, volatility=0.01)
    volumes: dict[str, int] = {}
    for q in await _run(provider, clock, ["AAPL", "TSLA", "PENNY"], 200):
        assert q.previous_close is not None
        assert q.price == round(q.price, 2)
        assert q.change == round(q.price - q.previous_close, 2)
        assert abs(q.change - (q.price - q.previous_close)) < 1e-9
        assert q.change_percent == round(q.change / q.previous_close * 100, 2)
        assert q.high >= q.price >= q.low
        assert q.high >= q.open >= q.low
        assert q.volume >= volumes.get(q.ticker, 0)
        volumes[q.ticker] = q.volume
        assert q.timestamp is not None


async def test_timestamp_comes_from_the_clock() -> None:
    clock = FrozenClock(START)
    (quote,) = await SimulatedQuoteProvider(clock=clock).fetch(["AAPL"])
    assert quote.timestamp == START.timestamp()


async def test_price_walks() -> None:
    clock = FrozenClock(START)
    quotes = await _run(SimulatedQuoteProvider(clock=clock), clock, ["AAPL"], 50)
    assert len({q.price for q in quotes}) > 1


async def test_day_figures_stay_after_the_close_and_roll_at_the_next_open() -> None:
    clock = FrozenClock(START)
    provider = SimulatedQuoteProvider(clock=clock, volatility=0.01)
    day_one = await _run(provider, clock, ["AAPL"], 30)
    last = day_one[-1]
    assert last.volume > day_one[0].volume  # a session trades

    clock.set_now(datetime(2026, 1, 7, 4, 59, tzinfo=UTC))  # 23:59 on Jan 6 in New York: after the close
    (night,) = await provider.fetch(["AAPL"])
    assert night.price != last.price  # the demo moves at any hour
    assert (night.open, night.high, night.low, night.volume, night.previous_close) == (
        last.open, last.high, last.low, last.volume, last.previous_close,
    )  # fmt: skip

    clock.set_now(datetime(2026, 1, 7, 14, 30, 5, tzinfo=UTC))  # five seconds after the open
    (next_day,) = await provider.fetch(["AAPL"])
    assert next_day.previous_close == last.price  # the last price of Jan 6's session
    assert next_day.open == next_day.high == next_day.low == next_day.price  # opened at its first price
    assert 0 <= next_day.volume < last.volume / 10  # five seconds' worth


async def test_forgets_least_recently_used_tickers() -> None:
    clock = FrozenClock(START)
    provider = SimulatedQuoteProvider(clock=clock, max_tickers=3)
    await provider.fetch(["A", "B", "C"])
    for _ in range(5):
        clock.advance(5)
        await provider.fetch(["A"])  # A is kept warm; B is now the least recently used
    (a_before,) = await provider.fetch(["A"])
    await provider.fetch(["D"])
    assert len(provider) == 3
    clock.advance(5)
    (a_after,) = await provider.fetch(["A"])
    assert a_after.volume > a_before.volume  # still remembered
    # B was forgotten: it starts again from its seed, so its first quote is a new walk's at that instant.
    fresh = SimulatedQuoteProvider(clock=FrozenClock(clock.now()), max_tickers=3)
    assert await provider.fetch(["B"]) == await fresh.fetch(["B"])


async def test_blank_and_duplicate_tickers() -> None:
    quotes = await SimulatedQuoteProvider(clock=FrozenClock(START)).fetch(["AAPL", "", "  ", "AAPL"])
    assert [q.ticker for q in quotes] == ["AAPL"]


def test_frozen_clock_advance_moves_both() -> None:
    clock = FrozenClock(START, monotonic=10.0)
    clock.advance(2.5)
    assert clock.now() == START + timedelta(seconds=2.5)
    assert clock.monotonic() == 12.5
    clock.set_now(START)  # wall time may step back; monotonic time stays
    assert clock.now() == START and clock.monotonic() == 12.5
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set_monotonic(1.0)
    with pytest.raises(ValueError):
        FrozenClock(datetime(2026, 1, 6, 15, 0))
