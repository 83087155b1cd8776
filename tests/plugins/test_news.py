"""The news plugin: feeds parsed and tickers found; over a real server, polled with conditional requests
(304), de-duplicated across polls, feeds and a restart, delivered on ``news`` and ``news:{SYMBOL}``; and
the admin broadcast endpoint."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from legend.plugins.builtin.news.parsing import FeedError, digest, mentioned, parse_json, parse_xml
from tests.support.server import LegendServer
from tests.support.wsclient import connect

from .helpers import ADMIN, FeedServer, plugin_server, wait_for


def rss(*items: tuple[str, str, str, str]) -> bytes:
    """(guid, title, link, description) items."""
    body = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><link>{link}</link><description>{text}</description>"
        "<pubDate>Mon, 05 Jan 2026 14:30:00 GMT</pubDate></item>"
        for guid, title, link, text in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Test Wire</title>{body}</channel></rss>'.encode()


ITEM_A = ("a-1", "Apple beats estimates", "https://news.test/a", "Shares of $AAPL rose after hours.")
ITEM_B = (
    "b-1",
    "IBM (NYSE:IBM) to acquire a startup",
    "https://news.test/b",
    "&lt;p&gt;Deal &amp; more&lt;/p&gt;",
)
ITEM_D = ("d-1", "Nvidia guides higher", "https://news.test/d", "NASDAQ: NVDA up 4%")
JSON_FEED = b"""{"version": "https://jsonfeed.org/version/1.1", "title": "JSON Wire", "items": [
  {"id": "c-1", "url": "https://news.test/c", "title": "Tesla deliveries", "content_text": "Record quarter",
   "date_published": "2026-01-05T15:00:00Z", "_legend": {"tickers": ["tsla"]}},
  {"id": "other-id-for-a", "url": "https://news.test/a", "title": "Apple beats (syndicated)"}
]}"""


# ───────────────────────────── parsing ─────────────────────────────


def test_rss_items_are_read_with_their_tickers() -> None:
    items = parse_xml(rss(ITEM_A, ITEM_B), url="https://news.test/rss", source=None)
    assert [i.headline for i in items] == ["Apple beats estimates", "IBM (NYSE:IBM) to acquire a startup"]
    assert items[0].tickers == ("AAPL",) and items[1].tickers == ("IBM",)
    assert items[1].summary == "Deal & more" and items[0].source == "Test Wire"
    assert items[0].published_at == datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
    # a guid identifies an item within its feed only
    assert items[0].key == digest("https://news.test/rss|a-1") and items[0].url == "https://news.test/a"


def test_atom_and_json_feeds_are_read() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom</title>
      <entry><title>Fed holds rates</title><id>urn:x:1</id><link href="https://news.test/fed"/>
      <updated>2026-01-05T10:00:00Z</updated><summary>Markets flat; $SPY unchanged</summary>
      <category term="NASDAQ:QQQ"/></entry></feed>"""
    [item] = parse_xml(atom, url="https://news.test/atom", source="Desk", feed_tickers=["dia"])
    assert item.source == "Desk" and item.tickers == ("DIA", "QQQ", "SPY")
    items = parse_json(JSON_FEED, url="https://news.test/json", source=None)
    assert [i.tickers for i in items] == [("TSLA",), ()]
    assert items[0].summary == "Record quarter" and items[0].source == "JSON Wire"


def test_what_counts_as_a_mention() -> None:
    assert mentioned(["$AAPL and $brk.b up, (NASDAQ: MSFT), NYSE:IBM; $5 lunch; US$ rates"]) == [
        "AAPL",
        "brk.b",
        "MSFT",
        "IBM",
    ]
    assert mentioned(["AMD rallies; MAD max"], watch=["AMD"]) == ["AMD"]


def test_a_document_that_is_no_feed_is_an_error() -> None:
    with pytest.raises(FeedError):
        parse_xml(b"<<<not xml", url="u", source=None)
    with pytest.raises(FeedError):
        parse_json(b'{"items": "no"}', url="u", source=None)


