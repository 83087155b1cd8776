"""The exchange calendar the market clock reads."""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from legend.domain.market import MarketState, SessionHours


class MarketCalendarError(ValueError):
    """The instant lies outside the range the calendar covers."""


class MarketCalendar(Protocol):
    """Regular trading sessions of one exchange (holidays, early closes, time zone rules included)."""

    name: str
    zone: str  # the exchange's IANA time zone ("America/New_York"): exchange dates are read in it

    def state_at(self, at: datetime) -> MarketState:
        """Open or closed at ``at`` (timezone-aware), with the next open or close; raises MarketCalendarError."""
        ...

    def session_on(self, day: date) -> SessionHours | None:
        """The regular session of exchange date ``day``, None on a weekend or holiday; raises
        MarketCalendarError outside the range the calendar covers."""
        ...
