"""FinnhubQuoteProvider against a local server speaking Finnhub's documented REST protocol
(``GET /api/v1/quote?symbol=…``, key in ``X-Finnhub-Token``), with recorded example payloads."""

from __future__ import annotations

import logging
import threading
from contextlib import aclosing
from typing import Any

import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.quotes import (
    FinnhubQuoteProvider,
    ProviderAuthError,
    ProviderRateLimited,
    ProviderUnavailable,
    build_provider,
)
from legend.settings import QuotesFinnhubSettings, QuotesSettings, SettingsError
from tests.providers.support import FakeTime, Reply, Request, Route, VendorServer, payload

KEY = "test-finnhub-key"
QUOTES = {"AAPL": payload("finnhub/quote_AAPL.json"), "MSFT": payload("finnhub/quote_MSFT.json")}


def finnhub(quotes: dict[str, Any] = QUOTES, key: str = KEY) -> Route:
    """Finnhub's quote endpoint: token in the header (or ?token=), zeros for an unknown symbol."""

    def route(request: Request) -> Reply:
        if request.path != "/api/v1/quote":
            return Reply(404, {"error": "Not found"})
        if (request.headers.get("x-finnhub-token") or request.query.get("token")) != key:
            return Reply(401, payload("finnhub/error_401.json"))
        return Reply(200, quotes.get(request.query.get("symbol", ""), payload("finnhub/quote_unknown.json")))

    return route


def make(
    server: VendorServer, fake_time: FakeTime | None = None, key: str = KEY, **settings: Any
) -> FinnhubQuoteProvider:
    config = QuotesFinnhubSettings(base_url=f"{server.url}/api/v1", **settings)
    return FinnhubQuoteProvider(config, key, timing=fake_time.timing if fake_time else None)


async def test_maps_the_documented_quote_field_by_field(server: VendorServer) -> None:
    server.route = finnhub()
    async with aclosing(make(server)) as provider:
        aapl, msft = await provider.fetch(["AAPL", "MSFT", "NOPE"])
    # {"c": 189.84, "d": 1.5, "dp": 0.7964, "h": 190.32, "l": 188.19, "o": 189.57, "pc": 188.34, "t": 1700254800}
    assert (aapl.ticker, aapl.price, aapl.change, aapl.change_percent) == ("AAPL", 189.84, 1.5, 0.8)
    assert (aapl.high, aapl.low, aapl.open, aapl.previous_close) == (190.32, 188.19, 189.57, 188.34)
    assert (aapl.timestamp, aapl.volume) == (1700254800.0, 0)  # the quote endpoint has no volume
    assert (msft.price, msft.change, msft.change_percent, msft.previous_close) == (
        369.85,
        -0.88,
        -0.24,
        370.73,
    )
    # One request per symbol; the key in the header only, never in the URL; NOPE (zeros) left out.
    assert sorted(r.query["symbol"] for r in server.requests) == ["AAPL", "MSFT", "NOPE"]
    assert all(r.headers["x-finnhub-token"] == KEY and "token" not in r.query for r in server.requests)


async def test_requests_run_concurrently_but_never_more_than_the_cap(server: VendorServer) -> None:
    arrived = threading.Condition()
    seen = [0]

    def paired(request: Request) -> Reply:
        with arrived:  # hold each request until a second one is in flight: proves they overlap
            seen[0] += 1
            arrived.notify_all()
            arrived.wait_for(lambda: server.in_flight >= 2 or seen[0] >= 6, timeout=5)
        return finnhub()(request)

    server.route = paired
    async with aclosing(make(server, max_concurrency=2)) as provider:
        quotes = await provider.fetch(["AAPL", "MSFT", "A", "B", "C", "D"])
    assert [q.ticker for q in quotes] == ["AAPL", "MSFT"] and len(server.requests) == 6
    assert server.peak_in_flight == 2


