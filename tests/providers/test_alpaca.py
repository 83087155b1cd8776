"""AlpacaQuoteProvider against a local server speaking Alpaca's documented market data v2 protocol
(``GET /v2/stocks/snapshots?symbols=…&feed=…``, APCA-API-KEY-ID / APCA-API-SECRET-KEY headers), with
recorded example payloads."""

from __future__ import annotations

import copy
import logging
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any

import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.quotes import (
    AlpacaQuoteProvider,
    ProviderAuthError,
    ProviderRateLimited,
    ProviderUnavailable,
    build_provider,
)
from legend.settings import QuotesAlpacaSettings, QuotesSettings, SettingsError
from tests.providers.support import FakeTime, Reply, Request, Route, VendorServer, payload

KEY_ID, SECRET = "AKTESTKEYID", "test-secret"
SNAPSHOTS: dict[str, Any] = payload("alpaca/snapshots.json")


def alpaca(snapshots: dict[str, Any] = SNAPSHOTS) -> Route:
    """Alpaca's multi-snapshot endpoint: a map of the known symbols asked for; the rest absent."""

    def route(request: Request) -> Reply:
        if request.path != "/v2/stocks/snapshots":
            return Reply(404, {"message": "Not Found"})
        if (request.headers.get("apca-api-key-id"), request.headers.get("apca-api-secret-key")) != (
            KEY_ID,
            SECRET,
        ):
            return Reply(401, payload("alpaca/error_401.json"))
        symbols = request.query.get("symbols", "").split(",")
        return Reply(200, {s: snapshots[s] for s in symbols if s in snapshots})

    return route


def make(
    server: VendorServer, fake_time: FakeTime | None = None, key_id: str = KEY_ID, **settings: Any
) -> AlpacaQuoteProvider:
    config = QuotesAlpacaSettings(base_url=server.url, **settings)
    return AlpacaQuoteProvider(config, key_id, SECRET, timing=fake_time.timing if fake_time else None)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


async def test_maps_the_documented_snapshot_field_by_field(server: VendorServer) -> None:
    server.route = alpaca()
    async with aclosing(make(server)) as provider:
        aapl, msft = await provider.fetch(["AAPL", "MSFT", "NOPE"])
    # A regular session: latestTrade.p, dailyBar o/h/l/v, prevDailyBar.c, latestTrade.t.
    assert (aapl.ticker, aapl.price, aapl.open, aapl.high, aapl.low) == (
        "AAPL",
        183.05,
        184.9,
        185.09,
        182.13,
    )
    assert (aapl.volume, aapl.previous_close) == (1043281, 184.57)
    assert (aapl.change, aapl.change_percent) == (-1.52, -0.82)
    assert aapl.timestamp == pytest.approx(at("2024-05-10T19:59:59.912743"), abs=1e-6)
    # Pre-market: the latest trade (13 May) is newer than dailyBar (10 May): that bar's close is the previous
    # close, and the new day has no regular-session figures yet.
    assert (msft.price, msft.previous_close, msft.change, msft.change_percent) == (
        414.1,
        414.74,
        -0.64,
        -0.15,
    )
    assert (msft.open, msft.high, msft.low, msft.volume) == (414.1, 414.1, 414.1, 0)
    # One request for all three; keys in the documented headers; the feed asked for.
    [request] = server.requests
    assert request.query == {"symbols": "AAPL,MSFT,NOPE", "feed": "iex"}
    assert (request.headers["apca-api-key-id"], request.headers["apca-api-secret-key"]) == (KEY_ID, SECRET)


def generated(symbols: list[str]) -> dict[str, Any]:
    out = {}
    for i, symbol in enumerate(symbols):
        snap = copy.deepcopy(SNAPSHOTS["AAPL"])
        snap["latestTrade"]["p"] = 100 + i / 100
        out[symbol] = snap
    return out


async def test_batches_many_symbols_per_request_chunked_past_the_maximum(server: VendorServer) -> None:
    symbols = [f"S{i:03d}" for i in range(250)]
    server.route = alpaca(generated(symbols))
    async with aclosing(make(server, max_symbols_per_request=100)) as provider:
        quotes = await provider.fetch(symbols)
    asked = [r.query["symbols"].split(",") for r in server.requests]
    assert sorted(len(batch) for batch in asked) == [50, 100, 100]
    assert sorted(s for batch in asked for s in batch) == symbols  # each exactly once
    assert [q.ticker for q in quotes] == symbols and quotes[249].price == 102.49


@pytest.mark.parametrize(("status", "body"), [(401, "alpaca/error_401.json"), (403, "alpaca/error_403.json")])
async def test_a_refused_key_is_a_clear_error(server: VendorServer, status: int, body: str) -> None:
    server.route = lambda request: Reply(status, payload(body))
    async with aclosing(make(server, key_id="wrong")) as provider:
        with pytest.raises(ProviderAuthError) as error:
            await provider.fetch(["AAPL"])
    assert str(error.value) == (
        f"alpaca: the API key was refused (HTTP {status}: {payload(body)['message']}); check "
        "quotes.alpaca.key_id / quotes.alpaca.secret_key or APCA_API_KEY_ID / APCA_API_SECRET_KEY"
    )


