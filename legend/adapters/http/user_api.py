"""REST endpoints over the caller's own data: the watchlist and the alert rules, with past triggers.

Every call is scoped to the identity ``Authenticator.http`` finds (a JWT's ``sub``, or the development
user id); another user's rule is answered 404, as if it did not exist. Invalid input is answered 400 in
Litestar's validation shape, one entry per field: ``{"status_code": 400, "detail": "...", "extra":
[{"key": "threshold", "message": "...", "source": "body"}]}``; nothing is written then.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException, NotFoundException, ValidationException
from litestar.openapi.spec import SecurityRequirement
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from litestar.types import ExceptionHandlersMap

from legend.adapters.auth import Authenticator, AuthError, Identity
from legend.adapters.http.dependencies import Service
from legend.adapters.http.errors import Conflict, field_error, field_errors, invalid
from legend.adapters.http.rate_limit import limits_of
from legend.domain.alert_rules import (
    AlertEvent,
    AlertKind,
    AlertRule,
    FieldError,
    Rearm,
    RuleInvalid,
    RulePatch,
    RuleSpec,
)
from legend.domain.symbols import InvalidSymbol, TickerText
from legend.domain.timefmt import iso, iso_or_none
from legend.ports.repositories import RuleLimitReached
from legend.services.alerts.service import AlertingService, RuleConflict
from legend.services.watchlists.service import WatchlistFull, Watchlists

MAX_ID = 2**31 - 1
MAX_EVENTS_PAGE = 500

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


def _invalid(errors: list[FieldError], source: str = "body") -> ValidationException:
    return invalid(*((e.key, e.message) for e in errors), source=source)


_USER_SECURITY: list[SecurityRequirement] = [{"userToken": []}, {"devUserId": []}]
_DEPENDENCIES = {"user_id": Provide(provide_user_id)}
_HANDLERS: ExceptionHandlersMap = {ValidationException: field_errors}

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
    security = _USER_SECURITY
    dependencies = _DEPENDENCIES
    exception_handlers = _HANDLERS

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
            raise _invalid([FieldError("ticker", str(exc))]) from None
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
            raise _invalid([FieldError("ticker", str(exc))], source="path") from None
        if not removed:
            raise NotFoundException(detail=f"{symbol} is not on your watchlist")


# ───────────────────────────── alert rules ─────────────────────────────


class RuleCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new alert rule. See docs/alerts.md for the kinds and re-arm policies."""

    ticker: TickerText
    kind: AlertKind
    threshold: Annotated[
        float,
        msgspec.Meta(
            description="Price level (price kinds), day change in percent (change_percent kinds) or shares "
            "(volume_above).",
            examples=[150.0],
        ),
    ]
    rearm: Rearm = Rearm.ONCE
    cooldown_seconds: Annotated[float, msgspec.Meta(description="Only with rearm = cooldown.")] | None = None


class RuleUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A partial update: only the fields present change. Changing ticker, kind or threshold arms the rule
    again and forgets its side; ``armed: true`` re-arms a rule that fired with ``rearm: once``."""

    ticker: TickerText | msgspec.UnsetType = msgspec.UNSET
    kind: AlertKind | msgspec.UnsetType = msgspec.UNSET
    threshold: float | msgspec.UnsetType = msgspec.UNSET
    rearm: Rearm | msgspec.UnsetType = msgspec.UNSET
    cooldown_seconds: float | msgspec.UnsetType | None = msgspec.UNSET
    armed: bool | msgspec.UnsetType = msgspec.UNSET


class RuleView(msgspec.Struct, kw_only=True):
    """An alert rule and its state. ``condition_met``: whether the condition held at the last price seen
    (null before the first); ``triggers``: how many times it fired."""

    id: int
    ticker: str
    kind: AlertKind
    threshold: float
    rearm: Rearm
    cooldown_seconds: float | None
    armed: bool
    condition_met: bool | None
    triggers: int
    last_triggered_at: str | None
    created_at: str
    updated_at: str


class Rules(msgspec.Struct):
    """The caller's rules, oldest first."""

    rules: list[RuleView]
    max_rules: int


class EventView(msgspec.Struct, kw_only=True):
    """A past trigger. ``alert_id`` is the ``alert_id`` of the ``alert_trigger`` message that carried it."""

    id: int
    alert_id: str
    rule_id: int | None
    ticker: str
    alert_type: str
    threshold: float
    value: float
    trigger_price: float
    current_price: float
    message: str
    triggered_at: str
    published: bool


class Events(msgspec.Struct):
    """The caller's triggers, newest first; pass ``next_before`` as ``before`` for the next page."""

    events: list[EventView]
    next_before: int | None


