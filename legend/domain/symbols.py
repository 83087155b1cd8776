"""Ticker symbols and user ids: validated and normalised at the edge so junk never reaches a channel."""

from __future__ import annotations

import re

# Exchange tickers: letters first, then letters, digits, '.' or '-' (BRK.B, BF-B); '^' prefixes an index.
_TICKER = re.compile(r"\^?[A-Z][A-Z0-9]*(?:[.\-][A-Z0-9]+)*")
MAX_TICKER_LENGTH = 12
_USER_ID = re.compile(r"[A-Za-z0-9_.@\-]{1,64}")


class InvalidSymbol(ValueError):
    """Not a ticker symbol."""


def normalize_ticker(raw: object) -> str:
    """Upper-case, trimmed ticker; raises InvalidSymbol with the reason."""
    if not isinstance(raw, str):
        raise InvalidSymbol("Ticker must be a string")
    ticker = raw.strip()
    if not ticker:
        raise InvalidSymbol("Ticker must not be empty")
    shown = raw if len(raw) <= 32 else raw[:32] + "…"
    # ASCII before any case change: 'ıbm'.upper() is 'IBM', 'ß'.upper() is 'SS', 'ﬀ'.upper() is 'FF'
    if not ticker.isascii():
        raise InvalidSymbol(f"Invalid ticker: {shown!r} (ASCII letters, digits, '.', '-' and '^' only)")
    ticker = ticker.upper()
    if len(ticker) > MAX_TICKER_LENGTH or not _TICKER.fullmatch(ticker):
        raise InvalidSymbol(f"Invalid ticker: {shown!r}")
    return ticker


def is_valid_user_id(user_id: str) -> bool:
    """User ids end up in channel names and connection ids: keep them short and plain."""
    return _USER_ID.fullmatch(user_id) is not None
