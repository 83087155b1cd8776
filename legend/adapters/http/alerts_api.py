"""REST endpoints over the caller's alert rules and the triggers they fired (docs/alerts.md).

A rule's fields beside ``ticker``, ``kind`` and ``rearm`` depend on its kind: ``threshold`` (a level, an
amount, a percent or a multiple), ``lower``/``upper`` (channels), ``window_seconds`` (moves within a
window), ``period`` and ``interval`` (moving averages, volume spikes). Each invalid field is answered 400,
named, with what it allows (``user_api``'s error shape); nothing is written then.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ServiceUnavailableException
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from legend.adapters.http.dependencies import Service
from legend.adapters.http.errors import Conflict
from legend.adapters.http.user_api import (
    FIELD_ERRORS,
    MAX_ID,
    USER_DEPENDENCIES,
    USER_SECURITY,
    invalid_fields,
)
from legend.delivery import AlertDelivery
from legend.domain.alert_checks import RuleInvalid
from legend.domain.alert_index import PausedBy, RuleState
from legend.domain.alert_rules import (
    AlertEvent,
    AlertKind,
    AlertRule,
    Evaluate,
    Rearm,
    RulePatch,
    RuleSpec,
    Session,
)
from legend.domain.bars import BarInterval
from legend.domain.notifications import Channel, DeliveryState
from legend.domain.symbols import TickerText
from legend.domain.timefmt import iso, iso_or_none
from legend.ports.repositories import RuleLimitReached
from legend.services.alerts.preview import MAX_DAYS, Preview
from legend.services.alerts.service import AlertingService, RuleConflict

MAX_EVENTS_PAGE = 500

Threshold = Annotated[
    float,
    msgspec.Meta(
        description="Price level (price kinds, crossing), day change in percent (change_percent kinds), shares "
        "(volume_above), a move in currency (moving_up/down) or percent (moving_*_percent), a multiple of the "
        "average volume (volume_spike). Not used by the channel and moving-average kinds.",
        examples=[150.0],
    ),
]
Bound = Annotated[float, msgspec.Meta(description="A channel's bound (entering_channel, exiting_channel).")]
WindowSeconds = Annotated[
    int, msgspec.Meta(description="The window of moving_up/moving_down kinds: 10 s to 1 day.", examples=[300])
]
Period = Annotated[
    int, msgspec.Meta(description="Bars averaged (sma_cross_up/down, volume_spike): 2 to 200.", examples=[20])
]
Interval = Annotated[
    BarInterval, msgspec.Meta(description="The bars of bar_close evaluation and the bar kinds.")
]
Expiry = Annotated[
    datetime,
    msgspec.Meta(description="After it the rule is disarmed (state 'expired'); ISO-8601, naive read as UTC."),
]


Notify = Annotated[
    tuple[Channel, ...],
    msgspec.Meta(
        description="Where the rule's triggers go besides the WebSocket: push, webhook, email (your destinations "
        "under /api/notifications); null or absent: all of them; []: none.",
        examples=[["push", "webhook"]],
    ),
]


class RuleCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new alert rule. See docs/alerts.md for the kinds, their fields and the re-arm policies."""

    ticker: TickerText
    kind: AlertKind
    threshold: Threshold | None = None
    rearm: Rearm = Rearm.ONCE
    cooldown_seconds: Annotated[float, msgspec.Meta(description="Only with rearm = cooldown.")] | None = None
    lower: Bound | None = None
    upper: Bound | None = None
    window_seconds: WindowSeconds | None = None
    period: Period | None = None
    interval: Interval | None = None
    evaluate: (
        Annotated[
            Evaluate,
            msgspec.Meta(
                description="tick: every price (default); bar_close: each close of `interval` bars."
            ),
        ]
        | None
    ) = None
    session: Annotated[
        Session,
        msgspec.Meta(description="regular (default), extended (pre-market and after-hours too) or any."),
    ] = Session.REGULAR
    expires_at: Expiry | None = None
    notify: Notify | None = None


class PreviewRequest(RuleCreate, forbid_unknown_fields=True, kw_only=True):
    """A rule as it would be created (no ``id``) and how many days of stored bars to run it over."""

    days: Annotated[int, msgspec.Meta(ge=1, le=MAX_DAYS, description="Days back from now: 1 to 30.")] = 1


class PreviewFireView(msgspec.Struct):
    """One trigger the rule would have fired."""

    at: str
    price: float
    message: str


class PreviewEvaluated(msgspec.Struct):
    """What the preview ran over: the number of 1-minute bars and the time they span (null: none)."""

    bars: int
    from_: str | None = msgspec.field(name="from")
    to: str | None = None


