"""Feeds to news items: RSS 0.9x/1.0/2.0 and Atom through feedparser, JSON Feed 1.x through msgspec.

feedparser (BSD) is the long-standing, maintained parser for real-world feeds: it copes with every RSS
dialect and Atom, broken encodings, a dozen date formats and malformed XML, and sanitises embedded HTML.
The standard library's XML parser would leave all of that to us. It is used on bytes we fetched
ourselves (httpx, with conditional requests), never to fetch.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import msgspec

from legend.domain.symbols import InvalidSymbol, normalize_ticker

MAX_TICKERS = 10
MAX_HEADLINE = 500
MAX_SUMMARY = 2000


class FeedError(Exception):
    """The feed could not be fetched or read; the message says why."""


class Item(msgspec.Struct, frozen=True, kw_only=True):
    """One news item, before it is published."""

    key: str  # stable identity: a hash of the feed's URL and the guid (or of the link, or headline and date)
    headline: str
    summary: str
    url: str | None
    source: str
    tickers: tuple[str, ...]
    published_at: datetime | None

    @property
    def link_key(self) -> str | None:
        return digest(self.url) if self.url else None


def digest(text: str) -> str:
    """A short stable hash (the ``id`` of a news message)."""
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9]{0,5}(?:[.\-][A-Za-z0-9]{1,3})?)\b")
_EXCHANGE = re.compile(
    r"\b(?:NASDAQ|NYSE(?:\s?AMERICAN|\s?ARCA)?|AMEX|CBOE|OTC|TSX|LSE)\s?:\s?([A-Z][A-Z0-9]{0,5}(?:[.\-][A-Z0-9]{1,3})?)\b"
)


def plain(text: str | None, limit: int) -> str:
    """Text without markup, entities decoded, whitespace collapsed, at most ``limit`` characters.

    Entities are decoded before tags are removed, and again until nothing changes, so that escaped markup
    (``&lt;img onerror=…&gt;``, even escaped twice) never turns into markup in the result."""
    if not text:
        return ""
    flat = text
    for _ in range(5):
        before = flat
        flat = _TAGS.sub(" ", html.unescape(flat))
        if flat == before:
            break
    flat = _TAGS.sub(" ", flat)
    flat = _SPACE.sub(" ", flat).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def web_url(url: str | None) -> str | None:
    """``url`` when it is an absolute http:// or https:// URL with a host, else None (``javascript:``,
    ``data:``, ``file:`` and relative links never reach a client)."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def link(feed_url: str, raw: str | None) -> str | None:
    """An item's link resolved against its feed's URL; None when it has none or it is not http(s)."""
    if not raw or not raw.strip():
        return None
    try:
        return web_url(urljoin(feed_url, raw.strip()))
    except ValueError:
        return None


def mentioned(texts: Iterable[str], watch: Sequence[str] = ()) -> list[str]:
    """Tickers named in text: cashtags (``$AAPL``), exchange prefixes (``NASDAQ: AAPL``, ``NYSE:IBM``),
    and the ``watch`` symbols as whole words."""
    found: list[str] = []
    for text in texts:
        for match in (*_CASHTAG.finditer(text), *_EXCHANGE.finditer(text)):
            found.append(match.group(1))
        for symbol in watch:
            if re.search(rf"(?<![\w$]){re.escape(symbol)}(?!\w)", text):
                found.append(symbol)
    return found


def tickers_of(candidates: Iterable[object]) -> tuple[str, ...]:
    """Valid, normalised, unique tickers in order, at most MAX_TICKERS."""
    kept: list[str] = []
    for raw in candidates:
        try:
            ticker = normalize_ticker(raw)
        except InvalidSymbol:
            continue
        if ticker not in kept:
            kept.append(ticker)
        if len(kept) == MAX_TICKERS:
            break
    return tuple(kept)


