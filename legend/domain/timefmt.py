"""Timestamps on the wire (ISO-8601 in UTC with a ``Z``, millisecond precision) and as exact integers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def iso(at: datetime) -> str:
    """``2025-11-18T10:30:00.123Z``; ``at`` must be timezone-aware."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def iso_or_none(at: datetime | None) -> str | None:
    return None if at is None else iso(at)


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def epoch_us(at: datetime) -> int:
    """Exact microseconds since the epoch of a timezone-aware ``at`` (a float would lose the boundary
    instant: 2026 in seconds leaves a float under a microsecond of precision)."""
    return (at - _EPOCH) // _MICROSECOND


def from_epoch_us(us: int) -> datetime:
    """The UTC datetime ``us`` microseconds after the epoch."""
    return _EPOCH + timedelta(microseconds=us)