# ───────────────────────────── over a real server ─────────────────────────────


@pytest.fixture(scope="module")
def news_server(feeds: FeedServer) -> Iterator[LegendServer]:
    feeds.serve("/wire.rss", rss(ITEM_A, ITEM_B), "application/rss+xml")
    feeds.serve("/wire.json", JSON_FEED, "application/feed+json")
    server = plugin_server(
        {
            "plugins": {"enabled": ["news"]},
            "plugins.news": {
                "feeds": [
                    {"url": feeds.url("/wire.rss"), "kind": "rss", "poll_interval": 3600},
                    {"url": feeds.url("/wire.json"), "kind": "json", "poll_interval": 3600},
                ]
            },
        }
    ).start()
    try:
        yield server
    finally:
        server.close()


def refresh(server: LegendServer) -> list[dict[str, Any]]:
    response = httpx.post(f"{server.url}/api/news/refresh", headers=ADMIN, timeout=10)
    assert response.status_code == 200, response.text
    feeds: list[dict[str, Any]] = response.json()["feeds"]
    return feeds


async def history(server: LegendServer, ticker: str | None = None) -> list[dict[str, Any]]:
    client = await connect(server.ws_url, "reader")
    try:
        _, [replies] = await client.subscribe("news", ticker)
        messages: list[dict[str, Any]] = replies["messages"]
        return messages
    finally:
        await client.close()


async def settled(server: LegendServer, count: int) -> list[dict[str, Any]]:
    """The ``news`` history once it holds ``count`` items (the first polls run at start)."""
    deadline = time.monotonic() + 10
    while len(messages := await history(server)) < count:
        assert time.monotonic() < deadline, f"news history: {messages}"
    return messages


def apple_headline(messages: list[dict[str, Any]]) -> str:
    return next(m["headline"] for m in messages if m["headline"].startswith("Apple"))


async def test_feeds_are_polled_at_start_and_items_reach_news_and_symbol_channels(
    news_server: LegendServer, feeds: FeedServer
) -> None:
    everything = await settled(news_server, 3)
    # both feeds are polled at once: whichever copy of the Apple story came first was published, and the
    # other (same link, another guid) recognised as a duplicate
    assert sorted(m["headline"] for m in everything) == sorted(
        [apple_headline(everything), "IBM (NYSE:IBM) to acquire a startup", "Tesla deliveries"]
    )
    apple = next(m for m in everything if m["headline"].startswith("Apple"))
    assert apple["type"] == "news" and apple["channel"] == "news" and apple["url"] == "https://news.test/a"
    if apple["headline"] == "Apple beats estimates":
        assert (
            apple["id"] == digest(f"{feeds.url('/wire.rss')}|a-1")
            and apple["tickers"] == ["AAPL"]
            and apple["source"] == "Test Wire"
        )
        assert apple["published_at"] == "2026-01-05T14:30:00.000Z"
    assert apple["timestamp"]
    on_aapl = await history(news_server, "aapl")
    if apple["tickers"]:
        assert [m["id"] for m in on_aapl] == [apple["id"]] and on_aapl[0]["channel"] == "news:AAPL"
    assert [m["headline"] for m in await history(news_server, "TSLA")] == ["Tesla deliveries"]
    assert await history(news_server, "MSFT") == []