def _item(
    *,
    feed_url: str,
    guid: str | None,
    headline: str,
    summary: str,
    url: str | None,
    source: str,
    explicit: Iterable[object],
    tags: Iterable[str],
    published_at: datetime | None,
    feed_tickers: Sequence[str],
    watch: Sequence[str],
) -> Item | None:
    headline = plain(headline, MAX_HEADLINE)
    if not headline:
        return None
    summary = plain(summary, MAX_SUMMARY)
    tickers = tickers_of([*feed_tickers, *explicit, *mentioned(tags), *mentioned([headline, summary], watch)])
    # a guid is unique within its feed only ("1" in one feed is not "1" in another); a link or a headline
    # and date identify a story wherever it appears
    if guid:
        identity = f"{feed_url}|{guid}"
    else:
        identity = url or f"{headline}|{published_at.isoformat() if published_at else ''}"
    return Item(
        key=digest(identity),
        headline=headline,
        summary=summary,
        url=url or None,
        source=source,
        tickers=tickers,
        published_at=published_at,
    )


def _struct_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def parse_xml(
    body: bytes, *, url: str, source: str | None, feed_tickers: Sequence[str] = (), watch: Sequence[str] = ()
) -> list[Item]:
    """Items of an RSS or Atom document; raises FeedError when it holds no feed at all."""
    import feedparser

    parsed = feedparser.parse(body)  # guids stay as written (no base URL): they are opaque identities
    if parsed.get("bozo") and not parsed.entries:
        raise FeedError(f"not an RSS/Atom feed: {parsed.get('bozo_exception')}")
    name = source or plain(parsed.feed.get("title"), 100) or url
    items: list[Item] = []
    for entry in parsed.entries:
        item = _item(
            feed_url=url,
            guid=entry.get("id") or None,
            headline=entry.get("title") or "",
            summary=entry.get("summary") or "",
            url=link(url, entry.get("link")),
            source=name,
            explicit=(),
            tags=[str(tag.get("term") or "") for tag in entry.get("tags", [])],
            published_at=_struct_time(entry.get("published_parsed") or entry.get("updated_parsed")),
            feed_tickers=feed_tickers,
            watch=watch,
        )
        if item is not None:
            items.append(item)
    return items


class _Legend(msgspec.Struct):
    tickers: list[str] = []


class _JsonItem(msgspec.Struct):
    id: str | int | None = None
    url: str | None = None
    external_url: str | None = None
    title: str | None = None
    summary: str | None = None
    content_text: str | None = None
    content_html: str | None = None
    date_published: str | None = None
    date_modified: str | None = None
    tags: list[str] = []
    tickers: list[str] = []  # not JSON Feed: what finance feeds commonly add
    legend: _Legend | None = msgspec.field(default=None, name="_legend")  # a JSON Feed extension


class _JsonFeed(msgspec.Struct):
    items: list[_JsonItem]
    title: str | None = None
    version: str | None = None


def _iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_json(
    body: bytes, *, url: str, source: str | None, feed_tickers: Sequence[str] = (), watch: Sequence[str] = ()
) -> list[Item]:
    """Items of a JSON Feed (https://jsonfeed.org/version/1.1); raises FeedError when it is not one."""
    try:
        feed = msgspec.json.decode(body, type=_JsonFeed)
    except msgspec.DecodeError as exc:
        raise FeedError(f"not a JSON Feed: {exc}") from None
    name = source or plain(feed.title, 100) or url
    items: list[Item] = []
    for entry in feed.items:
        item = _item(
            feed_url=url,
            guid=str(entry.id) if entry.id is not None else None,
            headline=entry.title or "",
            summary=entry.summary or entry.content_text or entry.content_html or "",
            url=link(url, entry.url or entry.external_url),
            source=name,
            explicit=[*entry.tickers, *(entry.legend.tickers if entry.legend else [])],
            tags=entry.tags,
            published_at=_iso(entry.date_published or entry.date_modified),
            feed_tickers=feed_tickers,
            watch=watch,
        )
        if item is not None:
            items.append(item)
    return items
