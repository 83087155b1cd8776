"""Every kind of bad input gets a clear error, and the server keeps serving everyone else."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import ADMIN_TOKEN, LegendServer
from tests.support.wsclient import Client, connect

from .conftest import QUIET


@pytest.fixture(scope="module")
def tight() -> Iterator[LegendServer]:
    with LegendServer(
        {"realtime": {**QUIET["realtime"], "max_subscriptions": 3, "inbound_rate": 5, "inbound_burst": 10}}
    ) as srv:
        yield srv


async def error_for(client: Client, frame: dict[str, object] | str) -> dict[str, object]:
    await client.send(frame)
    return await client.expect("error")


@pytest.mark.parametrize(
    ("frame", "code", "text"),
    [
        ("{not json", "invalid_json", "Invalid JSON"),
        ({"type": "invalid"}, "unknown_type", "Unknown message type: invalid"),
        ({"channel": "patterns"}, "invalid_message", "Missing message type"),
        ("[1, 2]", "invalid_message", "Message must be a JSON object"),
        ({"type": "subscribe"}, "invalid_message", "Invalid subscribe message"),
        (
            {"type": "subscribe", "channel": 5},
            "invalid_message",
            "Expected `str`, got `int` - at `$.channel`",
        ),
        (
            {"type": "subscribe", "channel": "ticker"},
            "invalid_subscription",
            "Ticker required for channel 'ticker'",
        ),
        (
            {"type": "subscribe", "channel": "ticker", "ticker": "AA$PL"},
            "invalid_subscription",
            "Invalid ticker: 'AA$PL'",
        ),
        (
            {"type": "subscribe", "channel": "ticker", "ticker": "A" * 40},
            "invalid_subscription",
            "Invalid ticker",
        ),
        ({"type": "subscribe", "channel": "nope"}, "invalid_subscription", "Unknown channel: nope"),
        (
            {"type": "subscribe", "channel": "patterns", "ticker": "AAPL"},
            "invalid_subscription",
            "takes no ticker",
        ),
        ({"type": "subscribe", "channel": "patterns", "since": "x"}, "invalid_message", "$.since"),
        ({"type": "ping", "pad": "x" * 5000}, "too_large", "Message too large: 50"),
        # 2 KB of nested arrays (found by tests/fuzz): the decoder's RecursionError used to end the
        # connection without an error
        ('{"type":"ping","a":' + "[" * 1000 + "]" * 1000 + "}", "invalid_message", "nested too deeply"),
        # malformed after a field of the wrong type (found by fuzz/frames.py): the second decoder's
        # DecodeError used to end the connection without an error
        ('{"type":5 x', "invalid_json", "Invalid JSON: JSON is malformed"),
        ("[1] x", "invalid_json", "Invalid JSON: JSON is malformed"),
        ('{"type":"subscribe","channel":{},}', "invalid_json", "Invalid JSON: JSON is malformed"),
        ({"type": {"t": ["x" * 100]}}, "unknown_type", "Unknown message type: {'t': ['" + "x" * 32 + "…"),
    ],
)
async def test_bad_frames_get_clear_errors(tight: LegendServer, frame: object, code: str, text: str) -> None:
    client = await connect(tight.ws_url)
    error = await error_for(client, frame if isinstance(frame, str) else json.dumps(frame))
    assert error["code"] == code
    assert text in str(error["message"])
    await client.send({"type": "ping"})  # the connection is still good
    await client.expect("pong")
    await client.close()


async def test_subscription_limit(tight: LegendServer) -> None:
    client = await connect(tight.ws_url)
    for ticker in ("A", "B", "C"):
        await client.subscribe("ticker", ticker)
    error = await error_for(client, {"type": "subscribe", "channel": "ticker", "ticker": "D"})
    assert error["code"] == "subscription_limit"
    assert error["message"] == "Subscription limit reached: at most 3 per connection"
    ack, _ = await client.subscribe("ticker", "A")  # re-subscribing an existing one is fine
    assert ack["ticker"] == "A"
    await client.send({"type": "unsubscribe", "channel": "ticker", "ticker": "B"})
    await client.expect("subscription")
    ack, _ = await client.subscribe("ticker", "D")  # room again
    assert ack["ticker"] == "D"
    await client.close()


async def test_inbound_flood_gets_errors_then_a_close(tight: LegendServer) -> None:
    bystander = await connect(tight.ws_url, user_id="bystander")
    await bystander.subscribe("patterns")
    flooder = await connect(tight.ws_url, user_id="flooder")
    for _ in range(60):
        await flooder.send({"type": "ping"})
    got = []
    try:
        while True:
            got.append(await flooder.recv(timeout=3))
    except Exception:
        pass
    errors = [m for m in got if m.get("type") == "error"]
    assert errors and all(e["code"] == "rate_limited" for e in errors)
    assert errors[0]["message"] == "Rate limit exceeded: at most 5 messages per second"
    assert len([m for m in got if m.get("type") == "pong"]) <= 12
    await flooder.connection.wait_closed()
    assert flooder.connection.close_code == 1008
    assert flooder.connection.close_reason == "inbound rate limit exceeded"
    # everyone else is served as before
    reply = httpx.post(
        f"{tight.url}/api/ws/broadcast/pattern",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        json={
            "ticker": "OK",
            "pattern_type": "VCP",
            "score": 1,
            "entry_price": 2,
            "stop_price": 1,
            "target_price": 4,
        },
    )
    assert reply.status_code == 200
    assert (await bystander.expect("pattern_alert"))["ticker"] == "OK"
    await bystander.close()


# ───────────────────────── REST ─────────────────────────

GOOD_PRICE = {"ticker": "AAPL", "price": 150.25}


@pytest.mark.parametrize(
    ("path", "body", "key"),
    [
        ("price", {"price": 1}, "ticker"),
        ("price", {"ticker": "AAPL", "price": "abc"}, "price"),
        ("price", {"ticker": "AAPL", "price": -1}, "price"),
        ("price", {"ticker": "AA$PL", "price": 1}, "ticker"),
        (
            "price",
            {"ticker": "AAPL", "price": 1, "open": 2},
            "open",
        ),  # unknown field: the seed says open_price
        ("price", {"ticker": "AAPL", "price": 1, "volume": -5}, "volume"),
        ("price", {"ticker": "AAPL", "price": 150, "high": 140}, "must lie between"),
        ("price", {"ticker": "AAPL", "price": 150, "low": 151, "high": 149}, "must not exceed"),
        ("price", {"ticker": "AAPL", "price": 150, "change": 5, "previous_close": 100}, "disagrees"),
        (
            "pattern",
            {
                "ticker": "AAPL",
                "pattern_type": "VCP",
                "score": 1,
                "entry_price": 1,
                "stop_price": 1,
                "target_price": 2,
            },
            None,
        ),
        ("pattern", {"ticker": "AAPL", "pattern_type": "VCP"}, "score"),
        (
            "alert",
            {
                "ticker": "AAPL",
                "alert_type": "breakout",
                "trigger_price": 1,
                "current_price": 1,
                "user_id": "a b",
            },
            "user_id",
        ),
        ("market_status", {"status": "sideways"}, "status"),
        ("market_status", {"status": "open", "next_close": "tomorrow"}, "next_close"),
    ],
)
def test_bad_broadcast_bodies_get_field_level_400(
    server: LegendServer, path: str, body: object, key: str | None
) -> None:
    reply = httpx.post(f"{server.url}/api/ws/broadcast/{path}", headers=server.admin, json=body)
    assert reply.status_code == 400, reply.text
    detail = reply.json()
    assert detail["status_code"] == 400
    if key is not None:
        assert any(key in json.dumps(item) for item in detail.get("extra", [])), detail


@pytest.mark.parametrize(
    ("path", "body", "key"),
    [
        ("price", {"ticker": "AAPL", "price": 1, "open": 2}, "open"),  # unknown
        ("price", {"price": 1}, "ticker"),  # missing
        ("market_status", {"status": "open", "": 1}, ""),
        ("pattern", {"ticker": "AAPL", "pattern_type": "VCP"}, "score"),
    ],
)
def test_a_broadcast_400_names_the_unknown_or_missing_field_in_key(
    server: LegendServer, path: str, body: object, key: str
) -> None:
    """Found by schemathesis (tests/fuzz/test_api_schema.py): these said ``"key": "data"``."""
    reply = httpx.post(f"{server.url}/api/ws/broadcast/{path}", headers=server.admin, json=body)
    assert reply.status_code == 400, reply.text
    assert [item["key"] for item in reply.json()["extra"]] == [key], reply.text


@pytest.mark.parametrize(
    ("position", "key"),
    [
        ({"ticker": "AAPL", "quantity": 1, "average_cost": 1, "bogus": 1}, "positions[0].bogus"),
        ({"ticker": "AAPL"}, "positions[0].quantity"),
    ],
)
def test_a_nested_unknown_or_missing_field_is_named_with_its_path(
    server: LegendServer, position: dict[str, object], key: str
) -> None:
    """Found by schemathesis: the key said only ``positions[0]``, the field was in the message alone."""
    reply = httpx.put(
        f"{server.url}/api/portfolio/positions",
        headers={"X-User-Id": "nested"},
        json={"positions": [position]},
    )
    assert reply.status_code == 400, reply.text
    assert [item["key"] for item in reply.json()["extra"]] == [key], reply.text


def test_malformed_json_body_is_400(server: LegendServer) -> None:
    reply = httpx.post(
        f"{server.url}/api/ws/broadcast/price",
        headers={**server.admin, "Content-Type": "application/json"},
        content=b"{oops",
    )
    assert reply.status_code == 400


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}])
def test_admin_surfaces_need_the_admin_token(server: LegendServer, headers: dict[str, str]) -> None:
    for method, path in [("post", "/api/ws/broadcast/price"), ("get", "/api/ws/stats")]:
        reply = httpx.request(method, f"{server.url}{path}", headers=headers, json=GOOD_PRICE)
        assert reply.status_code == 401
        assert "admin token required" in reply.json()["detail"]


async def test_unicode_lookalike_tickers_are_refused_over_websocket_and_rest(server: LegendServer) -> None:
    client = await connect(server.ws_url, user_id="lookalike")
    for raw in ("ıbm", "ß", "ﬀ", "ſ"):
        await client.send({"type": "subscribe", "channel": "ticker", "ticker": raw})
        error = await client.expect("error")
        assert error["code"] == "invalid_subscription" and "ASCII" in error["message"]
        response = httpx.post(
            f"{server.url}/api/watchlist",
            json={"ticker": raw},
            headers={"X-User-Id": "lookalike"},
            timeout=10,
        )
        assert response.status_code == 400 and "ASCII" in response.text
    stats = server.stats()
    assert not {"IBM", "SS", "FF", "S"} & set(stats["ticker_subscriptions"])
    await client.close()
