"""One real server with the built-ins, the installed example package (found by its entry point) and
deliberately broken plugins: it starts, the broken ones are shown failed, and the others serve real
WebSocket clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import LegendServer
from tests.support.wsclient import connect

from .helpers import ADMIN, SENTIMENT_HOOKS, plugin_server, wait_for

SAMPLES = "tests.plugins.samples"


MODULES = ("raising", "hanging", "hanging_startup", "echo", "broken_routes", "sleepy_prices")


@pytest.fixture(scope="module")
def release_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Created to let the sleepy_prices callback go (and at the end, in any case)."""
    path = tmp_path_factory.mktemp("sleepy") / "release"
    yield path
    path.touch()


@pytest.fixture(scope="module")
def server(release_file: Path) -> Iterator[LegendServer]:
    srv = plugin_server(
        {
            "plugins": {
                "enabled": ["news", "portfolio", "sentiment", *MODULES],
                "modules": {name: f"{SAMPLES}.{name}" for name in MODULES},
                "hook_timeout": 0.5,
            },
            "plugins.sentiment": {"tickers": ["AAPL", "TSLA"], "interval": 0.1, "premium_users": ["vip"]},
            "plugins.echo": {"invalid": True, "interval": 0.1},
            "plugins.sleepy_prices": {"release_file": str(release_file)},
        }
    ).start()
    try:
        yield srv
    finally:
        srv.close()


def plugins(server: LegendServer) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{server.url}/api/plugins", headers=ADMIN, timeout=5)
    assert response.status_code == 200, response.text
    return {p["name"]: p for p in response.json()["plugins"]}


def test_get_plugins_needs_the_admin_token(server: LegendServer) -> None:
    assert httpx.get(f"{server.url}/api/plugins", timeout=5).status_code == 401
    wrong = httpx.get(f"{server.url}/api/plugins", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401


def test_broken_plugins_are_failed_and_the_server_runs_the_rest(server: LegendServer) -> None:
    found = plugins(server)
    assert {name: p["state"] for name, p in found.items()} == {
        "news": "enabled",
        "portfolio": "enabled",
        "sentiment": "enabled",
        "echo": "enabled",
        "raising": "failed",
        "hanging": "failed",
        "hanging_startup": "failed",
        "broken_routes": "failed",
        "sleepy_prices": "enabled",  # until a price reaches its blocking callback
        "scanner": "disabled",  # installed, not in this server's enabled list
    }
    assert found["raising"]["last_error"] == "register_channels: RuntimeError: boom in register_channels"
    assert found["hanging"]["last_error"] == "register_channels: HookTimeout: did not return within 0.5s"
    assert found["hanging_startup"]["last_error"] == "on_startup: HookTimeout: did not return within 0.5s"
    assert all(found[name]["errors"] == 1 for name in ("raising", "hanging", "hanging_startup"))
    sentiment = found["sentiment"]
    assert sentiment["version"] == "0.1.0" and sentiment["source"] == "entry point (legend-sentiment 0.1.0)"
    assert sentiment["hooks"] == SENTIMENT_HOOKS
    assert sentiment["tables"] == ["sentiment_daily"] and found["portfolio"]["tables"] == [
        "portfolio_positions"
    ]
    assert sentiment["channels"] == ["sentiment"] and sentiment["feeds"]["readings"]["state"] == "running"
    assert found["news"]["routes"] == 1 and found["portfolio"]["channels"] == ["portfolio"]
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200


def test_invalid_messages_of_a_running_plugin_are_counted(server: LegendServer) -> None:
    echo = wait_for(lambda: (p := plugins(server)["echo"])["messages_rejected"] >= 6 and p, what="rejections")
    assert echo["state"] == "enabled" and echo["messages_published"] >= 2
    assert echo["errors"] >= echo["messages_rejected"]


async def test_the_example_plugin_serves_its_channel_end_to_end(server: LegendServer) -> None:
    vip = await connect(server.ws_url, "vip")
    ack, [history] = await vip.subscribe("sentiment", "aapl")
    assert ack["streams"] == ["sentiment:AAPL"] and history["channel"] == "sentiment:AAPL"
    readings = await vip.collect("sentiment", 2, timeout=10)
    for reading in readings:
        assert reading["channel"] == "sentiment:AAPL" and reading["ticker"] == "AAPL"
        assert -1 <= reading["score"] <= 1 and reading["label"] in ("bearish", "neutral", "bullish")
        assert reading["bullish"] + reading["bearish"] == reading["mentions"] and reading["timestamp"]
    assert readings[1]["seq"] > readings[0]["seq"]

    def stored() -> list[dict[str, Any]]:
        response = httpx.get(
            f"{server.url}/api/sentiment/AAPL/daily", headers={"X-User-Id": "vip"}, timeout=5
        )
        assert response.status_code == 200, response.text
        days: list[dict[str, Any]] = response.json()["days"]
        return days

    # the plugin's own table, migrated at start, counts the day's readings
    (today,) = wait_for(stored, what="the day's readings in the plugin's own table")
    assert today["readings"] >= 1 and today["mentions"] == today["bullish"] + today["bearish"]

    other = await connect(server.ws_url, "pleb")
    await other.send({"type": "subscribe", "channel": "sentiment", "ticker": "AAPL"})
    denied = await other.expect("error")
    assert (denied["code"], denied["message"]) == ("not_authorized", "Not authorized for channel 'sentiment'")
    await other.send({"type": "subscribe", "channel": "sentiment"})
    assert (await other.expect("error"))["message"] == "Ticker required for channel 'sentiment'"
    assert not [m for m in await other.quiet(0.3) if m["type"] == "sentiment"]
    await vip.close()
    await other.close()


async def test_the_builtins_still_work_beside_the_broken_plugins(server: LegendServer) -> None:
    client = await connect(server.ws_url, "newsreader")
    await client.subscribe("news", "IBM")
    body = {"headline": "IBM announces results", "tickers": ["IBM"]}
    response = httpx.post(f"{server.url}/api/news/broadcast", json=body, headers=ADMIN, timeout=5)
    assert response.status_code == 200, response.text
    assert (await client.expect("news"))["headline"] == "IBM announces results"
    await client.close()


def test_routes_of_a_failed_plugin_answer_503_with_the_reason(server: LegendServer) -> None:
    response = httpx.get(f"{server.url}/api/broken/hello", timeout=5)
    assert response.status_code == 503
    assert response.json()["detail"] == (
        "plugin broken_routes is failed: register_channels: RuntimeError: channel setup broke"
    )


async def test_a_blocking_price_callback_freezes_nobody(server: LegendServer, release_file: Path) -> None:
    client = await connect(server.ws_url, "trader")
    body = {"ticker": "ZZSL", "price": 10.0, "change": 0.1, "change_percent": 1.0, "volume": 1}
    response = httpx.post(f"{server.url}/api/ws/broadcast/price", json=body, headers=ADMIN, timeout=5)
    assert response.status_code == 200, response.text
    sleepy = wait_for(lambda: (p := plugins(server)["sleepy_prices"])["metrics"].get("blocked_on") and p)
    await client.send({"type": "ping"})
    assert (await client.expect("pong"))["type"] == "pong"  # answered while the callback blocks
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
    sleepy = wait_for(lambda: (p := plugins(server)["sleepy_prices"])["state"] == "failed" and p)
    assert sleepy["last_error"] == "on_price: HookTimeout: did not return within 0.5s"
    assert not release_file.exists()  # all of the above happened while the callback was still blocked
    release_file.touch()
    await client.close()
