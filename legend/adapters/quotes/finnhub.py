"""Finnhub (https://finnhub.io/docs/api/quote): ``GET /api/v1/quote?symbol=AAPL``, one ticker per request.

The key goes in the ``X-Finnhub-Token`` header (Finnhub accepts it there or as ``?token=``), so it never
appears in URLs or logs. Answer: ``{"c": 261.74, "d": 2.29, "dp": 0.8826, "h": 263.31, "l": 260.68,
"o": 261.07, "pc": 259.45, "t": 1582641000}``; an unknown symbol gets zeros (``"c": 0``) and is left out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from legend.adapters.quotes.errors import ProviderAuthError, ProviderError
from legend.adapters.quotes.vendor import OutOfBudget, Timing, VendorClient, first_failure, number
from legend.domain.quotes import Quote
from legend.settings import QuotesFinnhubSettings

log = logging.getLogger("legend.quotes.finnhub")

ENV_KEY = "FINNHUB_API_KEY"


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


class FinnhubQuoteProvider:
    """Finnhub REST quotes: one request per ticker, ``max_concurrency`` at once, paced to the plan's limits.

    A fetch lasts at most ``fetch_budget`` seconds plus one request timeout; tickers that did not fit (pacing,
    429) are asked first in the next fetch. Partial success returns what was fetched; when nothing was, the
    most telling error is raised (refused key, then rate limit, then the rest).
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
    ) -> None:
        self._settings = settings
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

    async def aclose(self) -> None:
        await self._http.aclose()
