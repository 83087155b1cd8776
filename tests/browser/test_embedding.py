"""The JS client on a page of its own, included as docs/protocol.md says: ``<script type="module"
src="/static/js/websocket-client.js">`` defines ``window.WebSocketClient`` by ``DOMContentLoaded``, also
for a page of another origin (module scripts are fetched with CORS)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

from tests.browser.conftest import TIMEOUT_MS, DashboardServer

# A classic inline script that waits for DOMContentLoaded, which module scripts run before.
PAGE = """<!doctype html>
<meta charset="utf-8"><title>A page of its own</title>
<script type="module" src="{client}"></script>
<script>
  window.seen = [];
  document.addEventListener('DOMContentLoaded', () => {{
    const ws = new WebSocketClient({options});
    ws.on('statechange', (e) => window.seen.push(e.state));
    ws.on('connection', (msg) => window.seen.push(msg.type));
    ws.on('connection', (msg) => ws.updateElementIfChanged(document.getElementById('who'), msg.user_id));
    window.embedded = ws;
    if (ws.url.startsWith('ws')) ws.connect();
  }});
</script>
<p id="who"></p>
"""


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


def open_page(
    context: BrowserContext, url: str, client: str, options: dict[str, str]
) -> tuple[Page, list[str]]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))

    def on_console(message: ConsoleMessage) -> None:
        url = message.location.get("url", "")
        if message.type == "error" and not url.endswith("/favicon.ico"):  # /health's page has no icon
            errors.append(f"{message.text} ({url})")

    page.on("console", on_console)
    page.goto(url)  # a page of that origin (served by Legend here: any page will do), then our document
    page.set_content(PAGE.format(client=client, options=json.dumps(options)))
    return page, errors


def test_a_page_of_this_server_gets_the_global_and_streams(
    context: BrowserContext, server: DashboardServer
) -> None:
    user = "embed" + uuid.uuid4().hex[:8]
    page, errors = open_page(
        context, f"{server.url}/health", "/static/js/websocket-client.js", {"userId": user}
    )
    page.wait_for_function("window.seen.includes('connection')")
    assert page.evaluate("window.seen") == ["connecting", "open", "connection"]
    assert page.evaluate("typeof WebSocketClient.computeBackoff") == "function"
    page.wait_for_function(f"document.getElementById('who').textContent === {user!r}")  # the DOM helper too
    assert page.evaluate("embedded.getStats().updatesApplied") == 1
    assert errors == []


def test_a_page_of_another_origin_gets_the_global(context: BrowserContext, server: DashboardServer) -> None:
    # localhost is another origin than 127.0.0.1 (and a loopback name, which development mode requires).
    # It may load the client; opening a socket is up to security.allowed_origins (docs/protocol.md).
    other = server.url.replace("127.0.0.1", "localhost")
    assert other != server.url
    page, errors = open_page(
        context, f"{other}/health", f"{server.url}/static/js/websocket-client.js", {"url": "none"}
    )
    page.wait_for_function("window.embedded !== undefined")
    assert page.evaluate("embedded.state") == "closed"
    assert page.evaluate("typeof WebSocketClient.computeBackoff") == "function"
    assert errors == []
