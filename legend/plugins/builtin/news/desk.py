"""The news desk: conditional polling of the feeds, de-duplication, and publishing (with retries of the
streams a message missed) for the ``news`` plugin of one server."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Literal

import httpx
import msgspec

from legend import __version__
from legend.domain.timefmt import iso
from legend.plugins import BackplaneUnavailable, PluginContext
from legend.plugins.builtin.news.config import FeedSettings, NewsConfig
from legend.plugins.builtin.news.parsing import FeedError, Item, digest, parse_json, parse_xml
from legend.plugins.builtin.news.schema import CHANNEL, News
from legend.runtime.backoff import Backoff

log = logging.getLogger("legend.plugins.news")
USER_AGENT = f"legend-realtime/{__version__} (news plugin)"
ACCEPT = {
    "rss": "application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5",
    "json": "application/feed+json, application/json;q=0.9, */*;q=0.5",
}


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
        streams = [CHANNEL, *(self.context.stream(CHANNEL, ticker) for ticker in item.tickers)]
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
            backoff = Backoff(1.0, maximum=RETRY_MAX_DELAY)
            while key in self.pending:
                await backoff.sleep()
                if await self._retry_entry(key):
                    return

        self.context.spawn(retry(), name=f"retry news {key}")
