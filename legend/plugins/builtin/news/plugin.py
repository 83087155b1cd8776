"""The ``news`` plugin's hooks. Written as any third-party plugin would be: only hooks and the context.

- Channel ``news`` (every item) and ``news:{SYMBOL}`` (items that mention the symbol; the same item goes
  to both, with the same ``id``). Must-deliver, with a history for resume.
- Feeds from ``[plugins.news] feeds``: RSS/Atom or JSON Feed, each polled every ``poll_interval`` seconds
  with conditional requests (``If-None-Match``/``If-Modified-Since``; a 304 costs nothing). The ETag and
  Last-Modified survive restarts in the plugin store.
- De-duplication by guid (or link, or headline and date) and by link, in a bounded memory of the last
  ``max_seen`` items, kept in the plugin store and seeded from the ``news`` history at start: an item is
  published once, across polls, feeds and restarts.
- ``POST /api/news/broadcast`` (admin) publishes an item by hand; ``POST /api/news/refresh`` (admin) polls
  every feed now.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Literal

import httpx
import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_409_CONFLICT

from legend import __version__
from legend.domain.symbols import InvalidSymbol, normalize_ticker
from legend.domain.timefmt import iso
from legend.plugins import (
    BackplaneUnavailable,
    ChannelSpec,
    Delivery,
    Message,
    PluginConfig,
    PluginContext,
    hookimpl,
)
from legend.plugins.builtin.news.parsing import (
    FeedError,
    Item,
    digest,
    parse_json,
    parse_xml,
    plain,
    tickers_of,
)
from legend.plugins.context import FeedFunction, RegisterChannel, RegisterFeed, RegisterRoute
from legend.plugins.web import admin_guard, field_errors, invalid

CHANNEL = "news"
log = logging.getLogger("legend.plugins.news")
USER_AGENT = f"legend-realtime/{__version__} (news plugin)"
ACCEPT = {
    "rss": "application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5",
    "json": "application/feed+json, application/json;q=0.9, */*;q=0.5",
}


# ───────────────────────────── settings and message ─────────────────────────────


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


class News(Message, tag="news", kw_only=True):
    """A news item on ``news`` and on ``news:{SYMBOL}`` for each symbol it mentions."""

    id: str
    headline: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    summary: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    url: str | None = None
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    tickers: list[str] = []
    published_at: str | None = None


# ───────────────────────────── hooks ─────────────────────────────


@hookimpl
def config_schema() -> type[NewsConfig]:
    return NewsConfig


@hookimpl
def register_channels(register: RegisterChannel, config: NewsConfig) -> None:
    register(
        ChannelSpec(
            name=CHANNEL,
            schema=News,
            delivery=Delivery.RELIABLE,
            keyed=True,
            key_required=False,
            history_size=config.history_size,
            description="Market news: every item, or with a ticker only those mentioning it.",
        )
    )


@hookimpl
def register_routes(register: RegisterRoute) -> None:
    register(NewsController)


@hookimpl
def register_feeds(register: RegisterFeed, context: PluginContext) -> None:
    config: NewsConfig = context.config
    for index, feed in enumerate(config.feeds):
        register(f"poll[{index}] {feed.url}", _poller(index))


@hookimpl
async def on_shutdown(context: PluginContext) -> None:
    await context.singleton(NewsDesk).aclose()


def _poller(index: int) -> FeedFunction:
    async def poll_forever(context: PluginContext) -> None:
        desk = context.singleton(NewsDesk)
        feed = desk.config.feeds[index]
        failures = 0
        while True:
            result = await desk.poll(index)
            failures = failures + 1 if result.status == "error" else 0
            # a failing feed is asked less often: doubling up to an hour
            wait = feed.poll_interval * 2 ** min(failures, 12) if failures else feed.poll_interval
            await asyncio.sleep(min(wait, max(feed.poll_interval, 3600.0)))

    return poll_forever


# ───────────────────────────── the desk ─────────────────────────────


class PollResult(msgspec.Struct, kw_only=True):
    """What one poll of one feed did."""

    url: str
    status: Literal["updated", "not_modified", "error"]
    http_status: int | None = None
    new_items: int = 0
    duplicates: int = 0
    error: str | None = None


class NewsDesk:
    """Conditional polling, de-duplication and publishing for the news plugin of one server."""

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.config: NewsConfig = context.config
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.validators: dict[str, dict[str, str]] = {}  # url -> {"etag": …, "last_modified": …}
        self._locks = [asyncio.Lock() for _ in self.config.feeds]
        self._ready = asyncio.Lock()
        self._loaded = False
        self._client: httpx.AsyncClient | None = None

    def _count(self, metric: str, by: int = 1) -> None:
        self.context.metrics[metric] = self.context.metrics.get(metric, 0) + by

    async def ready(self) -> None:
        """Load what was seen before (the store, then the ``news`` history) once."""
        async with self._ready:
            if self._loaded:
                return
            self._loaded = True
            for key in await self.context.store.get("seen", []):
                self.seen[str(key)] = None
            try:
                for message in await self.context.history(CHANNEL):
                    self._remember(str(message.get("id", "")), message.get("url"))
            except BackplaneUnavailable as exc:
                log.warning("news history unavailable at start: %s", exc)
            self._trim()

    def _remember(self, key: str, url: object) -> None:
        if key:
            self.seen[key] = None
            self.seen.move_to_end(key)
        if isinstance(url, str) and url:
            link = "l:" + digest(url)
            self.seen[link] = None
            self.seen.move_to_end(link)

    def _trim(self) -> None:
        while len(self.seen) > self.config.max_seen:
            self.seen.popitem(last=False)

    def is_duplicate(self, item: Item) -> bool:
        return item.key in self.seen or (item.link_key is not None and "l:" + item.link_key in self.seen)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.config.request_timeout, follow_redirects=True, headers={"User-Agent": USER_AGENT}
            )
        return self._client

    async def _fetch(self, feed: FeedSettings) -> tuple[int, bytes | None, dict[str, str]]:
        validators = self.validators.get(feed.url)
        if validators is None:
            validators = await self.context.store.get(f"feed:{digest(feed.url)}", {}) or {}
            self.validators[feed.url] = validators
        headers = {"Accept": ACCEPT["json" if feed.kind == "json" else "rss"], **feed.headers}
        if validators.get("etag"):
            headers["If-None-Match"] = validators["etag"]
        if validators.get("last_modified"):
            headers["If-Modified-Since"] = validators["last_modified"]
        async with self.client.stream("GET", feed.url, headers=headers) as response:
            if response.status_code == 304:
                return 304, None, validators
            if response.status_code != 200:
                raise FeedError(f"HTTP {response.status_code} from {feed.url}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > self.config.max_feed_bytes:
                    raise FeedError(f"{feed.url} is larger than {self.config.max_feed_bytes} bytes")
            fresh = {
                key: value
                for key, value in (
                    ("etag", response.headers.get("etag")),
                    ("last_modified", response.headers.get("last-modified")),
                )
                if value
            }
            return 200, bytes(body), fresh

    async def poll(self, index: int) -> PollResult:
        """Poll one feed now; never raises for the feed's own failures (they are counted)."""
        await self.ready()
        feed = self.config.feeds[index]
        async with self._locks[index]:
            self._count("polls")
            try:
                status, body, validators = await self._fetch(feed)
                if body is None:
                    self._count("not_modified")
                    return PollResult(url=feed.url, status="not_modified", http_status=status)
                parse = parse_json if feed.kind == "json" else parse_xml
                items = await asyncio.to_thread(
                    parse,
                    body,
                    url=feed.url,
                    source=feed.source,
                    feed_tickers=feed.tickers,
                    watch=self.config.watch,
                )
            except (httpx.HTTPError, FeedError) as exc:
                self._count("fetch_errors")
                text = str(exc) or type(exc).__name__
                self.context.report_error(text, where=f"feed {feed.url}")
                return PollResult(url=feed.url, status="error", error=text)
            fresh = [item for item in items if not self.is_duplicate(item)]
            duplicates = len(items) - len(fresh)
            fresh.sort(key=lambda i: i.published_at.timestamp() if i.published_at else 0.0, reverse=True)
            published = 0
            for item in reversed(fresh[: self.config.max_items_per_poll]):
                if self.is_duplicate(item):  # the same story twice in one document
                    duplicates += 1
                    continue
                await self.publish(item)
                published += 1
            self._count("duplicates_skipped", duplicates)
            self.validators[feed.url] = validators
            await self.context.store.put(f"feed:{digest(feed.url)}", validators)
            await self._save()
            return PollResult(
                url=feed.url, status="updated", http_status=status, new_items=published, duplicates=duplicates
            )

    async def _save(self) -> None:
        await self.context.store.put("seen", list(self.seen))

    async def publish(self, item: Item) -> list[tuple[str, int]]:
        """Publish on ``news`` and each ``news:{SYMBOL}``; (stream, seq) of each. Raises
        BackplaneUnavailable (nothing is remembered then, so the next poll tries again)."""
        message = News(
            id=item.key,
            headline=item.headline,
            summary=item.summary,
            url=item.url,
            source=item.source,
            tickers=list(item.tickers),
            published_at=iso(item.published_at) if item.published_at else None,
        )
        sent: list[tuple[str, int]] = []
        for stream in [CHANNEL, *(f"{CHANNEL}:{ticker}" for ticker in item.tickers)]:
            envelope = await self.context.publish(stream, message)
            if envelope is not None:
                sent.append((stream, envelope.seq))
        self._remember(item.key, item.url)
        self._trim()
        self._count("items_published")
        return sent