class PreviewView(msgspec.Struct):
    """Where the rule would have fired, oldest first; ``truncated`` when it fired more than 1,000 times."""

    fires: list[PreviewFireView]
    evaluated: PreviewEvaluated
    truncated: bool


class RuleUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A partial update: only the fields present change. Changing what defines the condition (ticker, kind,
    levels, window, period, interval, evaluate) arms the rule again and forgets its side; ``armed: false``
    pauses it, ``armed: true`` re-arms a paused rule or one that fired with ``rearm: once``."""

    ticker: TickerText | msgspec.UnsetType = msgspec.UNSET
    kind: AlertKind | msgspec.UnsetType = msgspec.UNSET
    threshold: Threshold | msgspec.UnsetType | None = msgspec.UNSET
    rearm: Rearm | msgspec.UnsetType = msgspec.UNSET
    cooldown_seconds: float | msgspec.UnsetType | None = msgspec.UNSET
    lower: Bound | msgspec.UnsetType | None = msgspec.UNSET
    upper: Bound | msgspec.UnsetType | None = msgspec.UNSET
    window_seconds: WindowSeconds | msgspec.UnsetType | None = msgspec.UNSET
    period: Period | msgspec.UnsetType | None = msgspec.UNSET
    interval: Interval | msgspec.UnsetType | None = msgspec.UNSET
    evaluate: Evaluate | msgspec.UnsetType | None = msgspec.UNSET
    session: Session | msgspec.UnsetType = msgspec.UNSET
    expires_at: Expiry | msgspec.UnsetType | None = msgspec.UNSET
    notify: Notify | msgspec.UnsetType | None = msgspec.UNSET
    armed: bool | msgspec.UnsetType = msgspec.UNSET


class RuleView(msgspec.Struct, kw_only=True):
    """An alert rule and its state. ``condition_met``: whether the condition held at the last value seen
    (null before the first); ``triggers``: how many times it fired; ``state``: armed, paused (``paused_by``:
    user, halted or outside_session), fired (``rearm: once``, disarmed) or expired."""

    id: int
    ticker: str
    kind: AlertKind
    threshold: float | None
    rearm: Rearm
    cooldown_seconds: float | None
    lower: float | None
    upper: float | None
    window_seconds: int | None
    period: int | None
    interval: BarInterval | None
    evaluate: Evaluate
    session: Session
    expires_at: str | None
    notify: list[Channel] | None
    armed: bool
    state: RuleState
    paused_by: PausedBy | None
    condition_met: bool | None
    triggers: int
    last_triggered_at: str | None
    created_at: str
    updated_at: str


class Rules(msgspec.Struct):
    """The caller's rules, oldest first."""

    rules: list[RuleView]
    max_rules: int


class DeliveryView(msgspec.Struct, kw_only=True):
    """Where one trigger's delivery to one destination stands: ``pending``, ``delivered`` (at
    ``delivered_at``), ``retrying`` (at ``next_attempt_at``, after ``error``), ``failed`` or ``removed``."""

    channel: Channel
    destination_id: int
    state: str
    attempts: int
    delivered_at: str | None
    next_attempt_at: str | None
    error: str | None


class EventView(msgspec.Struct, kw_only=True):
    """A past trigger. ``alert_id`` is the ``alert_id`` of the ``alert_trigger`` message that carried it;
    ``threshold``: the level crossed (a channel's bound, a moving average)."""

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
    deliveries: list[DeliveryView] = msgspec.field(default_factory=list)


class Events(msgspec.Struct):
    """The caller's triggers, newest first; pass ``next_before`` as ``before`` for the next page."""

    events: list[EventView]
    next_before: int | None


def rule_view(rule: AlertRule, alerting: AlertingService) -> RuleView:
    state, paused_by = alerting.state(rule)
    return RuleView(
        id=rule.id,
        ticker=rule.ticker,
        kind=rule.kind,
        threshold=rule.threshold,
        rearm=rule.rearm,
        cooldown_seconds=rule.cooldown_seconds,
        lower=rule.lower,
        upper=rule.upper,
        window_seconds=rule.window_seconds,
        period=rule.period,
        interval=rule.interval,
        evaluate=rule.evaluate,
        session=rule.session,
        expires_at=iso_or_none(rule.expires_at),
        notify=None if rule.notify is None else list(rule.notify),
        armed=rule.armed,
        state=state,
        paused_by=paused_by,
        condition_met=rule.side,
        triggers=rule.generation,
        last_triggered_at=iso_or_none(rule.last_triggered_at),
        created_at=iso(rule.created_at),
        updated_at=iso(rule.updated_at),
    )


