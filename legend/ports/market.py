"""The exchange calendar the market clock reads."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from legend.domain.market import MarketState


class MarketCalendarError(ValueError):
    """The instant lies outside the range the calendar covers."""


class MarketCalendar(Protocol):
    """Regular trading sessions of one exchange (holidays, early closes, time zone rules included)."""

    name: str

    def state_at(self, at: datetime) -> MarketState:
        """Open or closed at ``at`` (timezone-aware), with the next open or close; raises MarketCalendarError."""
        ...
