"""The news desk in process: which items count as the same story (per-feed guids, URL-less items, links
across feeds), what an unchanged feed's backlog does, partial publishes retried on the missing streams
only, what was seen re-read when a feed gets its lease, concurrent polls and broadcasts of one story,
``/api/news/refresh`` on an instance that does not run the feed, and what counts as plain text and a URL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from litestar.exceptions import HTTPException
from litestar.testing import AsyncTestClient

from legend.adapters.memory.backplane import InMemoryBackplane
from legend.app import create_app
from legend.bootstrap import Services
from legend.plugins.builtin.news.api import NewsController, NewsInput
from legend.plugins.builtin.news.desk import NewsDesk
from legend.plugins.builtin.news.parsing import digest, parse_json, parse_xml, plain
from legend.plugins.store import InMemoryPluginStateRepository
from legend.ports.backplane import BackplaneUnavailable
from tests.support.backplanes import InterceptedBackplane

from .helpers import ADMIN, FeedServer, eventually, settings_with
from .test_news import rss

Build = Callable[..., Services]


class TestBackplane(InterceptedBackplane):
    """In memory, with faults: ``fail`` streams refuse to publish (``fail_times`` times each, -1: always),
    ``gate`` (when cleared) holds publishes until set, as a slow Redis would, and ``lease`` decides whether
    this instance may hold feed leases."""

    __test__ = False

    def __init__(self) -> None:
        super().__init__()
        self.fail: dict[str, int] = {}
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0
        self.lease = True

    async def before_publish(self, stream: str) -> None:
        left = self.fail.get(stream, 0)
        if left:
            self.fail[stream] = left - 1 if left > 0 else left
            raise BackplaneUnavailable(f"cannot publish on {stream}")
        if not self.gate.is_set():
            self.waiting += 1
            await self.gate.wait()
            self.waiting -= 1

    async def hold_lease(self, name: str, ttl: float) -> bool:
        return self.lease


async def messages(services: Services, stream: str) -> list[dict[str, Any]]:
    replay = await services.backplane.replay(stream, None)
    return [msgspec.json.decode(e.text) for e in replay.envelopes]


def news(
    build: Build,
    feeds: list[dict[str, Any]],
    *,
    backplane: InMemoryBackplane | None = None,
    state: InMemoryPluginStateRepository | None = None,
    **table: Any,
) -> tuple[Services, NewsDesk]:
    """Services with the news plugin on these feeds (not started: polls are made by the test)."""
    services = build(
        settings=settings_with(
            {"enabled": ["news"], "news": {"feeds": feeds, **table}},
            redis={"lease_ttl": 1.0},
            security={"admin_token": ADMIN["Authorization"].removeprefix("Bearer ")},
        ),
        backplane=backplane or TestBackplane(),
        plugin_state=state or InMemoryPluginStateRepository(),
    )
    assert services.plugins is not None
    context = services.plugins.records["news"].context
    assert context is not None
    return services, context.singleton(NewsDesk)


def rss_feed(
    feeds: FeedServer, path: str, *items: tuple[str, str, str, str], conditional: bool = False
) -> str:
    feeds.serve(path, rss(*items), "application/rss+xml", conditional=conditional)
    return feeds.url(path)


def dated_rss(*items: tuple[str, str, str]) -> bytes:
    """(guid, title, RFC 822 date) items without links."""
    body = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><pubDate>{date}</pubDate></item>"
        for guid, title, date in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>{body}</channel></rss>'.encode()


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Iterator[str]:
    """A path prefix of this test on the shared feed server."""
    yield "/" + request.node.name


# ───────────────────────────── identities ─────────────────────────────


async def test_json_feed_items_without_a_url_are_each_published(
    build: Build, feeds: FeedServer, unique: str
) -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [
                {"id": "1", "title": "First story"},
                {"id": "2", "title": "Second story"},
                {"id": "3", "title": "Third story", "external_url": "https://news.test/third"},
            ],
        }
    ).encode()
    url = feeds.url(f"{unique}.json")
    feeds.serve(f"{unique}.json", body, "application/feed+json")
    first, second, third = parse_json(body, url=url, source=None)
    assert first.url is None and second.url is None and first.link_key is None
    assert third.url == "https://news.test/third"
    services, desk = news(build, [{"url": url, "kind": "json"}])
    result = await desk.poll(0)
    assert (result.status, result.new_items, result.duplicates) == ("updated", 3, 0)
    assert sorted(m["headline"] for m in await messages(services, "news")) == [
        "First story",
        "Second story",
        "Third story",
    ]


async def test_the_same_guid_in_two_feeds_is_two_items_and_the_same_link_is_one(
    build: Build, feeds: FeedServer, unique: str
) -> None:
    one = rss_feed(feeds, f"{unique}-a.rss", ("1", "Story of wire A", "https://a.test/1", "text"))
    two = rss_feed(
        feeds,
        f"{unique}-b.rss",
        ("1", "Story of wire B", "https://b.test/1", "text"),
        ("77", "Wire A's story, syndicated", "https://a.test/1", "text"),
    )
    [a] = parse_xml(rss(("1", "x", "https://a.test/1", "")), url=one, source=None)
    [b] = parse_xml(rss(("1", "x", "https://b.test/1", "")), url=two, source=None)
    assert a.key == digest(f"{one}|1") and a.key != b.key
    services, desk = news(build, [{"url": one}, {"url": two}])
    assert (await desk.poll(0)).new_items == 1
    result = await desk.poll(1)
    assert (result.new_items, result.duplicates) == (1, 1)  # its guid "1" is its own; the link is not
    assert [m["headline"] for m in await messages(services, "news")] == ["Story of wire A", "Story of wire B"]


# ───────────────────────────── the backlog and partial publishes ─────────────────────────────


async def test_items_beyond_the_cap_are_remembered_not_trickled_out_later(
    build: Build, feeds: FeedServer, unique: str
) -> None:
    feeds.serve(
        f"{unique}.rss",
        dated_rss(
            ("n-1", "Oldest", "Mon, 05 Jan 2026 10:00:00 GMT"),
            ("n-2", "Middle", "Mon, 05 Jan 2026 11:00:00 GMT"),
            ("n-3", "Newest", "Mon, 05 Jan 2026 12:00:00 GMT"),
        ),
        "application/rss+xml",
        conditional=False,  # the same document in full at every poll
    )
    services, desk = news(build, [{"url": feeds.url(f"{unique}.rss")}], max_items_per_poll=1)
    assert (await desk.poll(0)).new_items == 1
    again = await desk.poll(0)
    assert (again.status, again.new_items, again.duplicates) == ("updated", 0, 3)
    assert [m["headline"] for m in await messages(services, "news")] == ["Newest"]
    assert desk.context.metrics["backlog_skipped"] == 2


async def test_an_item_that_missed_a_symbol_stream_is_retried_there_only(
    build: Build, feeds: FeedServer, unique: str
) -> None:
    backplane = TestBackplane()
    backplane.fail["news:AAPL"] = 1
    url = rss_feed(feeds, f"{unique}.rss", ("a-1", "Apple up", "https://news.test/a1", "$AAPL rose"))
    services, desk = news(build, [{"url": url}], backplane=backplane)
    first = await desk.poll(0)
    assert (first.status, first.new_items) == ("updated", 1)
    assert len(await messages(services, "news")) == 1 and await messages(services, "news:AAPL") == []
    assert [entry.streams for entry in desk.pending.values()] == [["news:AAPL"]]
    second = await desk.poll(0)  # the retry goes to news:AAPL only; the item is not new again
    assert (second.new_items, second.duplicates) == (0, 1)
    on_news, on_aapl = await messages(services, "news"), await messages(services, "news:AAPL")
    assert len(on_news) == 1 and [m["id"] for m in on_aapl] == [on_news[0]["id"]]
    assert desk.pending == {}
    await desk.poll(0)
    assert len(await messages(services, "news")) == 1 and len(await messages(services, "news:AAPL")) == 1


async def test_an_item_that_went_out_nowhere_is_published_by_the_next_poll(
    build: Build, feeds: FeedServer, unique: str
) -> None:
    backplane = TestBackplane()
    backplane.fail["news"] = 1
    url = rss_feed(feeds, f"{unique}.rss", ("a-1", "Market closes", "https://news.test/mc", "flat"))
    services, desk = news(build, [{"url": url}], backplane=backplane)
    failed = await desk.poll(0)
    assert failed.status == "error" and "backplane unavailable" in (failed.error or "")
    [item] = parse_xml(rss(("a-1", "Market closes", "https://news.test/mc", "flat")), url=url, source=None)
    assert not desk.is_duplicate(item)  # it went out nowhere: not remembered
    assert (await desk.poll(0)).new_items == 1
    assert [m["headline"] for m in await messages(services, "news")] == ["Market closes"]


# ───────────────────────────── across instances and concurrent publishers ─────────────────────────────


async def test_what_another_instance_published_is_read_again_when_the_lease_comes_here(
    build: Build, feeds: FeedServer, unique: str
) -> None:
    url = rss_feed(feeds, f"{unique}.rss")  # empty at first
    state = InMemoryPluginStateRepository()
    first_bp, second_bp = TestBackplane(), TestBackplane()
    second_bp._log = first_bp._log  # one cluster: the same history
    second_bp.lease = False
    first, first_desk = news(build, [{"url": url, "poll_interval": 3600}], backplane=first_bp, state=state)
    second, second_desk = news(build, [{"url": url, "poll_interval": 3600}], backplane=second_bp, state=state)
    await second.start()
    await second_desk.ready()  # it loaded what was seen (nothing yet), e.g. for a broadcast
    assert second.plugins is not None
    runner = next(iter(second.plugins.records["news"].feeds.values()))
    await eventually(lambda: runner.state == "waiting", what="the feed waiting for its lease")
    # meanwhile the first instance polls the feed and publishes a story
    rss_feed(feeds, f"{unique}.rss", ("x-1", "Chips rally", "https://news.test/chips", "$NVDA"))
    assert (await first_desk.poll(0)).new_items == 1
    assert "duplicates_skipped" not in second_desk.context.metrics
    second_bp.lease = True  # the first instance died: the second takes the feed over
    await eventually(lambda: "duplicates_skipped" in second_desk.context.metrics, what="a poll on the second")
    assert [m["headline"] for m in await messages(second, "news")] == ["Chips rally"]  # not twice
    assert second_desk.context.metrics.get("duplicates_skipped") == 1


async def test_two_feeds_with_the_same_link_polled_at_once_publish_it_once(
    build: Build, feeds: FeedServer, unique: str
) -> None:
    one = rss_feed(feeds, f"{unique}-a.rss", ("a-9", "Oil spikes", "https://news.test/oil", "x"))
    two = rss_feed(feeds, f"{unique}-b.rss", ("b-9", "Oil spikes (wire)", "https://news.test/oil", "x"))
    backplane = TestBackplane()
    services, desk = news(build, [{"url": one}, {"url": two}], backplane=backplane)
    await desk.ready()
    backplane.gate.clear()  # publishes are slow: the first is still in flight when the second feed polls
    first = asyncio.create_task(desk.poll(0))
    await eventually(lambda: backplane.waiting == 1, what="the first publish in flight")
    second = asyncio.create_task(desk.poll(1))
    await asyncio.wait({second}, timeout=2)
    backplane.gate.set()
    results = await asyncio.gather(first, second)
    assert sorted(r.new_items for r in results) == [0, 1]
    assert len(await messages(services, "news")) == 1


async def test_two_broadcasts_with_the_same_id_at_once_publish_it_once(build: Build) -> None:
    backplane = TestBackplane()
    services, desk = news(build, [], backplane=backplane)
    broadcast = NewsController.broadcast.fn  # the handler itself: two requests in flight at once

    async def post() -> int:
        try:
            await broadcast(None, data=NewsInput(headline="Fed cuts rates", id="fed-1"), plugin=desk.context)
        except HTTPException as exc:
            return exc.status_code
        return 200

    backplane.gate.clear()
    first = asyncio.create_task(post())
    await eventually(lambda: backplane.waiting == 1, what="the first broadcast in flight")
    second = asyncio.create_task(post())
    await asyncio.wait({second}, timeout=2)
    backplane.gate.set()
    assert sorted(await asyncio.gather(first, second)) == [200, 409]
    assert len(await messages(services, "news")) == 1


async def test_refresh_polls_only_the_feeds_that_run_here(
    build: Build, feeds: FeedServer, unique: str
) -> None:
    url = rss_feed(feeds, f"{unique}.rss", ("r-1", "Retail sales", "https://news.test/retail", "x"))
    backplane = TestBackplane()
    backplane.lease = False  # another instance holds the feed's lease and polls it
    services, _ = news(build, [{"url": url}], backplane=backplane)
    async with AsyncTestClient(create_app(services=services), base_url="http://legend.localhost") as client:
        response = await client.post("/api/news/refresh", headers=ADMIN)
        assert response.status_code == 200, response.text
        [result] = response.json()["feeds"]
        assert result["status"] == "skipped" and "another instance" in result["note"]
        assert feeds.hits(f"{unique}.rss") == [] and await messages(services, "news") == []
        backplane.lease = True
        assert services.plugins is not None
        runner = next(iter(services.plugins.records["news"].feeds.values()))
        await eventually(lambda: runner.state == "running", what="the lease here")
        await eventually(lambda: feeds.hits(f"{unique}.rss"), what="the first poll")
        response = await client.post("/api/news/refresh", headers=ADMIN)
        assert response.json()["feeds"][0]["status"] == "updated"


# ───────────────────────────── plain text and URLs ─────────────────────────────


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("&lt;img src=x onerror=alert(1)&gt;Apple beats", "Apple beats"),
        ("&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;Fed holds", "alert(1) Fed holds"),
        ("<p>Deal &amp; more</p>", "Deal & more"),
        ("AT&amp;T &lt; Verizon", "AT&T < Verizon"),
    ],
)
def test_plain_text_never_turns_escaped_markup_into_markup(raw: str, expected: str) -> None:
    assert plain(raw, 500) == expected


def test_only_http_links_are_kept_on_feed_items() -> None:
    items = parse_xml(
        rss(
            ("1", "Script link", "javascript:alert(1)", ""),
            ("2", "Data link", "data:text/html,hi", ""),
            ("3", "Relative link", "/story/3", ""),
        ),
        url="https://news.test/feed.rss",
        source=None,
    )
    assert [i.url for i in items] == [None, None, "https://news.test/story/3"]
    body = b'{"items": [{"id": "1", "title": "t", "url": "javascript:alert(1)"}]}'
    assert parse_json(body, url="https://news.test/j", source=None)[0].url is None


async def test_a_broadcast_url_must_be_http(build: Build) -> None:
    services, _ = news(build, [])
    async with AsyncTestClient(create_app(services=services), base_url="http://legend.localhost") as client:
        for bad in ("javascript:alert(1)", "ftp://news.test/x", "/relative"):
            response = await client.post(
                "/api/news/broadcast", json={"headline": "h", "url": bad}, headers=ADMIN
            )
            assert response.status_code == 400, response.text
            assert response.json()["extra"][0]["key"] == "url"
        ok = await client.post(
            "/api/news/broadcast", json={"headline": "h", "url": "https://news.test/ok"}, headers=ADMIN
        )
        assert ok.status_code == 200, ok.text
    assert [m["url"] for m in await messages(services, "news")] == ["https://news.test/ok"]
