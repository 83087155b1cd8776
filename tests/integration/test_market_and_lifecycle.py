"""Market hours through the HTTP API (the real NYSE calendar), settings errors, and graceful shutdown."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
import websockets

from tests.support.server import LegendServer, run_legend
from tests.support.wsclient import connect


@pytest.mark.parametrize(
    ("at", "status", "next_open", "next_close"),
    [
        # Thanksgiving: closed all day, opens the next morning
        ("2026-11-26T15:00:00Z", "closed", "2026-11-27T14:30:00.000Z", None),
        # the day after Thanksgiving closes early, at 13:00 New York
        ("2026-11-27T17:59:00Z", "open", None, "2026-11-27T18:00:00.000Z"),
        ("2026-11-27T18:30:00Z", "closed", "2026-11-30T14:30:00.000Z", None),
        # spring forward (8 March 2026): 09:30 New York is 13:30 UTC from Monday, 14:30 UTC the Friday before
        ("2026-03-06T14:00:00Z", "closed", "2026-03-06T14:30:00.000Z", None),
        ("2026-03-09T13:45:00Z", "open", None, "2026-03-09T20:00:00.000Z"),
        # fall back (1 November 2026): 13:30 UTC opens on the Friday before, 14:30 UTC on Monday
        ("2026-10-30T13:45:00Z", "open", None, "2026-10-30T20:00:00.000Z"),
        ("2026-11-02T14:00:00Z", "closed", "2026-11-02T14:30:00.000Z", None),
        # a weekend
        ("2026-11-28T16:00:00Z", "closed", "2026-11-30T14:30:00.000Z", None),
        # the seed's own example instant
        ("2025-11-18T14:30:00Z", "open", None, "2025-11-18T21:00:00.000Z"),
    ],
)
def test_market_status_endpoint(
    server: LegendServer, at: str, status: str, next_open: str | None, next_close: str | None
) -> None:
    reply = httpx.get(f"{server.url}/api/market/status", params={"at": at})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["type"] == "market_status" and body["status"] == status
    assert body["next_open"] == next_open and body["next_close"] == next_close
    assert body["timestamp"].startswith(at[:19])
    assert body.get("early_close") is (
        True if at.startswith("2026-11-27T17") else None if status == "closed" else False
    )


@pytest.mark.parametrize("at", ["yesterday", "1850-01-01T00:00:00Z"])
def test_market_status_bad_instant(server: LegendServer, at: str) -> None:
    reply = httpx.get(f"{server.url}/api/market/status", params={"at": at})
    assert reply.status_code == 400
    assert reply.json()["extra"][0]["key"] == "at"


def test_market_status_now(server: LegendServer) -> None:
    body = httpx.get(f"{server.url}/api/market/status").json()
    assert body["status"] in ("open", "closed")


def test_dashboard_modules_are_served_as_javascript(server: LegendServer) -> None:
    """Every ES module the dashboard imports, followed from its <script type="module">, is served with a
    JavaScript type (a browser refuses to run a module served as anything else) and readable from other
    origins (module scripts are fetched with CORS)."""
    imports = re.compile(r"^(?:import|export) [^;]*? from '([^']+)';", re.M)
    page = httpx.get(f"{server.url}/dashboard").text
    pending = [
        urljoin(f"{server.url}/dashboard", src)
        for src in re.findall(r'<script type="module" src="([^"]+)"', page)
    ]
    assert pending, "the dashboard loads its code as modules"
    seen: set[str] = set()
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        response = httpx.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"].split(";")[0] == "text/javascript", url
        assert response.headers["access-control-allow-origin"] == "*", url  # pages of other origins too
        pending += [urljoin(url, path) for path in imports.findall(response.text)]
    names = {url.rsplit("/static/js/", 1)[1] for url in seen}
    assert {"websocket-client.js", "client/connection.js", "dashboard/dom.js", "price-chart.js"} <= names, (
        names
    )


def test_health_ready_and_docs(server: LegendServer) -> None:
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/ready")
    assert ready.status_code == 200 and ready.json()["backplane"]["backend"] == "memory"
    for page in ("/docs", "/redoc"):
        html = httpx.get(f"{server.url}{page}", follow_redirects=True)
        assert html.status_code == 200
        assert "cdn" not in html.text and "fonts.googleapis" not in html.text  # works offline
        for asset in re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', html.text):
            assert httpx.get(f"{server.url}{asset}").status_code == 200, asset
    schema = httpx.get(f"{server.url}/docs/openapi.json").json()
    for path in (
        "/api/ws/stats",
        "/api/ws/broadcast/price",
        "/api/ws/broadcast/pattern",
        "/api/ws/broadcast/alert",
    ):
        operations = schema["paths"][path]
        assert all("websocket" in op["tags"] for op in operations.values())
    assert "open_price" in schema["components"]["schemas"]["PriceInput"]["properties"]


def test_bad_settings_file_stops_the_start_with_the_key_path(tmp_path: Path) -> None:
    config = tmp_path / "legend.toml"
    config.write_text("[realtime]\nmax_subscriptions = 'lots'\n")
    result = run_legend("serve", "--config", str(config))
    assert result.returncode == 2
    assert "$.realtime.max_subscriptions" in result.stderr
    config.write_text("[realtime]\nmax_subscribtions = 5\n")
    result = run_legend("serve", "--config", str(config))
    assert result.returncode == 2 and "unknown field `max_subscribtions`" in result.stderr


async def test_graceful_shutdown_sends_1001_and_exits() -> None:
    srv = LegendServer({"server": {"graceful_shutdown_seconds": 3}}).start()
    try:
        clients = [await connect(srv.ws_url, user_id=f"c{i}") for i in range(3)]
        for client in clients:
            await client.subscribe("ticker", "AAPL")
        started = time.monotonic()
        assert srv.process is not None
        srv.process.send_signal(signal.SIGTERM)
        for client in clients:
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await client.recv(timeout=5)
            assert client.connection.close_code == 1001
            assert client.connection.close_reason == "server shutting down; reconnect_after_ms=1000"
        assert srv.process.wait(10) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
        assert time.monotonic() - started < 8
        assert "Traceback" not in srv.logs()
    finally:
        srv.close()
