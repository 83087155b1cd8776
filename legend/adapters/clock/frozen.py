"""A Clock that moves only when told to, so tests of timing logic are exact and instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_DEFAULT_NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, NYSE open


class FrozenClock:
    """Test double for the Clock port: ``now`` and ``monotonic`` are set by hand; ``advance`` moves both.

    Wall time may be set backwards (as an NTP step would), monotonic time never goes back.
    """

    def __init__(self, now: datetime = _DEFAULT_NOW, monotonic: float = 0.0) -> None:
        self._now = _aware_utc(now)
        self._monotonic = float(monotonic)

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def set_now(self, now: datetime) -> None:
        """Jump wall time only (monotonic time is unaffected, as with a real clock adjustment)."""
        self._now = _aware_utc(now)

    def set_monotonic(self, value: float) -> None:
        if value < self._monotonic:
            raise ValueError(f"monotonic time cannot go back from {self._monotonic} to {value}")
        self._monotonic = float(value)

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass on both clocks."""
        if seconds < 0:
            raise ValueError(f"cannot advance by a negative duration ({seconds} s)")
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds


def _aware_utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"FrozenClock needs a timezone-aware datetime, got naive {at.isoformat()}")
    return at.astimezone(UTC)
