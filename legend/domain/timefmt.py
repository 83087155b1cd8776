"""Timestamps on the wire: ISO-8601 in UTC with a ``Z``, millisecond precision."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(at: datetime) -> str:
    """``2025-11-18T10:30:00.123Z``; ``at`` must be timezone-aware."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def iso_or_none(at: datetime | None) -> str | None:
    return None if at is None else iso(at)


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
