"""The ``news`` plugin's hooks. Written as any third-party plugin would be: only hooks and the context.

- Channel ``news`` (every item) and ``news:{SYMBOL}`` (items that mention the symbol; the same item goes
  to both, with the same ``id``). Must-deliver, with a history for resume.
- Feeds from ``[plugins.news] feeds``: RSS/Atom or JSON Feed, each polled every ``poll_interval`` seconds
  with conditional requests (``If-None-Match``/``If-Modified-Since``; a 304 costs nothing). The ETag and
  Last-Modified survive restarts in the plugin store.
- De-duplication by guid within its feed (or link, or headline and date) and by link across feeds, in a
  bounded memory of the last ``max_seen`` items, kept in the plugin store and re-read from it and from the
  ``news`` history whenever a feed is given its lease: an item is published once, across polls, feeds,
  restarts and instances. Items beyond ``max_items_per_poll`` are old news: remembered, never sent.
- An item that reached ``news`` but not some ``news:{SYMBOL}`` (the backplane failed) is remembered, and
  only the missing streams are retried.
- ``POST /api/news/broadcast`` (admin) publishes an item by hand; ``POST /api/news/refresh`` (admin) polls
  the feeds that run on this instance now.
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
    web_url,
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
        register(feed_name(index, feed), _poller(index))


@hookimpl
async def on_shutdown(context: PluginContext) -> None:
    await context.singleton(NewsDesk).aclose()


def feed_name(index: int, feed: FeedSettings) -> str:
    """The name feed ``index`` is registered under (its lease is ``plugin:news:<name>``)."""
    return f"poll[{index}] {feed.url}"


def _poller(index: int) -> FeedFunction:
    async def poll_forever(context: PluginContext) -> None:
        desk = context.singleton(NewsDesk)
        feed = desk.config.feeds[index]
        # the feed (re)starts when this instance was (again) given its lease: another instance may have
        # polled it meanwhile, so what it published and left to retry is read again first
        await desk.sync(feed.url)
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
    """What one poll of one feed did (``skipped``: the feed runs on another instance, which polls it)."""

    url: str
    status: Literal["updated", "not_modified", "error", "skipped"]
    http_status: int | None = None
    new_items: int = 0
    duplicates: int = 0
    error: str | None = None
    note: str | None = None


class Pending(msgspec.Struct, kw_only=True):
    """An item that went out on some of its streams; the others are retried (and only those)."""

    message: News
    streams: list[str]
    feed: str | None = None  # the feed it came from (retried by that feed's polls); None: a broadcast


MAX_PENDING = 1000  # items waiting for a retry, at most
RETRY_MAX_DELAY = 60.0


class NewsDesk:
    """Conditional polling, de-duplication and publishing for the news plugin of one server.

    ``seen`` holds the identities (``Item.key``) and links (``l:`` + hash) of what was published. A key is
    claimed in ``seen`` before anything is awaited, so that two feeds carrying the same link, or two
    broadcasts with the same ``id``, cannot both publish; it is released when the item went out nowhere.
    """

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.config: NewsConfig = context.config
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.pending: dict[str, Pending] = {}  # item key -> the streams still to send it on
        self.validators: dict[str, dict[str, str]] = {}  # url -> {"etag": …, "last_modified": …}
        self._locks = [asyncio.Lock() for _ in self.config.feeds]
        self._sync = asyncio.Lock()
        self._loaded = False
        self._client: httpx.AsyncClient | None = None

    def _count(self, metric: str, by: int = 1) -> None:
        self.context.metrics[metric] = self.context.metrics.get(metric, 0) + by

    # ─────────── what was seen ───────────

    async def ready(self) -> None:
        """Load what was seen before (the store, then the ``news`` history), once."""
        if not self._loaded:
            await self.sync()

    async def sync(self, feed_url: str | None = None) -> None:
        """Merge what the store and the ``news`` history hold into ``seen``: what every instance published.

        With ``feed_url`` (the feed was just given its lease here), that feed's retries and validators are
        taken from the store as well, as the instance that ran it before left them."""
        async with self._sync:
            store = self.context.store
            stored = await store.get("seen", []) or []
            pending = await store.get(self._pending_key(feed_url), []) if feed_url else None
            try:
                history = await self.context.history(CHANNEL)
            except BackplaneUnavailable as exc:
                log.warning("news history unavailable: %s", exc)
                history = []
            self._merge(stored)
            for message in history:
                self._remember(str(message.get("id", "")), message.get("url"))
            if feed_url is not None:
                for key in [k for k, entry in self.pending.items() if entry.feed == feed_url]:
                    del self.pending[key]
                for raw in pending or []:
                    try:
                        entry = msgspec.convert(raw, Pending)
                    except msgspec.ValidationError:
                        continue
                    self.pending[entry.message.id] = entry
                self.validators.pop(feed_url, None)
            self._trim()
            self._loaded = True

    def _merge(self, keys: Iterable[object]) -> None:
        """Add stored keys to ``seen`` as older than what this instance remembers itself."""
        merged: OrderedDict[str, None] = OrderedDict((str(key), None) for key in keys)
        for key in self.seen:
            merged.pop(key, None)
            merged[key] = None
        self.seen = merged

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

    def _claim(self, item: Item) -> list[str] | None:
        """Mark the item seen now (no await in between); the keys added, or None when it was seen."""
        if self.is_duplicate(item):
            return None
        keys = [item.key] + (["l:" + item.link_key] if item.link_key else [])
        for key in keys:
            self.seen[key] = None
        return keys

    def _release(self, keys: list[str]) -> None:
        for key in keys:
            self.seen.pop(key, None)

    @staticmethod
    def _pending_key(feed_url: str | None) -> str:
        return f"pending:{digest(feed_url or '')}"

    async def _save(self, feed_url: str | None = None) -> None:
        """Store ``seen`` (merged with what other instances stored) and, for a feed, its retries."""
        store = self.context.store
        self._merge(await store.get("seen", []) or [])
        self._trim()
        await store.put("seen", list(self.seen))
        if feed_url is not None:
            entries = [msgspec.to_builtins(e) for e in self.pending.values() if e.feed == feed_url]
            await store.put(self._pending_key(feed_url), entries)

    # ─────────── fetching ───────────

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

    # ─────────── polling ───────────

    async def poll(self, index: int) -> PollResult:
        """Poll one feed now; never raises for the feed's own failures or the backplane's (they are
        counted, and the next poll reads the feed again)."""
        await self.ready()
        feed = self.config.feeds[index]
        async with self._locks[index]:
            self._count("polls")
            retried = await self._retry(feed.url)
            try:
                status, body, validators = await self._fetch(feed)
                if body is None:
                    self._count("not_modified")
                    if retried:
                        await self._save(feed.url)
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
            cap = self.config.max_items_per_poll
            published = 0
            try:
                for item in reversed(fresh[:cap]):
                    outcome = await self.publish(item, feed=feed.url)
                    if outcome is None:  # the same story twice in one document, or from another feed
                        duplicates += 1
                        continue
                    published += 1
            except BackplaneUnavailable as exc:
                # what went out is remembered; the validators are not kept, so the next poll reads the
                # feed again and publishes the rest
                self._count("duplicates_skipped", duplicates)
                await self._save(feed.url)
                text = f"backplane unavailable: {exc}"
                self.context.report_error(text, where=f"feed {feed.url}")
                return PollResult(
                    url=feed.url, status="error", new_items=published, duplicates=duplicates, error=text
                )
            # beyond the cap is older news than what went out now: remembered, never sent later
            backlog = fresh[cap:]
            for item in backlog:
                self._remember(item.key, item.url)
            self._trim()
            if backlog:
                self._count("backlog_skipped", len(backlog))
            self._count("duplicates_skipped", duplicates)
            self.validators[feed.url] = validators
            await self.context.store.put(f"feed:{digest(feed.url)}", validators)
            await self._save(feed.url)
            return PollResult(
                url=feed.url, status="updated", http_status=status, new_items=published, duplicates=duplicates
            )

    # ─────────── publishing ───────────

    def message(self, item: Item) -> News:
        return News(
            id=item.key,
            headline=item.headline,
            summary=item.summary,
            url=item.url,
            source=item.source,
            tickers=list(item.tickers),
            published_at=iso(item.published_at) if item.published_at else None,
        )

    async def _send(
        self, message: News, streams: list[str]
    ) -> tuple[list[tuple[str, int]], list[str], BackplaneUnavailable | None]:
        """Publish on each stream: (stream, seq) of those it went out on, the streams that failed, and the
        last failure. A message rejected by validation is neither (it would be rejected again)."""
        sent: list[tuple[str, int]] = []
        failed: list[str] = []
        error: BackplaneUnavailable | None = None
        for stream in streams:
            try:
                envelope = await self.context.publish(stream, message)
            except BackplaneUnavailable as exc:
                failed.append(stream)
                error = exc
                continue
            if envelope is not None:
                sent.append((stream, envelope.seq))
        return sent, failed, error

    async def publish(
        self, item: Item, *, feed: str | None = None
    ) -> tuple[list[tuple[str, int]], list[str]] | None:
        """Publish on ``news`` and each ``news:{SYMBOL}``: the (stream, seq) it went out on and the streams
        left to retry, or None when the item was published already.

        The item is remembered as soon as it went out on one stream; the streams that failed are retried
        (for a feed's item by that feed's next polls, else by ``retry_later``). Raises BackplaneUnavailable
        when it went out nowhere: then nothing is remembered and the next poll tries again."""
        claimed = self._claim(item)
        if claimed is None:
            return None
        message = self.message(item)
        streams = [CHANNEL, *(f"{CHANNEL}:{ticker}" for ticker in item.tickers)]
        sent, failed, error = await self._send(message, streams)
        if failed and not sent:
            self._release(claimed)
            assert error is not None
            raise error
        if failed:
            self._add_pending(Pending(message=message, streams=failed, feed=feed))
        for key in claimed:  # newest in the bounded memory
            if key in self.seen:
                self.seen.move_to_end(key)
        self._trim()
        self._count("items_published")
        return sent, failed

    def _add_pending(self, entry: Pending) -> None:
        self.pending[entry.message.id] = entry
        while len(self.pending) > MAX_PENDING:
            dropped = next(iter(self.pending))
            lost = self.pending.pop(dropped)
            self.context.report_error(f"news {dropped} never reached {', '.join(lost.streams)}", "retry")
        self._count("streams_to_retry", len(entry.streams))

    async def _retry_entry(self, key: str) -> bool:
        """Send a pending item on the streams it still misses; True when nothing is left to retry."""
        entry = self.pending.pop(key, None)  # taken before awaiting: nobody else retries it meanwhile
        if entry is None:
            return True
        sent, failed, _ = await self._send(entry.message, entry.streams)
        self._count("streams_retried", len(sent))
        if failed:
            self.pending.setdefault(key, Pending(message=entry.message, streams=failed, feed=entry.feed))
            return False
        return True

    async def _retry(self, feed_url: str) -> bool:
        """Retry the pending items of a feed; whether there were any."""
        keys = [k for k, entry in self.pending.items() if entry.feed == feed_url]
        for key in keys:
            await self._retry_entry(key)
        return bool(keys)

    def retry_later(self, key: str) -> None:
        """Retry a broadcast item's failed streams in the background, backing off, until they all went out."""

        async def retry() -> None:
            delay = 1.0
            while key in self.pending:
                await asyncio.sleep(delay)
                if await self._retry_entry(key):
                    return
                delay = min(delay * 2, RETRY_MAX_DELAY)

        self.context.spawn(retry(), name=f"retry news {key}")


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
    """A broadcast item: its ``id``, the streams it went out on, and those it is being retried on
    (``status`` ``partial``) because the backplane failed for them."""

    status: str
    id: str
    streams: list[PublishedStream]
    retrying: list[str] = []


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
        (or this ``url``) was published already; 400 for a ``url`` that is not http(s)."""
        tickers = _checked_tickers(data.tickers)
        url = web_url(data.url) if data.url is not None else None
        if data.url is not None and url is None:
            raise invalid(("url", "must be an absolute http:// or https:// URL"))
        headline = plain(data.headline, 500)
        if not headline:
            raise invalid(("headline", "must contain text"))
        desk = plugin.singleton(NewsDesk)
        await desk.sync()  # what any instance published until now
        item = Item(
            key=digest(data.id) if data.id else digest(f"admin|{headline}|{iso(plugin.clock.now())}"),
            headline=headline,
            summary=plain(data.summary, 2000),
            url=url,
            source=data.source,
            tickers=tickers,
            published_at=_aware(data.published_at) or plugin.clock.now(),
        )
        try:
            outcome = await desk.publish(item)
        except BackplaneUnavailable as exc:
            raise ServiceUnavailable(
                detail=f"backplane unavailable, the news was not published: {exc}"
            ) from None
        if outcome is None:
            raise Conflict(detail=f"news item {data.id or url} was published already")
        sent, failed = outcome
        if failed:
            desk.retry_later(item.key)
        await desk._save()
        streaming = plugin.runtime.streaming
        return Broadcast(
            status="partial" if failed else "published",
            id=item.key,
            streams=[PublishedStream(stream, seq, streaming.subscribers(stream)) for stream, seq in sent],
            retrying=failed,
        )

    @post("/refresh", summary="Poll every feed now", status_code=HTTP_200_OK)
    async def refresh(self, plugin: NamedDependency[PluginContext]) -> Refreshed:
        """Poll now each configured feed that runs on this instance (conditional requests as usual) and
        say what it did; a feed another instance runs (it holds the feed's lease) is ``skipped``."""
        desk = plugin.singleton(NewsDesk)
        results: list[PollResult] = []
        for index, feed in enumerate(desk.config.feeds):
            if plugin.feed_running(feed_name(index, feed)):
                results.append(await desk.poll(index))
            else:
                results.append(
                    PollResult(
                        url=feed.url,
                        status="skipped",
                        note="the feed does not run on this instance now (another instance holds its "
                        "lease, or it is restarting): it is polled there",
                    )
                )
        return Refreshed(results)
