"""The ``news`` plugin's settings: ``[plugins.news]`` and its feeds."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from legend.plugins import PluginConfig


class FeedSettings(PluginConfig):
    """One feed: ``{url = "https://…/rss", kind = "rss", poll_interval = 300}``."""

    url: str
    kind: Literal["rss", "atom", "json"] = "rss"  # rss and atom are read alike (RSS 0.9x/1.0/2.0, Atom)
    poll_interval: Annotated[float, msgspec.Meta(ge=1)] = 300.0  # seconds between polls
    source: str | None = None  # the `source` of its items (default: the feed's title)
    tickers: list[str] = []  # symbols every item of this feed is about (a per-company feed)
    headers: dict[str, str] = {}  # extra request headers (an API key)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"feed url must be http:// or https://, not {self.url!r}")


class NewsConfig(PluginConfig):
    """``[plugins.news]``."""

    feeds: list[FeedSettings] = []
    watch: list[str] = []  # symbols also recognised as plain words in headlines and summaries
    history_size: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 100  # per stream
    max_seen: Annotated[int, msgspec.Meta(ge=10, le=1_000_000)] = 5000  # items remembered for de-duplication
    max_items_per_poll: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20  # newest first
    request_timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    max_feed_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 5_000_000


def feed_name(index: int, feed: FeedSettings) -> str:
    """The name feed ``index`` is registered under (its lease is ``plugin:news:<name>``)."""
    return f"poll[{index}] {feed.url}"
