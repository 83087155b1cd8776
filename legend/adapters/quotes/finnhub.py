"""Finnhub (https://finnhub.io/docs/api/quote): ``GET /api/v1/quote?symbol=AAPL``, one ticker per request.

The key goes in the ``X-Finnhub-Token`` header (Finnhub accepts it there or as ``?token=``), so it never
appears in URLs or logs. Answer: ``{"c": 261.74, "d": 2.29, "dp": 0.8826, "h": 263.31, "l": 260.68,
"o": 261.07, "pc": 259.45, "t": 1582641000}``; an unknown symbol gets zeros (``"c": 0``) and is left out.

History (https://finnhub.io/docs/api/stock-candles): ``GET /api/v1/stock/candle?symbol=AAPL&resolution=1
&from=1572651000&to=1572674400`` (resolution 1, 5, 15 or D; hours are made of 15); answer ``{"s": "ok",
"t": [...], "o": [...], "h": [...], "l": [...], "c": [...], "v": [...]}`` (parallel arrays, ``t`` the
bar's start in epoch seconds), or ``{"s": "no_data"}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from legend.adapters.quotes.errors import ProviderAuthError, ProviderError
from legend.adapters.quotes.history import SOURCE, CalendarAlignment, VendorBar, from_vendor, vendor_range
from legend.adapters.quotes.vendor import OutOfBudget, Timing, VendorClient, first_failure, number
from legend.domain.bars import Bar, BarInterval
from legend.domain.quotes import Quote
from legend.ports.bar_history import MAX_HISTORY_BARS
from legend.ports.market import MarketCalendar
from legend.settings import QuotesFinnhubSettings

log = logging.getLogger("legend.quotes.finnhub")

ENV_KEY = "FINNHUB_API_KEY"
RESOLUTIONS: Final[dict[BarInterval, str]] = {"1m": "1", "5m": "5", "15m": "15", "1d": "D"}
HISTORY_BUDGET = 60.0  # seconds a history request may wait for pacing: history is never in a hurry


def quote_from_finnhub(symbol: str, data: Any) -> Quote | None:
    """Map Finnhub's quote object onto a Quote; None when Finnhub does not know the symbol."""
    if not isinstance(data, Mapping):
        raise ProviderError("finnhub", f"unexpected answer for {symbol}: {str(data)[:100]}")
    if isinstance(data.get("error"), str):
        raise ProviderError("finnhub", f"{symbol}: {data['error']}")
    price = number(data.get("c"))
    if price is None or price <= 0:
        return None  # Finnhub answers {"c": 0, "d": null, ...} for a symbol it does not cover
    previous_close = number(data.get("pc"))
    if previous_close is not None and previous_close <= 0:
        previous_close = None
    change = number(data.get("d"))
    if change is None:
        change = price - previous_close if previous_close else 0.0
    change_percent = number(data.get("dp"))
    if change_percent is None:
        change_percent = (price - previous_close) / previous_close * 100 if previous_close else 0.0
    high, low, open_ = (number(data.get(k)) for k in ("h", "l", "o"))
    stamp = number(data.get("t"))
    return Quote(
        ticker=symbol,
        price=price,
        change=round(change, 2),
        change_percent=round(change_percent, 2),
        volume=0,  # the quote endpoint carries no volume
        high=max(high, price) if high else price,
        low=min(low, price) if low else price,
        open=open_ if open_ else price,
        previous_close=previous_close,
        timestamp=stamp if stamp else None,
    )


def candles_from_finnhub(symbol: str, data: Any) -> list[VendorBar]:
    """Finnhub's candle arrays as (start, figures) rows; [] for ``"s": "no_data"``."""
    if not isinstance(data, Mapping) or not isinstance(data.get("s"), str):
        raise ProviderError("finnhub", f"unexpected candles for {symbol}: {str(data)[:100]}")
    if data["s"] == "no_data":
        return []
    if data["s"] != "ok":
        raise ProviderError(
            "finnhub", f"candles for {symbol}: status {data['s']!r} {str(data.get('error', ''))[:100]}"
        )
    columns = [data.get(key) for key in ("t", "o", "h", "l", "c", "v")]
    if (
        not all(isinstance(column, list) for column in columns)
        or len({len(c) for c in columns if isinstance(c, list)}) != 1
    ):
        raise ProviderError("finnhub", f"candles for {symbol}: the arrays t, o, h, l, c, v differ in length")
    rows: list[VendorBar] = []
    for t, o, h, lo, c, v in zip(*(column for column in columns if isinstance(column, list)), strict=True):
        stamp, prices, volume = number(t), [number(x) for x in (o, h, lo, c)], number(v)
        if stamp is None or any(p is None or p <= 0 for p in prices):
            raise ProviderError("finnhub", f"candles for {symbol}: a bad candle at t={t!r}")
        o_, h_, l_, c_ = (float(p or 0.0) for p in prices)
        rows.append((datetime.fromtimestamp(stamp, UTC), (o_, h_, l_, c_, int(volume or 0))))
    return rows


