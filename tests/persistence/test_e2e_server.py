"""End to end over a real server process (``python -m legend serve``) and real WebSocket clients, on SQLite
and PostgreSQL: alice's rule fires once per crossing, only alice receives it, bob receives nothing, the
events API lists it for alice only, and a restart of the server neither repeats nor loses a crossing."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.support.loopback import free_port

ADMIN_TOKEN = "e2e-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 15.0


@asynccontextmanager
async def server(config: Path, log: Path) -> AsyncIterator[str]:
    """Run ``legend serve`` until the block ends; yields its base URL once /health answers."""
    port = free_port()
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "legend", "serve", "--port", str(port), "--config", str(config),
            cwd=ROOT, stdout=output, stderr=output,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client, asyncio.timeout(TIMEOUT):
            while True:  # poll until the server answers (or died: then fail with its log)
                assert process.returncode is None, log.read_text()
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        yield base
    finally:
        if process.returncode is None:
            process.terminate()
        async with asyncio.timeout(TIMEOUT):
            await process.wait()


@asynccontextmanager
async def subscriber(base: str, user: str) -> AsyncIterator[ClientConnection]:
    """A WebSocket client of ``user`` subscribed to ``alerts`` (both its streams' histories received)."""
    url = base.replace("http://", "ws://") + f"/api/ws?user_id={user}"
    async with connect(url) as ws:
        assert (await receive(ws))["type"] == "connection"
        await ws.send(json.dumps({"type": "subscribe", "channel": "alerts"}))
        reply = await receive(ws)
        assert reply["type"] == "subscription" and reply["streams"] == ["alerts", f"alerts:user:{user}"]
        histories = [await receive(ws), await receive(ws)]
        assert [h["type"] for h in histories] == ["history", "history"]
        yield ws


async def receive(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        message: dict[str, Any] = json.loads(await ws.recv())
        return message


async def triggers_until_marker(ws: ClientConnection, marker: str) -> list[dict[str, Any]]:
    """Every alert_trigger received before the platform-wide marker alert ``marker`` (published after
    everything that could have leaked): what this connection got, with no waiting on a timer."""
    got: list[dict[str, Any]] = []
    while True:
        message = await receive(ws)
        if message["type"] != "alert_trigger":
            continue
        if message["ticker"] == marker:
            return got
        got.append(message)


async def evaluated_so_far(http: httpx.AsyncClient) -> int:
    count: int = (await http.get("/api/ws/stats", headers=ADMIN)).json()["alerting"]["prices_evaluated"]
    return count


async def evaluated(http: httpx.AsyncClient, before: int, count: int) -> None:
    """Wait until the server has evaluated ``count`` more prices than ``before`` (evaluation runs beside
    the price stream; the quote poller's own SPX price may be among them, so positive checks also wait
    for the stored event)."""
    async with asyncio.timeout(TIMEOUT):
        while await evaluated_so_far(http) < before + count:
            await asyncio.sleep(0.02)


async def fired(http: httpx.AsyncClient, user: str, alert_id: str) -> None:
    """Wait until ``alert_id`` is stored and published for ``user``."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            events = (await http.get("/api/alerts/events", headers={"X-User-Id": user})).json()["events"]
            if any(e["alert_id"] == alert_id and e["published"] for e in events):
                return
            await asyncio.sleep(0.02)


async def mark(http: httpx.AsyncClient, marker: str) -> None:
    body = {"ticker": marker, "alert_type": "marker", "trigger_price": 1, "current_price": 1}
    assert (await http.post("/api/ws/broadcast/alert", json=body, headers=ADMIN)).status_code == 200


async def prices(http: httpx.AsyncClient, *values: float) -> None:
    for value in values:
        response = await http.post(
            "/api/ws/broadcast/price", json={"ticker": "AAPL", "price": value}, headers=ADMIN
        )
        assert response.status_code == 200, response.text


async def test_alerts_reach_only_their_owner_exactly_once_across_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "legend.toml"
    config.write_text(
        f'[security]\nadmin_token = "{ADMIN_TOKEN}"\n\n[database]\nurl = "{database_url}"\n\n'
        "[realtime]\nupdate_interval = 3600\nafter_hours_interval = 3600\n\n"
        # the replay sample quotes SPX only: no poller price of AAPL can cross a level before the test's
        '[quotes]\nprovider = "replay"\n',
        encoding="utf-8",
    )
    log = tmp_path / "server.log"
    async with server(config, log) as base, httpx.AsyncClient(base_url=base) as http:
        rule = {"ticker": "aapl", "kind": "breakout", "threshold": 150, "rearm": "recross", "session": "any"}
        response = await http.post("/api/alerts/rules", json=rule, headers={"X-User-Id": "alice"})
        assert response.status_code == 201, response.text
        rule_id = response.json()["id"]
        bobs = {"ticker": "AAPL", "kind": "price_above", "threshold": 900, "session": "any"}
        assert (
            await http.post("/api/alerts/rules", json=bobs, headers={"X-User-Id": "bob"})
        ).status_code == 201

        async with subscriber(base, "alice") as alice, subscriber(base, "bob") as bob:
            before = await evaluated_so_far(http)
            await prices(http, 149, 151, 152)  # one crossing, then the condition merely holds
            await evaluated(http, before, 3)
            await fired(http, "alice", f"{rule_id}:1")
            await mark(http, "MARKA")
            [trigger] = await triggers_until_marker(alice, "MARKA")
            assert await triggers_until_marker(bob, "MARKA") == []
        assert {
            k: trigger[k] for k in ("ticker", "alert_type", "trigger_price", "current_price", "message")
        } == {
            "ticker": "AAPL",
            "alert_type": "breakout",
            "trigger_price": 150.0,
            "current_price": 151.0,
            "message": "AAPL breaking out at $151.00 (target: $150.00)",
        }
        assert (trigger["alert_id"], trigger["channel"]) == (f"{rule_id}:1", "alerts:user:alice")

        events = (await http.get("/api/alerts/events", headers={"X-User-Id": "alice"})).json()["events"]
        assert [(e["alert_id"], e["published"]) for e in events] == [(f"{rule_id}:1", True)]
        assert (await http.get("/api/alerts/events", headers={"X-User-Id": "bob"})).json()["events"] == []

    # a new server process on the same database: the crossing it already reported stays reported
    async with server(config, log) as base, httpx.AsyncClient(base_url=base) as http:
        async with subscriber(base, "alice") as alice, subscriber(base, "bob") as bob:
            before = await evaluated_so_far(http)
            await prices(http, 153)  # still past the level: nothing
            await evaluated(http, before, 1)
            await mark(http, "MARKB")
            assert await triggers_until_marker(alice, "MARKB") == []
            assert await triggers_until_marker(bob, "MARKB") == []
            await prices(http, 149, 151.5)  # back below, then a new crossing
            await fired(http, "alice", f"{rule_id}:2")
            await mark(http, "MARKC")
            [again] = await triggers_until_marker(alice, "MARKC")
            assert await triggers_until_marker(bob, "MARKC") == []
        assert (again["alert_id"], again["current_price"]) == (f"{rule_id}:2", 151.5)
        events = (await http.get("/api/alerts/events", headers={"X-User-Id": "alice"})).json()["events"]
        assert [e["alert_id"] for e in events] == [f"{rule_id}:2", f"{rule_id}:1"]