# ───────────────────────────── REST: /api/news ─────────────────────────────


class NewsInput(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A news item to broadcast."""

    headline: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    summary: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    url: str | None = None
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "admin"
    tickers: Annotated[list[str], msgspec.Meta(max_length=10)] = []
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    published_at: datetime | None = None


class PublishedStream(msgspec.Struct):
    channel: str
    seq: int
    recipients: int  # subscribers on this instance at publish time


class Broadcast(msgspec.Struct):
    """A broadcast item: its ``id`` and the streams it went out on."""

    status: str
    id: str
    streams: list[PublishedStream]


class Refreshed(msgspec.Struct):
    feeds: list[PollResult]


class Conflict(HTTPException):
    status_code = HTTP_409_CONFLICT


class ServiceUnavailable(HTTPException):
    status_code = 503


def _checked_tickers(raw: Iterable[str]) -> tuple[str, ...]:
    errors: list[tuple[str, str]] = []
    for index, ticker in enumerate(raw):
        try:
            normalize_ticker(ticker)
        except InvalidSymbol as exc:
            errors.append((f"tickers[{index}]", str(exc)))
    if errors:
        raise invalid(*errors)
    return tickers_of(raw)


def _aware(at: datetime | None) -> datetime | None:
    """Naive times are UTC."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


class NewsController(Controller):
    """Publishing news by hand (admin token required)."""

    path = "/api/news"
    tags = ["news"]
    guards = [admin_guard]
    security = [{"adminToken": []}]
    exception_handlers = {ValidationException: field_errors}

    @post("/broadcast", summary="Broadcast a news item", status_code=HTTP_200_OK)
    async def broadcast(self, data: JSONBody[NewsInput], plugin: NamedDependency[PluginContext]) -> Broadcast:
        """Publish on ``news`` and on ``news:{SYMBOL}`` for each ticker; 409 when an item with this ``id``
        (or this ``url``) was published already."""
        desk = plugin.singleton(NewsDesk)
        await desk.ready()
        tickers = _checked_tickers(data.tickers)
        headline = plain(data.headline, 500)
        if not headline:
            raise invalid(("headline", "must contain text"))
        item = Item(
            key=digest(data.id) if data.id else digest(f"admin|{headline}|{iso(plugin.clock.now())}"),
            headline=headline,
            summary=plain(data.summary, 2000),
            url=data.url,
            source=data.source,
            tickers=tickers,
            published_at=_aware(data.published_at) or plugin.clock.now(),
        )
        if desk.is_duplicate(item):
            raise Conflict(detail=f"news item {data.id or data.url} was published already")
        try:
            sent = await desk.publish(item)
        except BackplaneUnavailable as exc:
            raise ServiceUnavailable(
                detail=f"backplane unavailable, the news was not published: {exc}"
            ) from None
        await desk._save()
        streaming = plugin.runtime.streaming
        return Broadcast(
            status="published",
            id=item.key,
            streams=[PublishedStream(stream, seq, streaming.subscribers(stream)) for stream, seq in sent],
        )

    @post("/refresh", summary="Poll every feed now", status_code=HTTP_200_OK)
    async def refresh(self, plugin: NamedDependency[PluginContext]) -> Refreshed:
        """Poll each configured feed at once (conditional requests as usual) and say what it did."""
        desk = plugin.singleton(NewsDesk)
        return Refreshed([await desk.poll(index) for index in range(len(desk.config.feeds))])
