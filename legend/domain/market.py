"""Market session state as the market clock reports it."""

from __future__ import annotations

from datetime import date, datetime

import msgspec


class MarketState(msgspec.Struct, frozen=True, kw_only=True):
    """Whether the exchange is in its regular session at ``at``, and the next transitions.

    ``next_open`` is None while open; ``next_close`` is None while closed (the specification's shape).
    ``session_close`` is the close of the current session when open (useful to flag early closes).
    """

    at: datetime
    is_open: bool
    next_open: datetime | None
    next_close: datetime | None
    early_close: bool = False

    @property
    def status(self) -> str:
        return "open" if self.is_open else "closed"

    @property
    def next_transition(self) -> datetime | None:
        return self.next_close if self.is_open else self.next_open


class SessionHours(msgspec.Struct, frozen=True, kw_only=True):
    """The regular session of one exchange date: ``open`` inclusive, ``close`` exclusive, both in UTC.

    ``early_close`` flags a shortened session (13:00 ET on the day after Thanksgiving, for instance).
    A lunch break, on exchanges that have one, lies inside ``[open, close)``.
    """

    day: date
    open: datetime
    close: datetime
    early_close: bool = False