def _delivery_view(state: DeliveryState) -> DeliveryView:
    return DeliveryView(
        channel=state.channel,
        destination_id=state.destination_id,
        state=state.state,
        attempts=state.attempts,
        delivered_at=iso_or_none(state.delivered_at),
        next_attempt_at=iso_or_none(state.next_attempt_at),
        error=state.error,
    )


def _event_view(event: AlertEvent, deliveries: list[DeliveryState] | None = None) -> EventView:
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
        deliveries=[_delivery_view(state) for state in deliveries or ()],
    )


def preview_view(result: Preview) -> PreviewView:
    return PreviewView(
        fires=[PreviewFireView(iso(f.at), f.price, f.message) for f in result.fires],
        evaluated=PreviewEvaluated(result.bars, iso_or_none(result.start), iso_or_none(result.end)),
        truncated=result.truncated,
    )


def rule_spec(data: RuleCreate) -> RuleSpec:
    """The domain's definition of a request's rule (the same fields)."""
    return RuleSpec(**{field: getattr(data, field) for field in RuleSpec.__struct_fields__})


def _not_found(rule_id: int) -> NotFoundException:
    return NotFoundException(detail=f"no alert rule {rule_id}")


class AlertController(Controller):
    """The caller's alert rules and the triggers they fired."""

    path = "/api/alerts"
    tags = ["alerts"]
    security = USER_SECURITY
    dependencies = USER_DEPENDENCIES
    exception_handlers = FIELD_ERRORS

    @get("/rules", summary="The caller's alert rules")
    async def list_rules(self, alerting: Service[AlertingService], user_id: NamedDependency[str]) -> Rules:
        """Every rule of the caller with its state."""
        rules = await alerting.rules(user_id)
        return Rules([rule_view(r, alerting) for r in rules], alerting.max_rules_per_user)

    @post("/rules", summary="Create an alert rule", status_code=HTTP_201_CREATED)
    async def create_rule(
        self, data: JSONBody[RuleCreate], alerting: Service[AlertingService], user_id: NamedDependency[str]
    ) -> RuleView:
        """Create an armed rule; 400 with the invalid fields, 409 when the caller has too many rules."""
        try:
            rule = await alerting.create_rule(user_id, rule_spec(data))
        except RuleInvalid as exc:
            raise invalid_fields(exc.errors) from None
        except RuleLimitReached as exc:
            raise Conflict(detail=str(exc)) from None
        return rule_view(rule, alerting)

    @post("/preview", summary="Where a rule would have fired", status_code=HTTP_200_OK)
    async def preview_rule(
        self,
        data: JSONBody[PreviewRequest],
        alerting: Service[AlertingService],
        user_id: NamedDependency[str],
    ) -> PreviewView:
        """Run a rule (the body of a new one, plus ``days``) over the stored bars of the last days, with the
        code that evaluates live prices: where it would have fired. Nothing is stored. 400 with the invalid
        fields; 503 when the server keeps no bars (``[bars] enabled = false``)."""
        try:
            result = await alerting.preview(rule_spec(data), data.days)
        except RuleInvalid as exc:
            raise invalid_fields(exc.errors) from None
        if result is None:
            raise ServiceUnavailableException(detail="previews need stored bars: [bars] enabled = false here")
        return preview_view(result)

    @get("/rules/{rule_id:int}", summary="One alert rule")
    async def get_rule(
        self, rule_id: FromPath[int], alerting: Service[AlertingService], user_id: NamedDependency[str]
    ) -> RuleView:
        """One of the caller's rules; 404 for another user's."""
        rule = await alerting.rule(user_id, rule_id) if 0 < rule_id <= MAX_ID else None
        if rule is None:
            raise _not_found(rule_id)
        return rule_view(rule, alerting)

    @patch("/rules/{rule_id:int}", summary="Change, pause or re-arm an alert rule")
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
            raise invalid_fields(exc.errors) from None
        except RuleConflict as exc:
            raise Conflict(detail=str(exc)) from None
        if rule is None:
            raise _not_found(rule_id)
        return rule_view(rule, alerting)

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
        notifications: Service[AlertDelivery | None],
        user_id: NamedDependency[str],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_EVENTS_PAGE, description="Page size")] = 50,
        before: Annotated[
            int | None,
            QueryParameter(
                ge=1, le=MAX_ID, required=False, description="Only events with a smaller id (next page)"
            ),
        ] = None,
    ) -> Events:
        """Triggers newest first, including those that fired while the caller was offline, each with where
        its deliveries to the caller's destinations stand."""
        events = await alerting.events(user_id, limit, before)
        next_before = events[-1].id if len(events) == limit else None
        states = await notifications.repository.deliveries([e.id for e in events]) if notifications else {}
        return Events([_event_view(e, states.get(e.id)) for e in events], next_before)