async def test_paced_to_the_per_second_limit(server: VendorServer, fake_time: FakeTime) -> None:
    sent_at: list[float] = []

    def timed(request: Request) -> Reply:
        sent_at.append(fake_time.now)
        return finnhub()(request)

    server.route = timed
    async with aclosing(make(server, fake_time, requests_per_second=2, max_concurrency=1)) as provider:
        quotes = await provider.fetch(["AAPL", "MSFT", "X1", "X2", "X3"])
    assert len(quotes) == 2 and len(sent_at) == 5
    assert all(sum(1 for t in sent_at if start <= t < start + 1.0) <= 2 for start in sent_at)
    assert sent_at[-1] - sent_at[0] == pytest.approx(2.0)  # 5 requests at 2/s: 0, 0, 1, 1, 2


async def test_what_does_not_fit_the_minute_limit_goes_first_next_time(
    server: VendorServer, fake_time: FakeTime
) -> None:
    server.route = finnhub()
    async with aclosing(
        make(server, fake_time, requests_per_minute=3, max_concurrency=1, fetch_budget=4)
    ) as provider:
        first = await provider.fetch(["AAPL", "MSFT", "X1", "X2", "X3"])  # 3 sent, 2 deferred
        assert [q.ticker for q in first] == ["AAPL", "MSFT"] and len(server.requests) == 3
        assert provider.stats()["deferred"] == 2 and fake_time.sleeps == []  # a 60 s wait does not fit
        fake_time.advance(60)
        await provider.fetch(["AAPL", "MSFT", "X1", "X2", "X3"])
    asked = [r.query["symbol"] for r in server.requests]
    assert asked[:3] == ["AAPL", "MSFT", "X1"] and asked[3:5] == ["X2", "X3"]  # the left-over ones first


@pytest.mark.parametrize(
    ("status", "body"), [(401, "finnhub/error_401.json"), (403, "finnhub/error_403.json")]
)
async def test_a_refused_key_is_a_clear_error_and_stops_spending_requests(
    server: VendorServer, status: int, body: str
) -> None:
    server.route = lambda request: Reply(status, payload(body))
    async with aclosing(make(server, key="wrong", max_concurrency=1)) as provider:
        with pytest.raises(ProviderAuthError) as error:
            await provider.fetch(["AAPL", "MSFT", "TSLA"])
    detail = payload(body)["error"]
    assert str(error.value) == (
        f"finnhub: the API key was refused (HTTP {status}: {detail}); "
        "check quotes.finnhub.api_key or FINNHUB_API_KEY"
    )
    assert len(server.requests) == 1


async def test_429_with_retry_after_backs_off_then_succeeds_and_is_counted(
    server: VendorServer, fake_time: FakeTime
) -> None:
    answers = iter([Reply(429, payload("finnhub/error_429.json"), {"Retry-After": "1"})])
    server.route = lambda request: next(answers, None) or finnhub()(request)
    async with aclosing(make(server, fake_time)) as provider:
        [quote] = await provider.fetch(["AAPL"])
    assert quote.price == 189.84
    assert fake_time.sleeps == [1.0] and len(server.requests) == 2
    assert provider.stats() | {"blocked_for": 0} == {
        "requests": 2, "rate_limited": 1, "deferred": 0, "errors": 0, "last_error": None, "blocked_for": 0,
    }  # fmt: skip


async def test_429_without_retry_after_backs_off_exponentially_with_a_cap(
    server: VendorServer, fake_time: FakeTime
) -> None:
    server.route = lambda request: Reply(429, payload("finnhub/error_429.json"))
    async with aclosing(
        make(server, fake_time, max_retries=4, backoff_initial=0.5, backoff_max=1.5, fetch_budget=30)
    ) as provider:
        with pytest.raises(
            ProviderRateLimited, match=r"finnhub: rate limited by the vendor \(HTTP 429\) 5 times"
        ):
            await provider.fetch(["AAPL"])
    assert fake_time.sleeps == [0.5, 1.0, 1.5, 1.5] and len(server.requests) == 5


