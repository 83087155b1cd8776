"""Alert rules and triggers to and from table rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row

from legend.adapters.sql.rows import from_row
from legend.domain.alert_rules import (
    AlertEvent,
    AlertKind,
    AlertRule,
    Disarmed,
    Evaluate,
    NewAlertEvent,
    Rearm,
    Session,
)
from legend.domain.bars import parse_interval


def rule(row: Row[Any]) -> AlertRule:
    return from_row(
        AlertRule,
        row,
        kind=AlertKind(row.kind),
        rearm=Rearm(row.rearm),
        evaluate=Evaluate(row.evaluate),
        session=Session(row.session),
        interval=None if row.interval is None else parse_interval(row.interval),
        disarmed=None if row.disarmed is None else Disarmed(row.disarmed),
        notify=None if row.notify is None else tuple(c for c in row.notify.split(",") if c),
    )


def event(row: Row[Any]) -> AlertEvent:
    return from_row(AlertEvent, row, key=row.alert_key)


def rule_values(rule: AlertRule) -> dict[str, Any]:
    return {
        "ticker": rule.ticker,
        "kind": rule.kind.value,
        "threshold": rule.threshold,
        "rearm": rule.rearm.value,
        "cooldown_seconds": rule.cooldown_seconds,
        "lower": rule.lower,
        "upper": rule.upper,
        "window_seconds": rule.window_seconds,
        "period": rule.period,
        "interval": rule.interval,
        "evaluate": rule.evaluate.value,
        "session": rule.session.value,
        "expires_at": rule.expires_at,
        "notify": None if rule.notify is None else ",".join(rule.notify),
        "armed": rule.armed,
        "disarmed": None if rule.disarmed is None else rule.disarmed.value,
        "side": rule.side,
        "generation": rule.generation,
        "last_triggered_at": rule.last_triggered_at,
        "version": rule.version,
        "updated_at": rule.updated_at,
    }


def state_values(rule: AlertRule) -> dict[str, Any]:
    """What an evaluation changes: never the definition."""
    return {
        "armed": rule.armed,
        "disarmed": None if rule.disarmed is None else rule.disarmed.value,
        "side": rule.side,
        "generation": rule.generation,
        "last_triggered_at": rule.last_triggered_at,
        "version": rule.version,
    }


def event_values(event: NewAlertEvent, owner: str, claim_until: datetime) -> dict[str, Any]:
    return {
        "alert_key": event.key,
        "rule_id": event.rule_id,
        "generation": event.generation,
        "user_id": event.user_id,
        "ticker": event.ticker,
        "alert_type": event.alert_type,
        "threshold": event.threshold,
        "value": event.value,
        "price": event.price,
        "message": event.message,
        "triggered_at": event.triggered_at,
        "claimed_by": owner,
        "claimed_until": claim_until,
    }