class FinnhubQuoteProvider:
    """Finnhub REST quotes: one request per ticker, ``max_concurrency`` at once, paced to the plan's limits.

    A fetch lasts at most ``fetch_budget`` seconds plus one request timeout; tickers that did not fit (pacing,
    429) are asked first in the next fetch. Partial success returns what was fetched; when nothing was, the
    most telling error is raised (refused key, then rate limit, then the rest).

    History (``BarHistory``) comes from the candle endpoint, on the ``calendar``'s sessions (NYSE when none
    is given); its requests share the quotes' pacing.
    """

    name: str = "finnhub"
    follows_market_hours: bool = True

    def __init__(
        self,
        settings: QuotesFinnhubSettings,
        api_key: str,
        *,
        timing: Timing | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        calendar: MarketCalendar | None = None,
    ) -> None:
        self._settings = settings
        self._alignment = CalendarAlignment(calendar)
        self._http = VendorClient(
            provider=self.name,
            settings=settings,
            headers={"X-Finnhub-Token": api_key},
            limits=[(settings.requests_per_second, 1.0), (settings.requests_per_minute, 60.0)],
            key_hint=f"quotes.finnhub.api_key or {ENV_KEY}",
            timing=timing,
            transport=transport,
        )
        self._last_asked: dict[str, float] = {}  # ticker -> monotonic time it was last fetched

    def stats(self) -> dict[str, object]:
        """Request, 429 and error counters, and how long the vendor still blocks us."""
        return self._http.counters()

    async def known(self, tickers: Iterable[str]) -> set[str]:
        """The tickers Finnhub has a quote for (asked once per new ticker, on its first subscription)."""
        return {quote.ticker for quote in await self.fetch(tickers)}

    async def fetch(self, tickers: Iterable[str]) -> list[Quote]:
        wanted = [t for t in dict.fromkeys(tickers) if t.strip()]
        if not wanted:
            return []
        timing = self._http.timing
        deadline = timing.monotonic() + self._settings.fetch_budget
        # Least recently fetched first, so that tickers left over last time go first now.
        order = sorted(wanted, key=lambda t: self._last_asked.get(t, float("-inf")))
        gate = asyncio.Semaphore(self._settings.max_concurrency)
        refused: list[ProviderAuthError] = []

        async def one(symbol: str) -> Quote | None:
            async with gate:
                if refused:  # the key was refused: do not spend more requests on it
                    raise refused[0]
                try:
                    data = await self._http.get_json("/quote", {"symbol": symbol}, deadline)
                except ProviderAuthError as exc:
                    refused.append(exc)
                    raise
            return quote_from_finnhub(symbol, data)

        results = await asyncio.gather(*(one(s) for s in order), return_exceptions=True)
        got: dict[str, Quote] = {}
        answered = 0
        errors: list[BaseException] = []
        now = timing.monotonic()
        for symbol, result in zip(order, results, strict=True):
            if isinstance(result, Quote | None):
                answered += 1
                self._last_asked[symbol] = now
                if result is not None:
                    got[symbol] = result
            elif isinstance(result, Exception):
                errors.append(result)
            else:
                raise result
        self._last_asked = {t: self._last_asked[t] for t in wanted if t in self._last_asked}
        if refused:
            raise refused[0]
        if errors and not answered:
            raise first_failure(self.name, errors)
        if errors:
            skipped = sum(isinstance(e, OutOfBudget) for e in errors)
            failed = [str(e) for e in errors if not isinstance(e, OutOfBudget)]
            log.warning(
                "finnhub: %d of %d tickers fetched; %d left for the next fetch%s",
                answered,
                len(wanted),
                skipped,
                f"; failures: {'; '.join(failed[:3])}" if failed else "",
            )
        return [got[t] for t in wanted if t in got]

    async def history_until(self, ticker: str) -> datetime | None:
        """Now: Finnhub's candles reach the present."""
        return datetime.fromtimestamp(self._http.timing.wall(), UTC) if ticker.strip() else None

    async def bars(self, ticker: str, interval: BarInterval, start: datetime, end: datetime) -> list[Bar]:
        """Closed candles of ``ticker`` at ``interval`` starting in ``[start, end)``."""
        alignment = await self._alignment.get()
        since, until_asked = vendor_range(interval, start, end)
        params = {
            "symbol": ticker,
            "resolution": RESOLUTIONS[SOURCE[interval]],
            "from": str(int(since.timestamp())),
            "to": str(int(until_asked.timestamp()) - 1),  # Finnhub's to is inclusive
        }
        deadline = self._http.timing.monotonic() + HISTORY_BUDGET
        try:
            data = await self._http.get_json("/stock/candle", params, deadline)
        except OutOfBudget:
            raise first_failure(self.name, [OutOfBudget("/stock/candle")]) from None
        rows = candles_from_finnhub(ticker, data)
        now = await self.history_until(ticker)
        assert now is not None
        return from_vendor(alignment, ticker, interval, rows, now, start, end)[:MAX_HISTORY_BARS]

    async def aclose(self) -> None:
        await self._http.aclose()
