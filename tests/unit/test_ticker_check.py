"""Unknown tickers are refused on subscribe when the provider says so; a provider that cannot answer
lets the subscription through; answers are remembered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.adapters.quotes.simulated import SimulatedQuoteProvider
from legend.domain.channels import ChannelRegistry
from legend.domain.quotes import Quote
from legend.domain.stats import Counters
from legend.services.streaming.limits import Limits
from legend.services.streaming.service import StreamingService
from legend.services.streaming.ticker_check import TickerCheck
from tests.support.streaming import send
from tests.support.transport import RecordingTransport


class Vendor:
    name = "vendor"

    def __init__(self, knows: set[str], fail: bool = False, slow: bool = False) -> None:
        self.knows, self.fail, self.slow, self.asked = knows, fail, slow, 0

    async def known(self, tickers: Iterable[str]) -> set[str]:
        self.asked += 1
        if self.slow:
            await asyncio.sleep(10)
        if self.fail:
            raise ConnectionError("vendor down")
        return set(tickers) & self.knows

    async def fetch(self, tickers: Iterable[str]) -> list[Quote]:
        return []

    async def aclose(self) -> None:
        pass


async def test_unknown_tickers_are_refused_known_ones_pass_and_answers_are_kept() -> None:
    clock = FrozenClock()
    vendor = Vendor({"AAPL"})
    check = TickerCheck(vendor, clock)
    assert await check.unknown("ZZZZ") and not await check.unknown("AAPL")
    assert await check.unknown("ZZZZ") and vendor.asked == 2  # remembered
    clock.advance(3601)
    assert await check.unknown("ZZZZ") and vendor.asked == 3  # an unknown answer is asked again later


async def test_a_vendor_that_fails_or_hangs_lets_the_subscription_through() -> None:
    assert not await TickerCheck(Vendor(set(), fail=True), FrozenClock()).unknown("AAPL")
    assert not await TickerCheck(Vendor(set(), slow=True), FrozenClock(), timeout=0.05).unknown("AAPL")


async def test_a_subscription_to_an_unknown_ticker_gets_unknown_ticker_and_nothing_else() -> None:
    clock = FrozenClock()
    backplane = InMemoryBackplane()
    check = TickerCheck(Vendor({"AAPL"}), clock)
    streaming = StreamingService(
        backplane, ChannelRegistry(), clock, Limits(), Counters(), ticker_check=check
    )
    await streaming.start()
    transport = RecordingTransport()
    session = streaming.open_session(transport, "u")
    await send(streaming, session, "subscribe", channel="ticker", ticker="zzzz")
    [error] = transport.of_type("error")
    assert error["code"] == "unknown_ticker" and "ZZZZ" in error["message"]
    assert streaming.tickers() == {} and not transport.of_type("subscription")
    await send(streaming, session, "subscribe", channel="ticker", ticker="aapl")
    assert transport.of_type("subscription")[0]["ticker"] == "AAPL"
    assert "note" not in transport.of_type("subscription")[0]


async def test_a_ticker_someone_published_prices_for_is_known_whatever_the_provider_says() -> None:
    published: set[str] = set()

    async def has_prices(ticker: str) -> bool:
        return ticker in published

    check = TickerCheck(Vendor(set()), FrozenClock(), published=has_prices)
    assert await check.unknown("INTERNAL")
    published.add("INTERNAL")  # an admin broadcast it, say
    assert not await check.unknown("INTERNAL")


def test_the_note_comes_from_the_provider_else_says_simulated_only_for_a_simulated_one() -> None:
    simulated = TickerCheck(SimulatedQuoteProvider(clock=FrozenClock()), FrozenClock())
    assert simulated.note("AAPL") == (
        "Simulated prices: a demo walk from AAPL's close of 31 Oct 2025, moving at all hours"
    )
    assert simulated.note("ZZZZZ9") == (
        "Made-up prices: ZZZZZ9 is not a ticker the simulation knows, so its level is invented"
    )
    assert TickerCheck(Vendor({"AAPL"}), FrozenClock()).note("AAPL") is None  # market data: nothing to say

    class Demo(Vendor):
        simulated = True  # a simulated provider of a plugin, without note()

    assert (
        TickerCheck(Demo(set()), FrozenClock()).note("X")
        == "Prices of X are simulated (quotes.provider = 'vendor')"
    )
