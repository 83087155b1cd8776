"""Alert rules and triggers to and from table rows, and helpers for batched statements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.engine import CursorResult, Row

from legend.domain.alert_rules import AlertEvent, AlertKind, AlertRule, NewAlertEvent, Rearm

CHUNK = 500  # ids per IN list: far below SQLite's and asyncpg's parameter limits

T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the database returned no primary key for an insert")
    return int(key[0])


def rule(row: Row[Any]) -> AlertRule:
    return AlertRule(
        id=row.id,
        user_id=row.user_id,
        ticker=row.ticker,
        kind=AlertKind(row.kind),
        threshold=row.threshold,
        rearm=Rearm(row.rearm),
        cooldown_seconds=row.cooldown_seconds,
        armed=row.armed,
        side=row.side,
        generation=row.generation,
        last_triggered_at=row.last_triggered_at,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def event(row: Row[Any]) -> AlertEvent:
    return AlertEvent(
        id=row.id,
        key=row.alert_key,
        rule_id=row.rule_id,
        generation=row.generation,
        user_id=row.user_id,
        ticker=row.ticker,
        alert_type=row.alert_type,
        threshold=row.threshold,
        value=row.value,
        price=row.price,
        message=row.message,
        triggered_at=row.triggered_at,
        published_at=row.published_at,
    )


def rule_values(rule: AlertRule) -> dict[str, Any]:
    return {
        "ticker": rule.ticker,
        "kind": rule.kind.value,
        "threshold": rule.threshold,
        "rearm": rule.rearm.value,
        "cooldown_seconds": rule.cooldown_seconds,
        "armed": rule.armed,
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
