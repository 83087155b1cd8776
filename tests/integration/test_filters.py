"""Subscription filters on a real ``legend serve`` over real WebSockets (docs/protocol.md, Filters): only
what matches reaches the socket, what does not costs the connection no budget, history and resume apply the
filter, two subscribes are the ``or`` of both, a watchlist filter follows the watchlist as it changes, and a
bad filter gets an error naming the part refused."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest

from tests.support.server import LegendServer, pattern_body
from tests.support.wsclient import Client, connect

VCP_8 = {"pattern_type": {"in": ["VCP"]}, "score": {"gte": 8}}


def pattern(message: str, ticker: str = "AAPL", score: float = 8.5, kind: str = "VCP") -> dict[str, object]:
    return {**pattern_body(message, ticker=ticker, score=score), "pattern_type": kind}


async def publish(http: httpx.AsyncClient, *bodies: dict[str, object]) -> list[int]:
    seqs = []
    for body in bodies:
        reply = await http.post("/api/ws/broadcast/pattern", json=body)
        assert reply.status_code == 200, reply.text
        seqs.append(reply.json()["seq"])
    return seqs


async def until(client: Client, message: str, timeout: float = 10) -> list[dict[str, Any]]:
    """The pattern alerts received up to and including the one whose message is ``message``."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not got or got[-1]["message"] != message:
        got.append(await client.expect("pattern_alert", timeout=max(deadline - time.monotonic(), 0.01)))
    return got


def filtered_total(server: LegendServer) -> float:
    text = httpx.get(f"{server.url}/metrics", headers=server.admin, timeout=10).text
    found = re.search(r"^legend_messages_filtered_total (\S+)$", text, re.M)
    assert found, "legend_messages_filtered_total is exported"
    return float(found.group(1))


@pytest.fixture
async def http(server: LegendServer) -> Any:
    async with httpx.AsyncClient(base_url=server.url, headers=server.admin, timeout=10) as client:
        yield client


async def test_only_matches_reach_the_socket_and_the_reply_echoes_the_filter(
    server: LegendServer, http: httpx.AsyncClient
) -> None:
    client = await connect(server.ws_url, user_id="filtered")
    plain = await connect(server.ws_url, user_id="plain")
    ack, _ = await client.subscribe("patterns", filter=VCP_8)
    assert ack["filter"] == VCP_8 and ack["streams"] == ["patterns"]
    plain_ack, _ = await plain.subscribe("patterns")
    assert "filter" not in plain_ack
    before = filtered_total(server)
    await publish(
        http,
        pattern("vcp 9", score=9),
        pattern("vcp 7", score=7),  # score too low
        pattern("flag 9", score=9, kind="Flag"),  # wrong type
        pattern("vcp 8 msft", ticker="MSFT", score=8),
        pattern("end", score=8.0),
    )
    got = await until(client, "end")
    assert [m["message"] for m in got] == ["vcp 9", "vcp 8 msft", "end"]
    assert [m["message"] for m in await until(plain, "end")] == [
        "vcp 9",
        "vcp 7",
        "flag 9",
        "vcp 8 msft",
        "end",
    ]
    seqs = [m["seq"] for m in got]
    assert seqs == sorted(seqs) and seqs[1] - seqs[0] == 3  # gaps where messages did not match
    assert filtered_total(server) - before == 2
    await client.close()
    await plain.close()


# one connection per operator, all fed the same three patterns (and a marker every filter lets through)
EVERY_OP = {
    "eq": ({"pattern_type": {"eq": "Flag"}}, ["flag 6"]),
    "ne": ({"pattern_type": {"ne": "Flag"}}, ["vcp 9", "cup 7"]),
    "in": ({"ticker": {"in": ["OPA", "OPC"]}}, ["vcp 9", "cup 7"]),
    "not_in": ({"ticker": {"not_in": ["OPA", "OPC"]}}, ["flag 6"]),
    "gt": ({"score": {"gt": 7}}, ["vcp 9"]),
    "gte": ({"score": {"gte": 7}}, ["vcp 9", "cup 7"]),
    "lt": ({"score": {"lt": 7}}, ["flag 6"]),
    "lte": ({"score": {"lte": 7}}, ["flag 6", "cup 7"]),
    "exists": ({"pattern_type": {"exists": True}, "ticker": {"ne": "none"}}, ["vcp 9", "flag 6", "cup 7"]),
    "and": ({"and": [{"score": {"gte": 6}}, {"ticker": {"eq": "OPB"}}]}, ["flag 6"]),
    "or": ({"or": [{"score": {"gt": 8}}, {"ticker": {"eq": "OPB"}}]}, ["vcp 9", "flag 6"]),
    "not": ({"not": {"score": {"gt": 8}}}, ["flag 6", "cup 7"]),
}


