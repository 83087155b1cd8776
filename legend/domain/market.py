"""Market session state as the market clock reports it."""

from __future__ import annotations

from datetime import datetime

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