async def test_conditional_requests_get_304_and_new_items_are_published_once(
    news_server: LegendServer, feeds: FeedServer
) -> None:
    await settled(news_server, 3)
    results = refresh(news_server)
    assert [(r["status"], r["http_status"]) for r in results] == [
        ("not_modified", 304),
        ("not_modified", 304),
    ]
    last = feeds.hits("/wire.rss")[-1]
    assert last["status"] == 304 and last["headers"]["If-None-Match"] == feeds.files["/wire.rss"].etag
    assert last["headers"]["If-Modified-Since"] == feeds.files["/wire.rss"].last_modified

    client = await connect(news_server.ws_url, "watcher")
    await client.subscribe("news")
    feeds.serve("/wire.rss", rss(ITEM_D, ITEM_A, ITEM_B), "application/rss+xml")  # one new item
    rss_result = refresh(news_server)[0]
    assert (rss_result["status"], rss_result["new_items"], rss_result["duplicates"]) == ("updated", 1, 2)
    fresh = await client.expect("news")
    assert fresh["headline"] == "Nvidia guides higher" and fresh["tickers"] == ["NVDA"]
    assert refresh(news_server)[0]["status"] == "not_modified"
    assert [m for m in await client.quiet(0.3) if m["type"] == "news"] == []
    await client.close()

    stats = httpx.get(f"{news_server.url}/api/plugins", headers=ADMIN, timeout=5).json()
    news = next(p for p in stats["plugins"] if p["name"] == "news")
    assert news["metrics"]["not_modified"] >= 4 and news["metrics"]["items_published"] == 4


async def test_deduplication_and_validators_survive_a_restart(
    news_server: LegendServer, feeds: FeedServer
) -> None:
    await settled(news_server, 3)
    refresh(news_server)  # whatever the other tests did, everything is seen now
    before = len(feeds.requests)
    news_server.stop()
    news_server.start()
    wait_for(
        lambda: len([r for r in feeds.requests[before:] if r["path"] == "/wire.rss"]) >= 1, what="a poll"
    )
    after_restart = next(r for r in feeds.requests[before:] if r["path"] == "/wire.rss")
    assert after_restart["status"] == 304  # the ETag was kept in the plugin store
    feeds.files["/wire.rss"].conditional = False  # a server that ignores validators: full body again
    rss_result = refresh(news_server)[0]
    assert (
        rss_result["status"] == "updated" and rss_result["new_items"] == 0 and rss_result["duplicates"] >= 2
    )
    assert await history(news_server) == []  # in-memory history is gone; nothing was published again
    feeds.files["/wire.rss"].conditional = True


def test_broadcast_needs_the_admin_token_and_valid_fields(news_server: LegendServer) -> None:
    url = f"{news_server.url}/api/news/broadcast"
    assert httpx.post(url, json={"headline": "x"}, timeout=5).status_code == 401
    response = httpx.post(
        url, json={"summary": "no headline", "tickers": ["AAPL", "A$B"]}, headers=ADMIN, timeout=5
    )
    assert response.status_code == 400
    assert {e["key"] for e in response.json()["extra"]} == {"headline"}
    response = httpx.post(url, json={"headline": "h", "tickers": ["AAPL", "A$B"]}, headers=ADMIN, timeout=5)
    assert response.status_code == 400 and response.json()["extra"][0]["key"] == "tickers[1]"


async def test_broadcast_publishes_on_news_and_each_symbol_once(news_server: LegendServer) -> None:
    client = await connect(news_server.ws_url, "desk")
    await client.subscribe("news", "AMZN")
    body = {
        "headline": "Amazon to split stock",
        "tickers": ["amzn", "AMZN"],
        "id": "split-1",
        "url": "https://news.test/amzn",
    }
    response = httpx.post(f"{news_server.url}/api/news/broadcast", json=body, headers=ADMIN, timeout=5)
    assert response.status_code == 200, response.text
    published = response.json()
    assert published["status"] == "published" and published["id"] == digest("split-1")
    assert [s["channel"] for s in published["streams"]] == ["news", "news:AMZN"]
    assert published["streams"][1]["recipients"] == 1
    got = await client.expect("news")
    assert got["channel"] == "news:AMZN" and got["source"] == "admin" and got["tickers"] == ["AMZN"]
    again = httpx.post(f"{news_server.url}/api/news/broadcast", json=body, headers=ADMIN, timeout=5)
    assert again.status_code == 409
    await client.close()