async def test_every_operator_end_to_end(server: LegendServer, http: httpx.AsyncClient) -> None:
    clients = {}
    for op, (spec, _) in EVERY_OP.items():
        clients[op] = await connect(server.ws_url, user_id=f"op-{op}")
        await clients[op].subscribe("patterns", filter={"or": [spec, {"message": {"eq": "ops end"}}]})
    await publish(
        http,
        pattern("vcp 9", ticker="OPA", score=9),
        pattern("flag 6", ticker="OPB", score=6, kind="Flag"),
        pattern("cup 7", ticker="OPC", score=7, kind="Cup"),
        pattern("ops end", ticker="OPZ", score=1),
    )
    for op, (_, expected) in EVERY_OP.items():
        got = [m["message"] for m in await until(clients[op], "ops end")]
        assert got == [*expected, "ops end"], op
        await clients[op].close()


async def test_what_does_not_match_costs_no_budget(server: LegendServer, http: httpx.AsyncClient) -> None:
    """60 non-matching messages, then 10 matching ones: at the budget of 10 a second, 70 counted messages
    would take 6 s or more to send; the 10 that match go at once."""
    client = await connect(server.ws_url, user_id="budget")
    await client.subscribe("patterns", filter={"ticker": {"eq": "WANT"}})
    await publish(http, *(pattern(f"no {i}", ticker="SKIP") for i in range(60)))
    started = time.monotonic()
    await publish(http, *(pattern(f"yes {i}", ticker="WANT") for i in range(10)))
    got = await until(client, "yes 9")
    assert [m["message"] for m in got] == [f"yes {i}" for i in range(10)]
    assert got[-1]["_at"] - started < 3.0, "the non-matching messages were counted against the budget"
    assert not await client.quiet(0.3)
    await client.close()


async def test_history_and_resume_apply_the_filter(server: LegendServer, http: httpx.AsyncClient) -> None:
    seqs = await publish(
        http,
        pattern("h1 keep", ticker="HIST"),
        pattern("h2 drop", ticker="HIST", score=1),
        pattern("h3 keep", ticker="HIST"),
    )
    client = await connect(server.ws_url, user_id="history")
    wanted = {"ticker": {"eq": "HIST"}, "score": {"gte": 5}}
    _, [history] = await client.subscribe("patterns", filter=wanted)
    assert [m["message"] for m in history["messages"]][-2:] == ["h1 keep", "h3 keep"]
    assert all(m["ticker"] == "HIST" and m["score"] >= 5 for m in history["messages"])
    assert history["seq"] >= seqs[-1]  # the stream's position, matched or not: resume from it is exact
    await client.close()
    # resume from before h2: only what matches since then, and recovered (nothing that matched was lost)
    await publish(http, pattern("h4 drop", ticker="HIST", score=2), pattern("h5 keep", ticker="HIST"))
    again = await connect(server.ws_url, user_id="history")
    _, [resumed] = await again.subscribe("patterns", filter=wanted, since=seqs[0])
    assert [m["message"] for m in resumed["messages"]] == ["h3 keep", "h5 keep"]
    assert resumed["recovered"] is True
    await again.close()


async def test_two_subscribes_are_the_or_of_both_and_unsubscribe_removes_it(
    server: LegendServer, http: httpx.AsyncClient
) -> None:
    client = await connect(server.ws_url, user_id="both")
    await client.subscribe("patterns", filter={"ticker": {"eq": "ONE"}})
    ack, _ = await client.subscribe("patterns", filter={"ticker": {"eq": "TWO"}})
    assert ack["filter"] == {"or": [{"ticker": {"eq": "ONE"}}, {"ticker": {"eq": "TWO"}}]}
    await publish(
        http, pattern("one", ticker="ONE"), pattern("three", ticker="THREE"), pattern("two", ticker="TWO")
    )
    assert [m["message"] for m in await until(client, "two")] == ["one", "two"]
    await client.send({"type": "unsubscribe", "channel": "patterns"})
    assert (await client.expect("subscription"))["action"] == "unsubscribed"
    await publish(http, pattern("gone", ticker="ONE"))
    assert not [m for m in await client.quiet(0.5) if m["type"] == "pattern_alert"]
    # subscribed again without a filter: everything, and a later filter does not narrow it
    await client.subscribe("patterns")
    ack, _ = await client.subscribe("patterns", filter={"ticker": {"eq": "ONE"}})
    assert "filter" not in ack
    await publish(http, pattern("any", ticker="ANY"))
    assert [m["message"] for m in await until(client, "any")] == ["any"]
    await client.close()