async def test_a_long_retry_after_fails_fast_without_calling_the_vendor_until_it_passes(
    server: VendorServer, fake_time: FakeTime
) -> None:
    answers = iter([Reply(429, payload("finnhub/error_429.json"), {"Retry-After": "30"})])
    server.route = lambda request: next(answers, None) or finnhub()(request)
    async with aclosing(make(server, fake_time, fetch_budget=4)) as provider:
        with pytest.raises(ProviderRateLimited) as error:
            await provider.fetch(["AAPL"])
        assert error.value.retry_after == 30 and fake_time.sleeps == []  # never waits past the budget
        fake_time.advance(20)
        with pytest.raises(ProviderRateLimited, match=r"next try in 10.0 s"):
            await provider.fetch(["AAPL"])
        assert len(server.requests) == 1  # the vendor was not asked again while it said no
        fake_time.advance(10)
        assert [q.ticker for q in await provider.fetch(["AAPL"])] == ["AAPL"]


async def test_the_rate_limit_reset_header_is_honoured(server: VendorServer, fake_time: FakeTime) -> None:
    reset = str(int(fake_time.wall_now) + 2)
    answers = iter([Reply(429, payload("finnhub/error_429.json"), {"X-Ratelimit-Reset": reset})])
    server.route = lambda request: next(answers, None) or finnhub()(request)
    async with aclosing(make(server, fake_time)) as provider:
        assert len(await provider.fetch(["MSFT"])) == 1
    assert fake_time.sleeps == [2.0]


async def test_server_error_is_an_exception(server: VendorServer) -> None:
    server.route = lambda request: Reply(502, b"<html>Bad Gateway</html>")
    async with aclosing(make(server)) as provider:
        with pytest.raises(
            ProviderUnavailable, match=r"finnhub: server error \(HTTP 502: <html>Bad Gateway</html>\)"
        ):
            await provider.fetch(["AAPL"])
    assert provider.stats()["errors"] == 1


async def test_a_hanging_vendor_times_out(server: VendorServer) -> None:
    server.route = server.hang
    async with aclosing(make(server, timeout=0.2)) as provider:
        with pytest.raises(
            ProviderUnavailable, match=r"finnhub: no answer from http://127.0.0.1:\d+/api/v1 within 0.2 s"
        ):
            await provider.fetch(["AAPL"])


async def test_an_unreachable_vendor_is_an_exception(server: VendorServer) -> None:
    url = server.url
    server.close()
    async with aclosing(
        FinnhubQuoteProvider(QuotesFinnhubSettings(base_url=f"{url}/api/v1", timeout=2), KEY)
    ) as provider:
        with pytest.raises(ProviderUnavailable, match=r"finnhub: cannot reach"):
            await provider.fetch(["AAPL"])


async def test_partial_success_returns_what_it_got(
    server: VendorServer, caplog: pytest.LogCaptureFixture
) -> None:
    ok = finnhub()
    server.route = lambda request: (
        Reply(500, {"error": "boom"}) if request.query["symbol"] == "MSFT" else ok(request)
    )
    async with aclosing(make(server)) as provider:
        with caplog.at_level(logging.WARNING, logger="legend.quotes.finnhub"):
            quotes = await provider.fetch(["AAPL", "MSFT"])
    assert [q.ticker for q in quotes] == ["AAPL"]
    assert "1 of 2 tickers fetched" in caplog.text and "HTTP 500: boom" in caplog.text


def test_build_provider_needs_a_key_from_settings_or_environment() -> None:
    clock = FrozenClock()
    settings = QuotesSettings(provider="finnhub")
    with pytest.raises(SettingsError) as error:
        build_provider(settings, clock, environ={"FINNHUB_API_KEY": "  "})
    assert str(error.value) == "quotes.finnhub.api_key is required (or FINNHUB_API_KEY)"
    assert isinstance(build_provider(settings, clock, environ={"FINNHUB_API_KEY": "k"}), FinnhubQuoteProvider)
    with_key = QuotesSettings(provider="finnhub", finnhub=QuotesFinnhubSettings(api_key="from-settings"))
    provider = build_provider(with_key, clock, environ={})
    assert provider.name == "finnhub"
