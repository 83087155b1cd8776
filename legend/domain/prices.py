"""Prices: the ``price_update`` message of a quote or a broadcast (one way to fill in what the input leaves
out), and what readers of the price log take of one.

A price has three shapes, each a contract of its own audience: ``Quote`` (what a quote provider reports,
the plugin API), ``PriceInput`` (the broadcast body of the specification, validated), ``PriceUpdate`` (the
message on the wire). ``price_update`` is the one way from the first two to the third; ``LoggedPrice`` is
the part of the third that alert evaluation and bar building decode from the price log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import msgspec

from legend.domain.inputs import PriceInput
from legend.domain.messages import PriceUpdate
from legend.domain.quotes import Quote
from legend.domain.timefmt import from_epoch, iso

MARKET_STATUS_STREAM = "market_status"  # the built-in channel's one stream


def price_log_kind(message_type: str, stream: str) -> Literal["price", "status"] | None:
    """What a message of type ``message_type`` published on ``stream`` enters the price log as (None: it
    does not), whoever published it: every ``price_update`` a price; a ``market_status`` on the
    ``market_status`` stream a status (a halt holds every rule; one a plugin sends on a stream of its own
    holds nothing). Backplanes append it in the step that sequences it, so readers see it between the
    right two prices."""
    if message_type == "price_update":
        return "price"
    if message_type == "market_status" and stream == MARKET_STATUS_STREAM:
        return "status"
    return None


def price_update(data: PriceInput | Quote, now: datetime, stream: str) -> PriceUpdate:
    """The message, on its ticker's ``stream`` (the caller's ``ticker_stream(data.ticker)``, built once on
    the way). A broadcast without ``open_price``, ``high`` or ``low`` takes them from its price; one
    without ``timestamp``, and a quote without one, is stamped ``now``."""
    if isinstance(data, Quote):
        at = iso(from_epoch(data.timestamp)) if data.timestamp is not None else iso(now)
        open_, high, low, prev = data.open, data.high, data.low, data.previous_close
    else:
        stamp = data.timestamp
        at = iso(now if stamp is None else stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC))
        open_ = data.open_price if data.open_price is not None else data.price
        high = data.high if data.high is not None else max(data.price, open_)
        low = data.low if data.low is not None else min(data.price, open_)
        prev = data.previous_close
    return PriceUpdate(
        ticker=data.ticker,
        price=data.price,
        change=data.change if data.change is not None else 0.0,
        change_percent=data.change_percent if data.change_percent is not None else 0.0,
        volume=data.volume,
        high=high,
        low=low,
        open=open_,
        timestamp=at,
        previous_close=prev,
        channel=stream,
    )


class LoggedPrice(msgspec.Struct, frozen=True, kw_only=True):
    """The figures of a logged ``price_update`` that its readers use; the rest of the frame is not decoded.

    ``timestamp`` is the price's own instant (the quote's, or the broadcast's), None if the frame had none.
    """

    ticker: str
    price: float
    change_percent: float = 0.0
    volume: float = 0.0
    timestamp: datetime | None = None


decode_logged_price = msgspec.json.Decoder(LoggedPrice).decode


def price_instant(price: LoggedPrice, logged_at: float) -> datetime:
    """Where a logged price lies in time: its own ``timestamp`` (naive read as UTC), or the instant it
    entered the log (``logged_at``, epoch seconds) when it has none."""
    at = price.timestamp
    if at is None:
        return datetime.fromtimestamp(logged_at, UTC)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
