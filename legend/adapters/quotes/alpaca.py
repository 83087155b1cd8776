"""Alpaca market data v2 (https://docs.alpaca.markets/reference/stocksnapshots):
``GET /v2/stocks/snapshots?symbols=AAPL,MSFT&feed=iex`` with the ``APCA-API-KEY-ID`` and
``APCA-API-SECRET-KEY`` headers; many tickers per request.

The answer maps each symbol to ``{"latestTrade": {"t", "p", "s", …}, "latestQuote": {…}, "minuteBar": {…},
"dailyBar": {"t", "o", "h", "l", "c", "v", …}, "prevDailyBar": {…}}``; a symbol Alpaca does not know is
absent (or null). A symbol Alpaca calls invalid (HTTP 400 "invalid symbol: X") is dropped and remembered,
and the rest of its batch is asked again.

History (https://docs.alpaca.markets/reference/stockbarsingle): ``GET /v2/stocks/AAPL/bars?timeframe=1Min
&start=2024-05-10T13:30:00Z&end=…&limit=10000&adjustment=raw&feed=iex&sort=asc``, answered with
``{"bars": [{"t", "o", "h", "l", "c", "v", "n", "vw"}, …], "symbol": "AAPL", "next_page_token": …}``;
the next page repeats the request with ``page_token``; ``bars`` is null when there are none.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from legend.adapters.quotes.errors import ProviderAuthError, ProviderError
from legend.adapters.quotes.history import SOURCE, CalendarAlignment, VendorBar, from_vendor, vendor_range
from legend.adapters.quotes.vendor import (
    OutOfBudget,
    RequestRejected,
    Timing,
    VendorClient,
    first_failure,
    number,
)
from legend.domain.bars import Bar, BarInterval
from legend.domain.quotes import Quote
from legend.ports.bar_history import MAX_HISTORY_BARS
from legend.ports.market import MarketCalendar
from legend.settings import QuotesAlpacaSettings

log = logging.getLogger("legend.quotes.alpaca")

ENV_KEY_ID = "APCA_API_KEY_ID"
ENV_SECRET_KEY = "APCA_API_SECRET_KEY"
_NEW_YORK = ZoneInfo("America/New_York")
_INVALID_SYMBOL = re.compile(r"invalid symbols?:?\s*([A-Za-z0-9.\-/^]+)", re.IGNORECASE)
_MAX_INVALID = 10_000
TIMEFRAMES: Final[dict[BarInterval, str]] = {"1m": "1Min", "5m": "5Min", "15m": "15Min", "1d": "1Day"}
PAGE_LIMIT = 10_000  # Alpaca's largest page
HISTORY_BUDGET = 60.0  # seconds a history request may wait for pacing: history is never in a hurry


def _time(value: object) -> datetime | None:
    """RFC 3339 with up to nanoseconds ("2024-05-10T19:59:59.912743168Z"), as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # microseconds are enough
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _bar(snapshot: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    bar = snapshot.get(key)
    return bar if isinstance(bar, Mapping) else {}


def quote_from_alpaca(symbol: str, snapshot: Any) -> Quote | None:
    """Map one Alpaca snapshot onto a Quote; None when it holds no price.

    price = latestTrade.p (else dailyBar.c); open/high/low/volume = dailyBar o/h/l/v, high/low widened to
    include the price; previous_close = prevDailyBar.c; timestamp = latestTrade.t. When the latest trade is
    from a later New York date than dailyBar (pre-market, before today's bar exists), the new day has no
    regular-session figures yet: previous_close = dailyBar.c, open = high = low = price, volume = 0.
    """
    if snapshot is None:
        return None
    if not isinstance(snapshot, Mapping):
        raise ProviderError("alpaca", f"unexpected snapshot for {symbol}: {str(snapshot)[:100]}")
    trade, daily, previous = (_bar(snapshot, k) for k in ("latestTrade", "dailyBar", "prevDailyBar"))
    price = number(trade.get("p"))
    traded_at = _time(trade.get("t"))
    if price is None or price <= 0:
        price = number(daily.get("c"))
        traded_at = None
    if price is None or price <= 0:
        return None
    daily_at = _time(daily.get("t"))
    daily_date: date | None = daily_at.astimezone(UTC).date() if daily_at else None  # bars stamp NY midnight
    if (
        daily_date is not None
        and traded_at is not None
        and traded_at.astimezone(_NEW_YORK).date() > daily_date
    ):
        previous_close = number(daily.get("c"))
        open_ = high = low = price
        volume = 0
    else:
        previous_close = number(previous.get("c"))
        open_ = number(daily.get("o")) or price
        high = max(number(daily.get("h")) or price, price)
        low = min(number(daily.get("l")) or price, price)
        volume = int(number(daily.get("v")) or 0)
    if previous_close is not None and previous_close <= 0:
        previous_close = None
    difference = price - previous_close if previous_close else 0.0
    stamp = traded_at or daily_at
    return Quote(
        ticker=symbol,
        price=price,
        change=round(difference, 2),
        change_percent=round(difference / previous_close * 100, 2) if previous_close else 0.0,
        volume=volume,
        high=high,
        low=low,
        open=open_,
        previous_close=previous_close,
        timestamp=stamp.timestamp() if stamp else None,
    )


def bars_from_alpaca(symbol: str, data: Any) -> tuple[list[VendorBar], str | None]:
    """One page of Alpaca bars as (start, figures) rows, and the next page's token."""
    if not isinstance(data, Mapping):
        raise ProviderError("alpaca", f"unexpected bars for {symbol}: {str(data)[:100]}")
    listed = data.get("bars") or []
    token = data.get("next_page_token")
    if not isinstance(listed, list) or not (token is None or isinstance(token, str)):
        raise ProviderError("alpaca", f"unexpected bars for {symbol}: {str(data)[:100]}")
    rows: list[VendorBar] = []
    for item in listed:
        at = _time(item.get("t")) if isinstance(item, Mapping) else None
        prices = [number(item.get(k)) for k in ("o", "h", "l", "c")] if isinstance(item, Mapping) else []
        if at is None or len(prices) != 4 or any(p is None or p <= 0 for p in prices):
            raise ProviderError("alpaca", f"bars for {symbol}: a bad bar {str(item)[:100]}")
        o, h, lo, c = (float(p or 0.0) for p in prices)
        rows.append((at, (o, h, lo, c, int(number(item.get("v")) or 0))))
    return rows, token or None


class AlpacaQuoteProvider:
    """Alpaca snapshots: tickers in batches of ``max_symbols_per_request``, ``max_concurrency`` batches at once,
    paced to ``requests_per_minute``; partial success returns what was fetched.

    History (``BarHistory``) comes from the bars endpoint, page after page, on the ``calendar``'s sessions
    (NYSE when none is given); its requests share the snapshots' pacing.
    """

    name: str = "alpaca"
    follows_market_hours: bool = True

    def __init__(
        self,
        settings: QuotesAlpacaSettings,
        key_id: str,
        secret_key: str,
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
            headers={"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key},
            limits=[(settings.requests_per_minute, 60.0)],
            key_hint=(f"quotes.alpaca.key_id / quotes.alpaca.secret_key or {ENV_KEY_ID} / {ENV_SECRET_KEY}"),
            timing=timing,
            transport=transport,
        )
        self._invalid: set[str] = set()  # symbols Alpaca rejected as invalid: never asked again
        self._rotation = 0  # which batch goes first, so that a batch left out is not always the same

    def stats(self) -> dict[str, object]:
        """Request, 429 and error counters, and how long the vendor still blocks us."""
        return {
            **self._http.counters(),
            "invalid_symbols": sorted(self._invalid)[:20],
        }

    async def known(self, tickers: Iterable[str]) -> set[str]:
        """The tickers Alpaca has a quote for (asked once per new ticker, on its first subscription)."""
        return {quote.ticker for quote in await self.fetch(tickers)}

    async def fetch(self, tickers: Iterable[str]) -> list[Quote]:
        wanted = [t for t in dict.fromkeys(tickers) if t.strip() and t not in self._invalid]
        if not wanted:
            return []
        size = self._settings.max_symbols_per_request
        batches = [wanted[i : i + size] for i in range(0, len(wanted), size)]
        shift = self._rotation % len(batches)
        batches = batches[shift:] + batches[:shift]
        self._rotation += 1
        deadline = self._http.timing.monotonic() + self._settings.fetch_budget
        gate = asyncio.Semaphore(self._settings.max_concurrency)
        refused: list[ProviderAuthError] = []

        async def one(batch: list[str]) -> dict[str, Quote]:
            async with gate:
                if refused:
                    raise refused[0]
                try:
                    data = await self._snapshots(batch, deadline)
                except ProviderAuthError as exc:
                    refused.append(exc)
                    raise
            if isinstance(data, Mapping) and isinstance(data.get("snapshots"), Mapping):
                data = data["snapshots"]  # the shape of the crypto endpoint; accepted in case
            if not isinstance(data, Mapping):
                raise ProviderError(self.name, f"unexpected answer: {str(data)[:100]}")
            quotes = {}
            for symbol in batch:
                quote = quote_from_alpaca(symbol, data.get(symbol))
                if quote is not None:
                    quotes[symbol] = quote
            return quotes

        results = await asyncio.gather(*(one(b) for b in batches), return_exceptions=True)
        got: dict[str, Quote] = {}
        answered = 0
        errors: list[BaseException] = []
        for result in results:
            if isinstance(result, dict):
                answered += 1
                got.update(result)
            elif isinstance(result, Exception):
                errors.append(result)
            else:
                raise result
        if refused:
            raise refused[0]
        if errors and not answered:
            raise first_failure(self.name, errors)
        if errors:
            log.warning(
                "alpaca: %d of %d batches fetched; %s",
                answered,
                len(batches),
                "; ".join(str(e) or type(e).__name__ for e in errors[:3]),
            )
        return [got[t] for t in wanted if t in got]

    async def _snapshots(self, batch: list[str], deadline: float) -> Any:
        """One request for a batch; an invalid symbol is dropped and the rest asked again."""
        batch = list(batch)
        while True:
            params = {"symbols": ",".join(batch), "feed": self._settings.feed}
            try:
                return await self._http.get_json("/v2/stocks/snapshots", params, deadline)
            except RequestRejected as exc:
                match = _INVALID_SYMBOL.search(exc.detail) if exc.status in (400, 422) else None
                symbol = match[1].upper() if match else None
                if symbol is None or symbol not in batch:
                    raise
                log.warning("alpaca: %s is not a valid symbol; it will not be asked for again", symbol)
                batch.remove(symbol)
                if len(self._invalid) < _MAX_INVALID:
                    self._invalid.add(symbol)
                if not batch:
                    return {}

    async def history_until(self, ticker: str) -> datetime | None:
        """Now: Alpaca's bars reach the present."""
        return datetime.fromtimestamp(self._http.timing.wall(), UTC) if ticker.strip() else None

    async def bars(self, ticker: str, interval: BarInterval, start: datetime, end: datetime) -> list[Bar]:
        """Closed bars of ``ticker`` at ``interval`` starting in ``[start, end)``, every page."""
        alignment = await self._alignment.get()
        since, until_asked = vendor_range(interval, start, end)
        params = {
            "timeframe": TIMEFRAMES[SOURCE[interval]],
            "start": since.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "end": until_asked.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "limit": str(PAGE_LIMIT),
            "adjustment": "raw",
            "feed": self._settings.feed,
            "sort": "asc",
        }
        path = f"/v2/stocks/{quote(ticker, safe='')}/bars"
        deadline = self._http.timing.monotonic() + HISTORY_BUDGET
        rows: list[VendorBar] = []
        while True:
            try:
                data = await self._http.get_json(path, params, deadline)
            except OutOfBudget:
                raise first_failure(self.name, [OutOfBudget(path)]) from None
            page, token = bars_from_alpaca(ticker, data)
            rows.extend(row for row in page if row[0] < until_asked)  # Alpaca's end is inclusive
            if token is None or len(rows) >= 2 * MAX_HISTORY_BARS:
                break
            params["page_token"] = token
        now = await self.history_until(ticker)
        assert now is not None
        return from_vendor(alignment, ticker, interval, rows, now, start, end)[:MAX_HISTORY_BARS]

    async def aclose(self) -> None:
        await self._http.aclose()
