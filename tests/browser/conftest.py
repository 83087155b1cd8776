"""The dashboard in a real browser: Playwright drives Debian's Chromium against a real ``legend serve``.

Needs the ``playwright`` Python package and ``/usr/bin/chromium`` (``apt-get install chromium``); Playwright's
own browser downloads are never used. ``scripts/test.sh`` installs both, so without them these tests fail;
``LEGEND_SKIP_BROWSER=1`` turns that into a skip on a developer machine that cannot have Chromium.

Every page is watched for console errors and uncaught exceptions during the whole test. The only
browser messages tolerated are network ones the test itself causes: 404s from REST APIs this server
does not have (the dashboard falls back on them), 401s from the paths a test sends refused tokens to,
400s from the paths a test sends invalid fields to, and failed connections while the test has the server
down.
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.server import LegendServer, merge

try:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, sync_playwright

    HAVE_PLAYWRIGHT = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_PLAYWRIGHT = False

CHROMIUM = os.environ.get("LEGEND_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_TOKEN = "test-admin"
# Fast simulated prices, also when the exchange is closed.
CONFIG: dict[str, dict[str, Any]] = {
    "security": {"admin_token": ADMIN_TOKEN},
    "realtime": {"update_interval": 0.5, "after_hours_interval": 0.5},
}
# REST APIs the dashboard uses that may not exist yet on this server (it degrades when they answer 404): the
# path (its sub-paths too) and the request that tells whether this server has it.
OPTIONAL_APIS = {
    "/api/watchlist": "/api/watchlist",
    "/api/alerts/rules": "/api/alerts/rules",
    "/api/alerts/events": "/api/alerts/events",
}
TIMEOUT_MS = 15_000
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"

# What a page logs when the server is down (refused, reset) or was killed while answering it (a body cut
# short): ignored only within an outage the test made (``DashboardServer.down_at``).
NETWORK_FAILURE = re.compile(
    r"^(WebSocket connection to '.*' failed|Failed to load resource: net::ERR_("
    r"CONNECTION_(REFUSED|RESET)|CONTENT_LENGTH_MISMATCH|INCOMPLETE_CHUNKED_ENCODING|EMPTY_RESPONSE))"
)
NOT_FOUND = "Failed to load resource: the server responded with a status of 404"
UNAUTHORIZED = "Failed to load resource: the server responded with a status of 401"
BAD_REQUEST = "Failed to load resource: the server responded with a status of 400"


def _unavailable(reason: str) -> None:
    if os.environ.get("LEGEND_SKIP_BROWSER") == "1":
        pytest.skip(reason)
    pytest.fail(reason)


def _under(path: str, prefixes: set[str]) -> bool:
    """Whether ``path`` is one of ``prefixes`` or below one."""
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


class DashboardServer(LegendServer):
    """A ``legend serve`` process that remembers when the tests took it down."""

    def __init__(self, extra: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__(merge(CONFIG, extra or {}))
        self.outages: list[list[float]] = []  # [down_at, up_at or inf]
        self.missing_apis: set[str] = set()

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def start(self, timeout: float = 30.0) -> DashboardServer:
        super().start(timeout)
        if self.outages and self.outages[-1][1] == float("inf"):
            self.outages[-1][1] = time.monotonic()
        self.missing_apis = {
            path
            for path, probe in OPTIONAL_APIS.items()
            if httpx.get(self.url + probe, headers={"X-User-Id": "probe"}, timeout=5).status_code == 404
        }
        return self

    def crash(self) -> None:
        """Kill the process without a goodbye: clients see the socket drop."""
        self.outages.append([time.monotonic(), float("inf")])
        self.stop(signal.SIGKILL)

    def down_at(self, instant: float, grace: float = 2.0) -> bool:
        return any(start <= instant <= end + grace for start, end in self.outages)

    def user_api(self, user_id: str) -> httpx.Client:
        """A REST client acting as ``user_id`` (development identity)."""
        return httpx.Client(base_url=self.url, headers={"X-User-Id": user_id}, timeout=5)

    def broadcast(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/api/ws/broadcast/{kind}", json=body, headers=self.admin, timeout=5)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


@dataclass
class PageWatch:
    """Console errors, uncaught exceptions and requests of one page."""

    server: DashboardServer
    missing: set[str] = field(default_factory=set)  # APIs the test pretends are not there
    refused: set[str] = field(default_factory=set)  # paths the test expects to answer 401
    rejected: set[str] = field(default_factory=set)  # paths (and below) the test expects to answer 400
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)  # WebSocket URLs the page opened

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        text = message.text
        url = message.location.get("url", "") if message.location else ""
        if NETWORK_FAILURE.match(text) and self.server.down_at(time.monotonic()):
            return
        if text.startswith(NOT_FOUND) and _under(urlsplit(url).path, self.server.missing_apis | self.missing):
            return
        if text.startswith(UNAUTHORIZED) and urlsplit(url).path in self.refused:
            return
        if text.startswith(BAD_REQUEST) and _under(urlsplit(url).path, self.rejected):
            return
        self.errors.append(f"console.error: {text} ({url})")

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")


# Module scope, not session: while Playwright's sync API is running it owns this thread's event loop, so it
# must be stopped before the asyncio tests of other directories run.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not HAVE_PLAYWRIGHT:
        _unavailable("the playwright package is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def server(browser: Browser) -> Iterator[DashboardServer]:
    srv = DashboardServer().start()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def open_dashboard(browser: Browser, server: DashboardServer) -> Iterator[Callable[..., Page]]:
    """Open the dashboard (in a fresh browser context unless given one) and wait until it is live;
    ``without`` lists REST paths answered 404, as by a server without that API. ``path`` replaces the
    page address (default ``/dashboard?user_id=<random>``), ``live=False`` does not wait for the stream,
    ``refused`` lists paths expected to answer 401, ``rejected`` paths (and below) expected to answer 400.

    Every page opened this way is checked for console errors when the test ends.
    """
    contexts = []
    watches: list[PageWatch] = []

    def open_page(
        user_id: str | None = None,
        viewport: dict[str, int] | None = None,
        color_scheme: str = "light",
        timezone: str = "America/New_York",
        context: BrowserContext | None = None,
        without: tuple[str, ...] = (),
        path: str | None = None,
        live: bool = True,
        refused: tuple[str, ...] = (),
        rejected: tuple[str, ...] = (),
    ) -> Page:
        if context is None:  # a new browser profile: empty localStorage
            context = browser.new_context(
                viewport=viewport or {"width": 1280, "height": 800},  # type: ignore[arg-type]
                color_scheme=color_scheme,  # type: ignore[arg-type]
                locale="en-US",
                timezone_id=timezone,
            )
            context.set_default_timeout(TIMEOUT_MS)
            contexts.append(context)
        page = context.new_page()
        watch = PageWatch(server, set(without), set(refused), set(rejected))
        for api in without:  # play a server that lacks this API
            page.route(f"**{api}**", lambda route: route.fulfill(status=404, json={"status_code": 404}))
        watches.append(watch)
        page.on("console", watch.on_console)
        page.on("pageerror", watch.on_page_error)
        page.on("request", lambda request: watch.requests.append(request.url))
        page.on("websocket", lambda socket: watch.sockets.append(socket.url))
        page.goto(server.url + (path or f"/dashboard?user_id={user_id or 'u' + uuid.uuid4().hex[:10]}"))
        if live:
            page.wait_for_function(
                "document.querySelector('#connection-status .conn-label').textContent === 'Live'"
            )
        page.watch = watch  # type: ignore[attr-defined]
        return page

    yield open_page
    for context in contexts:
        context.close()
    errors = [e for w in watches for e in w.errors]
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)


@pytest.fixture(scope="module")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
