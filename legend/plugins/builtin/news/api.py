"""The ``news`` plugin's REST API, ``/api/news`` (admin token): broadcast an item by hand, poll the feeds now."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException, ValidationException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from legend.domain.symbols import InvalidSymbol, normalize_ticker
from legend.domain.timefmt import iso
from legend.plugins import BackplaneUnavailable, PluginContext
from legend.plugins.builtin.news.config import feed_name
from legend.plugins.builtin.news.desk import NewsDesk, PollResult
from legend.plugins.builtin.news.parsing import Item, digest, plain, tickers_of, web_url
from legend.plugins.web import Conflict, admin_guard, field_errors, invalid


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
            raise ServiceUnavailableException(
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
