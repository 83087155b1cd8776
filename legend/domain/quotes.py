"""A quote: what a provider says about one ticker at one instant."""

from __future__ import annotations

import msgspec


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    """One ticker's latest trade figures for the current session.

    ``change`` and ``change_percent`` are against ``previous_close``; ``open``, ``high``, ``low`` and
    ``volume`` are the session's so far.
    """

    ticker: str
    price: float
    change: float
    change_percent: float
    volume: int
    high: float
    low: float
    open: float
    previous_close: float | None = None
    timestamp: float | None = None  # epoch seconds of the quote; None means "now"
