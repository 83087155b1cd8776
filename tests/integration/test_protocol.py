"""The seed's message protocol over a real uvicorn server and real WebSocket clients, field by field."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from tests.support.server import LegendServer
from tests.support.wsclient import connect

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def is_iso(value: object) -> bool:
    return (
        isinstance(value, str) and ISO.match(value) is not None and datetime.fromisoformat(value) is not None
    )


def fields(message: dict[str, object]) -> set[str]:
    return {key for key in message if not key.startswith("_")}


async def test_connection_ack_has_server_assigned_id(server: LegendServer) -> None:
    first = await connect(server.ws_url + "?connection_id=evil&", user_id="user123")
    second_raw = await connect(server.ws_url, user_id="user123")
    ack = first.received[0]
    assert fields(ack) >= {"type", "status", "connection_id", "timestamp"}
    assert ack["type"] == "connection" and ack["status"] == "connected"
    assert re.fullmatch(r"user123_[0-9a-f]{12}", ack["connection_id"])
    assert ack["user_id"] == "user123"
    assert is_iso(ack["timestamp"])
    assert second_raw.received[0]["connection_id"] != ack["connection_id"]
    await first.close()
    await second_raw.close()


async def test_subscribe_ticker_confirmation_and_history(server: LegendServer) -> None:
    client = await connect(server.ws_url)
    ack, histories = await client.subscribe("ticker", "aapl")
    assert ack["type"] == "subscription"
    assert ack["action"] == "subscribed"
    assert ack["ticker"] == "AAPL"  # normalised
    assert ack["channel"] == "ticker" and ack["streams"] == ["ticker:AAPL"]
    assert is_iso(ack["timestamp"])
    (history,) = histories
    assert (
        history["type"] == "history" and history["ticker"] == "AAPL" and history["channel"] == "ticker:AAPL"
    )
    assert isinstance(history["messages"], list) and is_iso(history["timestamp"])
    assert "recovered" not in history  # only when resuming with since
    await client.close()


async def test_price_update_shape(server: LegendServer, admin: httpx.Client) -> None:
    client = await connect(server.ws_url)
    await client.subscribe("ticker", "MSFT")
    await client.expect("price_update")  # the quote poller's first price for a newly watched ticker
    body = {
        "ticker": "MSFT",
        "price": 150.25,
        "change": 2.50,
        "change_percent": 1.69,
        "volume": 75000000,
        "high": 151.00,
        "low": 148.50,
        "open_price": 149.00,
    }
    reply = admin.post("/api/ws/broadcast/price", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["channel"] == "ticker:MSFT" and reply.json()["recipients"] == 1
    message = await client.expect(lambda m: m["type"] == "price_update" and m["price"] == 150.25)
    assert fields(message) >= {
        "type", "ticker", "price", "change", "change_percent", "volume", "high", "low", "open", "timestamp",
        "channel", "seq",
    }  # fmt: skip
    assert message["ticker"] == "MSFT"
    assert message["change"] == 2.5 and message["change_percent"] == 1.69
    assert message["volume"] == 75000000 and message["high"] == 151.0 and message["low"] == 148.5
    assert message["open"] == 149.0 and "open_price" not in message
    assert message["channel"] == "ticker:MSFT" and message["seq"] == reply.json()["seq"]
    assert is_iso(message["timestamp"])
    await client.close()


async def test_pattern_alert_shape(server: LegendServer, admin: httpx.Client) -> None:
    client = await connect(server.ws_url)
    await client.subscribe("patterns")
    body = {
        "ticker": "AAPL",
        "pattern_type": "VCP",
        "score": 8.5,
        "entry_price": 150.50,
        "stop_price": 145.00,
        "target_price": 165.00,
        "message": "VCP pattern detected with high score",
    }
    assert admin.post("/api/ws/broadcast/pattern", json=body).status_code == 200
    message = await client.expect("pattern_alert")
    assert fields(message) >= {
        "type", "ticker", "pattern_type", "score", "entry_price", "stop_price", "target_price",
        "risk_reward_ratio", "message", "timestamp", "channel", "seq",
    }  # fmt: skip
    assert message["risk_reward_ratio"] == 2.64  # (165 - 150.5) / (150.5 - 145), as in the seed
    assert message["message"] == "VCP pattern detected with high score"
    assert message["pattern_type"] == "VCP" and message["score"] == 8.5 and message["channel"] == "patterns"
    await client.close()


async def test_alert_trigger_shape_and_seed_wording(server: LegendServer, admin: httpx.Client) -> None:
    client = await connect(server.ws_url)
    await client.subscribe("alerts")
    body = {"ticker": "AAPL", "alert_type": "breakout", "trigger_price": 150.00, "current_price": 150.25}
    assert admin.post("/api/ws/broadcast/alert", json=body).status_code == 200
    message = await client.expect("alert_trigger")
    assert fields(message) >= {
        "type", "ticker", "alert_type", "trigger_price", "current_price", "message", "timestamp", "channel", "seq"
    }  # fmt: skip
    assert message["message"] == "AAPL breaking out at $150.25 (target: $150.00)"
    assert message["channel"] == "alerts"
    await client.close()


async def test_private_alert_reaches_only_its_owner(server: LegendServer, admin: httpx.Client) -> None:
    alice = await connect(server.ws_url, user_id="alice")
    bob = await connect(server.ws_url, user_id="bob")
    alice_ack, _ = await alice.subscribe("alerts")
    await bob.subscribe("alerts")
    assert alice_ack["streams"] == ["alerts", "alerts:user:alice"]
    private = {
        "ticker": "TSLA",
        "alert_type": "price_above",
        "trigger_price": 200,
        "current_price": 201,
        "user_id": "alice",
    }
    assert admin.post("/api/ws/broadcast/alert", json=private).status_code == 200
    public = {"ticker": "TSLA", "alert_type": "breakdown", "trigger_price": 190, "current_price": 189}
    assert admin.post("/api/ws/broadcast/alert", json=public).status_code == 200
    got_alice = await alice.collect("alert_trigger", 2)
    assert [m["channel"] for m in got_alice] == ["alerts:user:alice", "alerts"]
    got_bob = await bob.collect("alert_trigger", 1)
    assert got_bob[0]["alert_type"] == "breakdown"
    assert not [m for m in await bob.quiet(0.3) if m["type"] == "alert_trigger"]
    await alice.close()
    await bob.close()


async def test_market_status_is_sent_on_subscribe_and_on_broadcast(
    server: LegendServer, admin: httpx.Client
) -> None:
    client = await connect(server.ws_url)
    await client.subscribe("market_status")
    current = await client.expect("market_status")  # sticky: the current status right away
    assert fields(current) >= {"type", "status", "next_open", "next_close", "timestamp"}
    assert current["status"] in ("open", "closed")
    if current["status"] == "open":
        assert current["next_open"] is None and is_iso(current["next_close"])
    else:
        assert current["next_close"] is None and is_iso(current["next_open"])
    reply = admin.post("/api/ws/broadcast/market_status", json={"status": "halted"})
    assert reply.status_code == 200
    halted = await client.expect("market_status")
    assert halted["status"] == "halted" and halted["seq"] == current["seq"] + 1
    await client.close()


async def test_ping_pong(server: LegendServer) -> None:
    client = await connect(server.ws_url)
    await client.send({"type": "ping"})
    pong = await client.expect("pong")
    assert fields(pong) == {"type", "timestamp"} and is_iso(pong["timestamp"])
    await client.close()


async def test_unsubscribe_stops_delivery(server: LegendServer, admin: httpx.Client) -> None:
    client = await connect(server.ws_url)
    await client.subscribe("patterns")
    await client.send({"type": "unsubscribe", "channel": "patterns"})
    ack = await client.expect("subscription")
    assert ack["action"] == "unsubscribed" and ack["channel"] == "patterns"
    body = {
        "ticker": "NVDA",
        "pattern_type": "Cup",
        "score": 7,
        "entry_price": 10,
        "stop_price": 9,
        "target_price": 13,
    }
    assert admin.post("/api/ws/broadcast/pattern", json=body).status_code == 200
    assert not [m for m in await client.quiet(0.3) if m["type"] == "pattern_alert"]
    await client.close()


async def test_stats_have_every_seed_key(server: LegendServer) -> None:
    client = await connect(server.ws_url)
    await client.subscribe("ticker", "AMZN")
    await client.subscribe("patterns")
    stats = server.stats()
    seed_keys = {
        "active_connections": int,
        "ticker_subscriptions": dict,
        "pattern_subscribers": int,
        "alert_subscribers": int,
        "market_status_subscribers": int,
        "total_connections": int,
        "messages_sent": int,
        "messages_received": int,
        "errors": int,
        "uptime": int,
    }
    for key, kind in seed_keys.items():
        assert isinstance(stats[key], kind), key
    assert stats["ticker_subscriptions"].get("AMZN") == 1
    assert stats["active_connections"] >= 1 and stats["pattern_subscribers"] >= 1
    assert stats["messages_received"] >= 2
    await client.close()


async def test_stats_count_the_servers_asyncio_tasks_one_per_websocket(server: LegendServer) -> None:
    async def until(ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        for _ in range(200):  # closes (and their last tasks) of this or an earlier test finish first
            stats = server.stats()
            if ok(stats):
                return stats
            await asyncio.sleep(0.05)
        raise AssertionError(f"never reached: {stats}")

    def quiet(stats: dict[str, Any]) -> bool:
        """No client, and no backfill at work (its retries are tasks of their own): an earlier test of this
        server may have watched a new ticker."""
        backfill = stats["bar_backfill"]
        busy = backfill.get("queued", 0) or backfill.get("in_progress", 0) or backfill.get("retrying", 0)
        return stats["active_connections"] == 0 and not busy

    before = (await until(quiet))["asyncio_tasks"]
    clients = [await connect(server.ws_url, user_id=f"tasks{i}") for i in range(3)]
    for client in clients:
        await client.subscribe("patterns")
    assert server.stats()["asyncio_tasks"] >= before + 3
    for client in clients:
        await client.close()
    await until(lambda s: s["active_connections"] == 0 and s["asyncio_tasks"] <= before)


async def test_a_simulated_tickers_subscription_says_its_prices_are_simulated(server: LegendServer) -> None:
    client = await connect(server.ws_url, user_id="demo")
    hello = client.received[0]
    assert hello["quote_provider"] == "simulated" and hello["simulated_prices"] is True
    ack, _ = await client.subscribe("ticker", "AAPL")
    assert (
        ack["note"] == "Simulated prices: a demo walk from AAPL's close of 31 Oct 2025, moving at all hours"
    )
    ack, _ = await client.subscribe("ticker", "ZZZZZ9")  # accepted, and told that its level is invented
    assert (
        ack["note"] == "Made-up prices: ZZZZZ9 is not a ticker the simulation knows, so its level is invented"
    )
    await client.close()
