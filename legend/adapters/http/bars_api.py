"""``GET /api/bars/{ticker}``: a ticker's stored bars of one interval, oldest first, paged backwards.

Public like ``/api/market/status``, unless ``security.auth = "jwt"``: then for signed-in users (a 401 with
the reason otherwise). A ticker is refused as a subscribe refuses it (``TickerCheck``: 404 when the quote
provider has no prices for it and none were published); a known ticker with no bars yet has an empty list.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException, ServiceUnavailableException, ValidationException
from litestar.openapi.spec import SecurityRequirement
from litestar.params import FromPath, Parameter
from litestar.types import ExceptionHandlersMap

from legend.adapters.auth import Authenticator
from legend.adapters.http.api import instant_param
from legend.adapters.http.dependencies import Service
from legend.adapters.http.errors import field_errors, invalid
from legend.adapters.http.user_api import identify
from legend.domain.bars import INTERVALS, Bar, parse_interval
from legend.domain.symbols import InvalidSymbol, normalize_ticker
from legend.domain.timefmt import iso
from legend.ports.bars import MAX_HISTORY, BarStore
from legend.services.bars.backfill import BarBackfill
from legend.services.streaming.ticker_check import TickerCheck

DEFAULT_LIMIT = 500

# Anyone (``{}``) in development mode; a user token in JWT mode.
_PUBLIC_UNLESS_JWT: list[SecurityRequirement] = [{}, {"userToken": []}]
_HANDLERS: ExceptionHandlersMap = {ValidationException: field_errors}


class BarView(msgspec.Struct):
    """One bar: ``time`` is its start (ISO-8601, UTC)."""

    time: str
    open: float
    high: float
    low: float
    close: float
    volume: int


class Bars(msgspec.Struct):
    """A ticker's bars of one interval, oldest first; the bar still forming, if any, comes last. The next
    page back: ``before`` = the first bar's ``time``."""

    ticker: str
    interval: str
    bars: list[BarView]


def bar_view(bar: Bar) -> BarView:
    return BarView(iso(bar.start), bar.open, bar.high, bar.low, bar.close, bar.volume)


class BarsController(Controller):
    """OHLCV bars from the database, for charts."""

    path = "/api/bars"
    tags = ["bars"]
    security = _PUBLIC_UNLESS_JWT
    exception_handlers = _HANDLERS

    @get(
        "/{ticker:str}",
        summary="A ticker's bars, oldest first",
        raises=[ValidationException, NotFoundException],
    )
    async def bars(
        self,
        request: Request[Any, Any, Any],
        ticker: FromPath[str],
        authenticator: Service[Authenticator],
        bar_store: Service[BarStore | None],
        ticker_check: Service[TickerCheck | None],
        bar_backfill: Service[BarBackfill | None],
        interval: str = Parameter(
            default="1m", description=f"Bar interval: one of {', '.join(INTERVALS)}", required=False
        ),
        limit: int = Parameter(
            default=DEFAULT_LIMIT, ge=1, le=MAX_HISTORY, description="Bars to return, newest ones"
        ),
        before: str | None = Parameter(
            default=None,
            required=False,
            description="ISO-8601 instant: only bars starting before it (the next page back); naive is UTC",
        ),
    ) -> Bars:
        """The newest ``limit`` bars of ``ticker`` in ``interval`` (starting before ``before``), oldest
        first: the bar still forming comes last. 400 naming the field for a bad ``ticker``, ``interval``,
        ``limit`` or ``before``; 404 for a ticker the quote provider has no prices for."""
        if authenticator.mode == "jwt":
            await identify(request, authenticator)  # 401 with the reason, 429 over the user's rate
        try:
            key = normalize_ticker(ticker)
        except InvalidSymbol as exc:
            raise invalid(("ticker", str(exc)), source="path") from None
        try:
            chosen = parse_interval(interval)
        except ValueError:
            raise invalid(
                ("interval", f"expected one of {', '.join(INTERVALS)}, got {interval[:16]!r}"), source="query"
            ) from None
        until = instant_param("before", before) if before is not None else None
        if ticker_check is not None and await ticker_check.unknown(key):
            raise NotFoundException(
                detail=f"Unknown ticker: {key} (no prices for it from {ticker_check.provider.name})"
            )
        if bar_store is None:
            raise ServiceUnavailableException(detail="bars are kept in the database, and there is none")
        if bar_backfill is not None:
            bar_backfill.ensure(key)  # its past from the provider, in the background, once
        stored = await bar_store.history(key, chosen, limit, until)
        return Bars(ticker=key, interval=chosen, bars=[bar_view(bar) for bar in stored])
