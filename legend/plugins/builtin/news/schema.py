"""The ``news`` plugin's channel and the schema of its messages."""

from __future__ import annotations

from typing import Annotated

import msgspec

from legend.plugins import Message

CHANNEL = "news"


class News(Message, tag="news", kw_only=True):
    """A news item on ``news`` and on ``news:{SYMBOL}`` for each symbol it mentions."""

    id: str
    headline: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    summary: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    url: str | None = None
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    tickers: list[str] = []
    published_at: str | None = None