async def test_429_waits_for_the_rate_limit_reset_then_succeeds(
    server: VendorServer, fake_time: FakeTime
) -> None:
    headers = {
        "X-RateLimit-Limit": "200",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(fake_time.wall_now) + 3),
    }
    answers = iter([Reply(429, payload("alpaca/error_429.json"), headers)])
    server.route = lambda request: next(answers, None) or alpaca()(request)
    async with aclosing(make(server, fake_time)) as provider:
        quotes = await provider.fetch(["AAPL"])
    assert [q.ticker for q in quotes] == ["AAPL"]
    assert fake_time.sleeps == [3.0] and provider.stats()["rate_limited"] == 1


async def test_429_beyond_the_budget_is_raised_for_the_streamer(
    server: VendorServer, fake_time: FakeTime
) -> None:
    server.route = lambda request: Reply(429, payload("alpaca/error_429.json"), {"Retry-After": "120"})
    async with aclosing(make(server, fake_time)) as provider:
        with pytest.raises(ProviderRateLimited, match=r"alpaca: rate limited by the vendor \(HTTP 429\)"):
            await provider.fetch(["AAPL", "MSFT"])
    assert fake_time.sleeps == []


async def test_an_invalid_symbol_is_dropped_remembered_and_the_rest_fetched(server: VendorServer) -> None:
    ok = alpaca()

    def strict(request: Request) -> Reply:
        if "12AB" in request.query.get("symbols", "").split(","):
            return Reply(400, payload("alpaca/error_400_invalid_symbol.json"))
        return ok(request)

    server.route = strict
    async with aclosing(make(server)) as provider:
        first = await provider.fetch(["12AB", "AAPL"])
        second = await provider.fetch(["12AB", "MSFT"])
    assert [q.ticker for q in first] == ["AAPL"] and [q.ticker for q in second] == ["MSFT"]
    assert [r.query["symbols"] for r in server.requests] == ["12AB,AAPL", "AAPL", "MSFT"]
    assert provider.stats()["invalid_symbols"] == ["12AB"]


async def test_a_null_snapshot_or_one_without_price_is_left_out(server: VendorServer) -> None:
    server.route = alpaca({"AAPL": SNAPSHOTS["AAPL"], "HALT": None, "EMPTY": {"latestTrade": None}})
    async with aclosing(make(server)) as provider:
        quotes = await provider.fetch(["AAPL", "HALT", "EMPTY"])
    assert [q.ticker for q in quotes] == ["AAPL"]


async def test_server_error_and_timeout_are_exceptions(server: VendorServer) -> None:
    server.route = lambda request: Reply(500, {"message": "internal server error"})
    async with aclosing(make(server)) as provider:
        with pytest.raises(
            ProviderUnavailable, match=r"alpaca: server error \(HTTP 500: internal server error\)"
        ):
            await provider.fetch(["AAPL"])

    server.route = server.hang
    async with aclosing(make(server, timeout=0.2)) as provider:
        with pytest.raises(
            ProviderUnavailable, match=r"alpaca: no answer from http://127.0.0.1:\d+ within 0.2 s"
        ):
            await provider.fetch(["AAPL"])


async def test_partial_success_when_one_batch_fails(
    server: VendorServer, caplog: pytest.LogCaptureFixture
) -> None:
    symbols = [f"S{i:03d}" for i in range(4)]
    ok = alpaca(generated(symbols))
    server.route = lambda request: (
        Reply(503, {"message": "unavailable"}) if "S003" in request.query["symbols"] else ok(request)
    )
    async with aclosing(make(server, max_symbols_per_request=2)) as provider:
        with caplog.at_level(logging.WARNING, logger="legend.quotes.alpaca"):
            quotes = await provider.fetch(symbols)
    assert [q.ticker for q in quotes] == ["S000", "S001"]
    assert "1 of 2 batches fetched" in caplog.text and "HTTP 503: unavailable" in caplog.text


def test_build_provider_needs_both_keys() -> None:
    clock = FrozenClock()
    settings = QuotesSettings(provider="alpaca")
    with pytest.raises(SettingsError) as error:
        build_provider(settings, clock, environ={})
    assert str(error.value) == (
        "quotes.alpaca.key_id is required (or APCA_API_KEY_ID); "
        "quotes.alpaca.secret_key is required (or APCA_API_SECRET_KEY)"
    )
    with pytest.raises(
        SettingsError, match=r"^quotes.alpaca.secret_key is required \(or APCA_API_SECRET_KEY\)$"
    ):
        build_provider(settings, clock, environ={"APCA_API_KEY_ID": "id"})
    env = {"APCA_API_KEY_ID": "id", "APCA_API_SECRET_KEY": "secret"}
    assert isinstance(build_provider(settings, clock, environ=env), AlpacaQuoteProvider)
