"""REST endpoints over the caller's own data (the watchlist here; alert rules: ``alerts_api``), and the
identity and error shape they share.

Every call is scoped to the identity ``Authenticator.http`` finds (a JWT's ``sub``, or the development
user id); another user's rule is answered 404, as if it did not exist. Invalid input is answered 400 in
Litestar's validation shape, one entry per field: ``{"status_code": 400, "detail": "...", "extra":
[{"key": "threshold", "message": "...", "source": "body"}]}``; nothing is written then.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException, NotFoundException, ValidationException
from litestar.openapi.spec import SecurityRequirement
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from litestar.types import ExceptionHandlersMap

from legend.adapters.auth import Authenticator, AuthError, Identity
from legend.adapters.http.dependencies import Service
from legend.adapters.http.errors import Conflict, field_error, field_errors, invalid
from legend.adapters.http.rate_limit import limits_of
from legend.domain.alert_checks import FieldError
from legend.domain.symbols import InvalidSymbol, TickerText
from legend.services.watchlists.service import WatchlistFull, Watchlists

MAX_ID = 2**31 - 1

# ───────────────────────────── identity and errors ─────────────────────────────


async def provide_user_id(request: Request[Any, Any, Any], authenticator: Service[Authenticator]) -> str:
    """The caller's user id; 401 with the reason when it cannot be established."""
    return (await identify(request, authenticator)).user_id


async def identify(request: Request[Any, Any, Any], authenticator: Authenticator) -> Identity:
    """The caller's identity (user id, token expiry); 401 with the reason when it cannot be established,
    429 when the user is over the request limit (security.api_rate)."""
    try:
        identity = await authenticator.http(request.headers, request.query_params)
    except AuthError as exc:
        raise NotAuthorizedException(
            detail=f"authentication required: {exc.reason}",
            headers={"WWW-Authenticate": 'Bearer realm="legend"'},
        ) from None
    limits = limits_of(request)
    if limits is not None and not authenticator.is_admin(request.headers.get("authorization")):
        limits.check_user(identity.user_id)  # 429 when this user is over security.api_rate
    return identity


def invalid_fields(errors: list[FieldError], source: str = "body") -> ValidationException:
    return invalid(*((e.key, e.message) for e in errors), source=source)


USER_SECURITY: list[SecurityRequirement] = [{"userToken": []}, {"devUserId": []}]
USER_DEPENDENCIES = {"user_id": Provide(provide_user_id)}
FIELD_ERRORS: ExceptionHandlersMap = {ValidationException: field_errors}

# ───────────────────────────── watchlist ─────────────────────────────


class WatchlistAdd(msgspec.Struct, forbid_unknown_fields=True):
    """A ticker to add."""

    ticker: TickerText


class Watchlist(msgspec.Struct):
    """The caller's tickers, oldest first."""

    tickers: list[str]
    max_tickers: int


class WatchlistChange(msgspec.Struct):
    """The result of adding a ticker: ``added`` is false when it was already there."""

    ticker: str
    added: bool
    tickers: list[str]


class WatchlistController(Controller):
    """The caller's watchlist: the tickers the dashboard subscribes to."""

    path = "/api/watchlist"
    tags = ["watchlist"]
    security = USER_SECURITY
    dependencies = USER_DEPENDENCIES
    exception_handlers = FIELD_ERRORS

    @get("/", summary="The caller's watchlist")
    async def list_tickers(self, watchlists: Service[Watchlists], user_id: NamedDependency[str]) -> Watchlist:
        """Tickers in the order they were added."""
        return Watchlist(await watchlists.tickers(user_id), watchlists.max_tickers)

    @post("/", summary="Add a ticker", status_code=HTTP_201_CREATED)
    async def add_ticker(
        self, data: JSONBody[WatchlistAdd], watchlists: Service[Watchlists], user_id: NamedDependency[str]
    ) -> Response[WatchlistChange]:
        """Add a ticker (``aapl`` is stored as ``AAPL``): 201 when added, 200 when it was already there
        (adding twice changes nothing); 409 when the watchlist is full."""
        try:
            ticker, added = await watchlists.add(user_id, data.ticker)
        except InvalidSymbol as exc:
            raise invalid_fields([FieldError("ticker", str(exc))]) from None
        except WatchlistFull as exc:
            raise Conflict(detail=str(exc), extra=[field_error("ticker", str(exc))]) from None
        change = WatchlistChange(ticker, added, await watchlists.tickers(user_id))
        return Response(change, status_code=HTTP_201_CREATED if added else HTTP_200_OK)

    @delete("/{ticker:str}", summary="Remove a ticker", status_code=HTTP_204_NO_CONTENT)
    async def remove_ticker(
        self, ticker: FromPath[str], watchlists: Service[Watchlists], user_id: NamedDependency[str]
    ) -> None:
        """Remove a ticker (any case); 404 when it is not on the watchlist."""
        try:
            symbol, removed = await watchlists.remove(user_id, ticker)
        except InvalidSymbol as exc:
            raise invalid_fields([FieldError("ticker", str(exc))], source="path") from None
        if not removed:
            raise NotFoundException(detail=f"{symbol} is not on your watchlist")
