"""Per-message deflate as Chromium negotiates it: the server's answer (no context takeover on either side,
a 4 KiB server window) is accepted, and the compressed frames, made once per message and the same bytes
for every connection, are decoded by the browser. tests/integration/test_deflate.py checks the bytes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

if os.environ.get("LEGEND_REQUIRE_BROWSER") != "1":
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import Browser

if TYPE_CHECKING:
    from tests.browser.conftest import DashboardServer

# Opens a socket and subscribes to pattern alerts; ``window.result`` holds the negotiated extensions and
# the texts received once one carrying the expected alert message has arrived.
LISTEN = """([user, expected]) => {
    const ws = new WebSocket(`ws://${location.host}/api/ws?user_id=${user}`);
    const texts = [];
    ws.onmessage = (event) => {
        texts.push(event.data);
        const message = JSON.parse(event.data);
        if (message.type === "connection") {
            ws.send(JSON.stringify({type: "subscribe", channel: "patterns"}));
        }
        if (message.type === "history") { window.subscribed = true; }
        if (message.type === "pattern_alert" && message.message === expected) {
            window.result = {extensions: ws.extensions, texts};
            ws.close();
        }
    };
}"""


def test_chromium_negotiates_deflate_and_decodes_the_shared_frames(
    browser: Browser, server: DashboardServer
) -> None:
    context = browser.new_context()
    try:
        pages = [context.new_page() for _ in range(3)]
        for page in pages:
            page.goto(f"{server.url}/health")
        expected = "VCP breakout " + "on rising volume " * 20  # a message of about 600 bytes
        for i, page in enumerate(pages):
            page.evaluate(LISTEN, [f"deflate{i}", expected])
        for page in pages:
            page.wait_for_function("() => window.subscribed === true", timeout=10_000)
        server.broadcast(
            "pattern",
            {
                "ticker": "AAPL",
                "pattern_type": "VCP",
                "score": 8.5,
                "entry_price": 150.5,
                "stop_price": 145,
                "target_price": 165,
                "message": expected,
            },
        )
        results: list[dict[str, Any]] = []
        for page in pages:
            page.wait_for_function("() => window.result !== undefined", timeout=10_000)
            results.append(page.evaluate("() => window.result"))
    finally:
        context.close()
    for result in results:
        assert result["extensions"] == (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=12; client_max_window_bits=12"
        )
        alerts = [text for text in result["texts"] if '"type":"pattern_alert"' in text]
        assert len(alerts) == 1 and expected in alerts[0]
    assert len({r["texts"][-1] for r in results}) == 1  # the same text, decoded from the same bytes