def _rule_view(rule: AlertRule) -> RuleView:
    return RuleView(
        id=rule.id,
        ticker=rule.ticker,
        kind=rule.kind,
        threshold=rule.threshold,
        rearm=rule.rearm,
        cooldown_seconds=rule.cooldown_seconds,
        armed=rule.armed,
        condition_met=rule.side,
        triggers=rule.generation,
        last_triggered_at=iso_or_none(rule.last_triggered_at),
        created_at=iso(rule.created_at),
        updated_at=iso(rule.updated_at),
    )


def _event_view(event: AlertEvent) -> EventView:
    return EventView(
        id=event.id,
        alert_id=event.key,
        rule_id=event.rule_id,
        ticker=event.ticker,
        alert_type=event.alert_type,
        threshold=event.threshold,
        value=event.value,
        trigger_price=event.trigger_price,
        current_price=event.price,
        message=event.message,
        triggered_at=iso(event.triggered_at),
        published=event.published_at is not None,
    )


def _not_found(rule_id: int) -> NotFoundException:
    return NotFoundException(detail=f"no alert rule {rule_id}")


class AlertController(Controller):
    """The caller's alert rules and the triggers they fired."""

    path = "/api/alerts"
    tags = ["alerts"]
    security = _USER_SECURITY
    dependencies = _DEPENDENCIES
    exception_handlers = _HANDLERS

    @get("/rules", summary="The caller's alert rules")
    async def list_rules(self, alerting: Service[AlertingService], user_id: NamedDependency[str]) -> Rules:
        """Every rule of the caller with its state."""
        rules = await alerting.rules(user_id)
        return Rules([_rule_view(r) for r in rules], alerting.max_rules_per_user)

    @post("/rules", summary="Create an alert rule", status_code=HTTP_201_CREATED)
    async def create_rule(
        self, data: JSONBody[RuleCreate], alerting: Service[AlertingService], user_id: NamedDependency[str]
    ) -> RuleView:
        """Create an armed rule; 400 with the invalid fields, 409 when the caller has too many rules."""
        spec = RuleSpec(
            ticker=data.ticker,
            kind=data.kind,
            threshold=data.threshold,
            rearm=data.rearm,
            cooldown_seconds=data.cooldown_seconds,
        )
        try:
            rule = await alerting.create_rule(user_id, spec)
        except RuleInvalid as exc:
            raise _invalid(exc.errors) from None
        except RuleLimitReached as exc:
            raise Conflict(detail=str(exc)) from None
        return _rule_view(rule)

    @get("/rules/{rule_id:int}", summary="One alert rule")
    async def get_rule(
        self, rule_id: FromPath[int], alerting: Service[AlertingService], user_id: NamedDependency[str]
    ) -> RuleView:
        """One of the caller's rules; 404 for another user's."""
        rule = await alerting.rule(user_id, rule_id) if 0 < rule_id <= MAX_ID else None
        if rule is None:
            raise _not_found(rule_id)
        return _rule_view(rule)

    @patch("/rules/{rule_id:int}", summary="Change an alert rule")
    async def update_rule(
        self,
        rule_id: FromPath[int],
        data: JSONBody[RuleUpdate],
        alerting: Service[AlertingService],
        user_id: NamedDependency[str],
    ) -> RuleView:
        """Change the fields given; 400 with the invalid fields (nothing is changed then)."""
        changes = RulePatch(**{f: getattr(data, f) for f in data.__struct_fields__})
        try:
            rule = await alerting.update_rule(user_id, rule_id, changes) if 0 < rule_id <= MAX_ID else None
        except RuleInvalid as exc:
            raise _invalid(exc.errors) from None
        except RuleConflict as exc:
            raise Conflict(detail=str(exc)) from None
        if rule is None:
            raise _not_found(rule_id)
        return _rule_view(rule)

    @delete("/rules/{rule_id:int}", summary="Delete an alert rule", status_code=HTTP_204_NO_CONTENT)
    async def delete_rule(
        self, rule_id: FromPath[int], alerting: Service[AlertingService], user_id: NamedDependency[str]
    ) -> None:
        """Delete one of the caller's rules; its past triggers stay listed (``rule_id`` null)."""
        if not (0 < rule_id <= MAX_ID and await alerting.delete_rule(user_id, rule_id)):
            raise _not_found(rule_id)

    @get("/events", summary="The caller's past alert triggers")
    async def list_events(
        self,
        alerting: Service[AlertingService],
        user_id: NamedDependency[str],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_EVENTS_PAGE, description="Page size")] = 50,
        before: Annotated[
            int | None,
            QueryParameter(
                ge=1, le=MAX_ID, required=False, description="Only events with a smaller id (next page)"
            ),
        ] = None,
    ) -> Events:
        """Triggers newest first, including those that fired while the caller was offline."""
        events = await alerting.events(user_id, limit, before)
        next_before = events[-1].id if len(events) == limit else None
        return Events([_event_view(e) for e in events], next_before)
