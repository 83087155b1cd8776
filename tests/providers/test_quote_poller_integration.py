"""The providers under the real QuotePoller (in-memory backplane, frozen clock): replayed bars become
price_update messages with the bar's figures and market time; a refused key or a rate limit is counted,
backed off and shown to admins, never a crash."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.market_calendar import ExchangeCalendarsMarketCalendar
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.adapters.quotes import FinnhubQuoteProvider, ReplayQuoteProvider, ReplaySource
from legend.adapters.quotes.replay import SAMPLE_FILE
from legend.ports.quotes import QuoteProvider
from legend.services.polling.quote_poller import QuotePoller
from legend.settings import QuotesFinnhubSettings
from tests.providers.support import FakeTime, Reply, VendorServer, payload
from tests.support.streaming import build_streaming, send
from tests.support.transport import RecordingTransport

OPEN = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # a Tuesday, NYSE open: 5 s interval


async def build(provider: QuoteProvider, ticker: str) -> tuple[QuotePoller, InMemoryBackplane, FrozenClock]:
    clock = FrozenClock(OPEN)
    backplane = InMemoryBackplane()
    streaming, publisher, _ = build_streaming(clock, backplane)
    quote_poller = QuotePoller(
        provider=provider, calendar=ExchangeCalendarsMarketCalendar("XNYS"), publisher=publisher,
        cluster=backplane, streaming=streaming, clock=clock, update_interval=5, after_hours_interval=60,
    )  # fmt: skip
    await streaming.start()
    session = streaming.open_session(RecordingTransport(), "trader")
    await send(streaming, session, "subscribe", channel="ticker", ticker=ticker)
    return quote_poller, backplane, clock


async def published(backplane: InMemoryBackplane, stream: str) -> list[dict[str, Any]]:
    return [json.loads(e.text) for e in (await backplane.replay(stream, None)).envelopes]


async def test_replayed_bars_go_out_as_price_updates_with_the_bar_figures_and_time() -> None:
    quote_poller, backplane, clock = await build(
        ReplayQuoteProvider({"SPX": ReplaySource(SAMPLE_FILE)}), "SPX"
    )
    for _ in range(3):
        clock.advance(await quote_poller.tick())
    with SAMPLE_FILE.open(newline="") as file:
        bars = [next(reader) for reader in [csv.DictReader(file)] for _ in range(3)]
    messages = await published(backplane, "ticker:SPX")
    assert [m["price"] for m in messages] == [float(b["Close"]) for b in bars]
    assert [m["timestamp"] for m in messages] == [
        "2019-11-05T14:30:00.000Z", "2019-11-05T14:31:00.000Z", "2019-11-05T14:32:00.000Z",
    ]  # fmt: skip
    last = messages[-1]
    assert last["type"] == "price_update" and last["open"] == float(bars[0]["Open"])
    assert last["high"] == max(float(b["High"]) for b in bars)
    assert last["low"] == min(float(b["Low"]) for b in bars)
    assert last["previous_close"] == float(bars[0]["Open"]) and last["volume"] == 0
    assert last["change"] == round(float(bars[2]["Close"]) - float(bars[0]["Open"]), 2)
    assert quote_poller.provider_errors == 0 and quote_poller.status()["provider"] == "replay"


async def test_a_refused_key_is_counted_backed_off_and_shown_then_recovers(
    server: VendorServer, fake_time: FakeTime
) -> None:
    accept = [False]
    server.route = lambda request: (
        Reply(200, payload("finnhub/quote_AAPL.json"))
        if accept[0]
        else Reply(401, payload("finnhub/error_401.json"))
    )
    provider = FinnhubQuoteProvider(
        QuotesFinnhubSettings(base_url=f"{server.url}/api/v1"), "wrong", timing=fake_time.timing
    )
    try:
        quote_poller, backplane, clock = await build(provider, "AAPL")
        delays = []
        for _ in range(2):
            delays.append(await quote_poller.tick())
            clock.advance(delays[-1])
        assert delays == [10, 20]  # the quote poller's own backoff
        status = quote_poller.status()
        assert status["provider_errors"] == 2 and status["consecutive_failures"] == 2
        assert status["last_error"] == (
            "ProviderAuthError: finnhub: the API key was refused (HTTP 401: Invalid API key.); "
            "check quotes.finnhub.api_key or FINNHUB_API_KEY"
        )
        accept[0] = True
        assert await quote_poller.tick() == 5 and quote_poller.consecutive_failures == 0
        assert [m["price"] for m in await published(backplane, "ticker:AAPL")] == [189.84]
    finally:
        await provider.aclose()


async def test_a_rate_limit_that_outlasts_the_fetch_is_an_error_the_streamer_counts(
    server: VendorServer, fake_time: FakeTime
) -> None:
    server.route = lambda request: Reply(429, payload("finnhub/error_429.json"), {"Retry-After": "60"})
    provider = FinnhubQuoteProvider(
        QuotesFinnhubSettings(base_url=f"{server.url}/api/v1"), "k", timing=fake_time.timing
    )
    try:
        quote_poller, _, clock = await build(provider, "AAPL")
        clock.advance(await quote_poller.tick())
        await quote_poller.tick()
    finally:
        await provider.aclose()
    assert (
        quote_poller.provider_errors == 2 and len(server.requests) == 1
    )  # the second poll did not call Finnhub
    assert "ProviderRateLimited: finnhub: rate limited by the vendor (HTTP 429)" in str(
        quote_poller.last_error
    )
    assert provider.stats()["rate_limited"] == 1


def test_sample_file_is_the_intraday_sp500(tmp_path: Path) -> None:
    assert SAMPLE_FILE.name == "SP500_NOV2019_IDay.csv"
    assert (SAMPLE_FILE.parent / "LICENSE-mplfinance.txt").exists()  # the data's licence travels with it
