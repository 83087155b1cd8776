"""Ticker symbols and user ids: validated and normalised at the edge so junk never reaches a channel."""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

# The ticker rule, once: letters first, then letters, digits, '.' or '-' (BRK.B, BF-B); '^' prefixes an
# index. Written upper case; ``Ticker`` accepts any case around it, as normalize_ticker does. (The browser
# client repeats it in web/static/js: keep them equal.)
TICKER_RULE = r"\^?[A-Z][A-Z0-9]*(?:[.\-][A-Z0-9]+)*"
_TICKER = re.compile(TICKER_RULE)
MAX_TICKER_LENGTH = 12
_USER_ID = re.compile(r"[A-Za-z0-9_.@|\-]{1,64}")  # "|": Auth0 subjects are provider|id


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


# A ticker field of a request body, checked by msgspec against the same rule (any case, blanks around it;
# the Struct's __post_init__ normalises it with normalize_ticker), so the OpenAPI schema shows the rule.
Ticker = Annotated[
    str,
    msgspec.Meta(
        pattern=rf"^\s*{TICKER_RULE.replace('A-Z', 'A-Za-z')}\s*$",
        max_length=MAX_TICKER_LENGTH + 4,
        description="Ticker symbol; normalised to upper case.",
        examples=["AAPL"],
    ),
]
# A ticker field that a handler passes to normalize_ticker itself, so that a 400 names the field in the
# domain's words (``Invalid ticker: 'A$'``) rather than msgspec's pattern.
TickerText = Annotated[
    str, msgspec.Meta(description="Ticker symbol; normalised to upper case.", examples=["aapl"])
]


def is_valid_user_id(user_id: str) -> bool:
    """User ids end up in channel names and connection ids: keep them short and plain."""
    return _USER_ID.fullmatch(user_id) is not None