async def test_a_watchlist_filter_follows_the_watchlist(
    server: LegendServer, http: httpx.AsyncClient
) -> None:
    user = {"X-User-Id": "watcher"}
    async with httpx.AsyncClient(base_url=server.url, headers=user, timeout=10) as mine:
        assert (await mine.post("/api/watchlist", json={"ticker": "aapl"})).status_code in (200, 201)
        client = await connect(server.ws_url, user_id="watcher")
        ack, _ = await client.subscribe("patterns", filter={"ticker": "watchlist"})
        assert ack["filter"] == {"ticker": "watchlist"}
        await publish(http, pattern("msft 1", ticker="MSFT"), pattern("aapl 1", ticker="AAPL"))
        assert [m["message"] for m in await until(client, "aapl 1")] == ["aapl 1"]
        # the watchlist channel tells other tabs; the filter follows it at once
        tab = await connect(server.ws_url, user_id="watcher")
        await tab.subscribe("watchlist")
        assert (await tab.expect("watchlist"))["tickers"] == ["AAPL"]  # the current list, on subscribe
        assert (await mine.post("/api/watchlist", json={"ticker": "MSFT"})).status_code in (200, 201)
        update = await tab.expect("watchlist")
        assert update["tickers"] == ["AAPL", "MSFT"] and update["channel"] == "watchlist:user:watcher"
        await publish(http, pattern("msft 2", ticker="MSFT"))
        assert [m["message"] for m in await until(client, "msft 2")] == ["msft 2"]
        assert (await mine.delete("/api/watchlist/AAPL")).status_code in (200, 204)
        assert (await tab.expect("watchlist"))["tickers"] == ["MSFT"]
        await publish(http, pattern("aapl 2", ticker="AAPL"), pattern("msft 3", ticker="MSFT"))
        assert [m["message"] for m in await until(client, "msft 3")] == ["msft 3"]
        await client.close()
        await tab.close()


@pytest.mark.parametrize(
    ("filter", "says"),
    [
        ({"score": {"near": 8}}, "filter.score.near: unknown operator 'near'"),
        ({"score": 8}, "filter.score: must be a condition object"),
        ([{"score": {"gt": 1}}], "filter: must be a JSON object"),
        ({"or": [{"a": {"eq": 1}}] * 65}, "at most 64"),
        ({"not": {"not": {"not": {"not": {"not": {"not": {"a": {"eq": 1}}}}}}}}, "nested too deeply"),
    ],
)
async def test_a_bad_filter_is_refused_naming_the_part(server: LegendServer, filter: Any, says: str) -> None:
    client = await connect(server.ws_url, user_id="bad")
    await client.send({"type": "subscribe", "channel": "patterns", "filter": filter})
    error = await client.expect("error")
    assert error["code"] == "invalid_filter" and says in error["message"], error
    assert error["channel"] == "patterns" and "ticker" not in error  # which subscribe was refused
    # nothing was subscribed, and the connection goes on
    await client.send({"type": "ping"})
    await client.expect("pong")
    assert not [m for m in client.received if m["type"] == "subscription"]
    await client.close()


async def test_a_filter_on_the_ticker_channel(server: LegendServer) -> None:
    """Any channel whose messages are objects takes one: here the prices of one ticker, above a price."""
    client = await connect(server.ws_url, user_id="prices")
    # above any simulated price (the poller's own first price of FLTR is at most $800)
    await client.subscribe("ticker", "FLTR", filter={"price": {"gt": 50_000}})
    async with httpx.AsyncClient(base_url=server.url, headers=server.admin, timeout=10) as http:
        for price in (40_000.0, 60_000.0):
            await http.post("/api/ws/broadcast/price", json={"ticker": "FLTR", "price": price})
            await asyncio.sleep(0.25)  # one budget slot apart: conflation is not what leaves 40,000 out
    got = [m for m in await client.quiet(1.0) if m["type"] == "price_update"]
    assert [m["price"] for m in got] == [60_000.0]
    await client.close()
