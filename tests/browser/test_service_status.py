"""The dashboard in Chromium says when its server lost Redis (``service_status``), and when it is back.

A real ``legend serve`` on a private ``redis-server`` that the test kills and restarts; the page stays
connected throughout.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

if os.environ.get("LEGEND_REQUIRE_BROWSER") != "1":
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DashboardServer
from tests.browser.test_dashboard import WIDER_THAN_VIEWPORT
from tests.support.redis_server import RedisServer

CONN = "#connection-status"
LABEL = "#connection-status .conn-label"
DEGRADED = "Live (degraded: updates may be delayed)"

OpenDashboard = Callable[..., Page]


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def server(browser: Browser, redis: RedisServer) -> Iterator[DashboardServer]:
    """This module's pages talk to a server on Redis (the conftest's runs on the in-memory backplane)."""
    srv = DashboardServer(
        {
            "redis": {
                "url": redis.url,
                "connect_timeout": 0.5,
                "socket_timeout": 0.5,
                "reconnect_min_delay": 0.05,
                "reconnect_max_delay": 0.5,
                "health_check_interval": 1.0,
            }
        }
    ).start()
    try:
        yield srv
    finally:
        srv.close()


def test_the_connection_indicator_shows_degraded_delivery_while_redis_is_down(
    open_dashboard: OpenDashboard, server: DashboardServer, redis: RedisServer, screenshots: Path
) -> None:
    page = open_dashboard()
    expect(page.locator(CONN)).to_have_attribute("data-state", "open")
    page.fill("#watchlist-input", "svcs")
    page.click("#watchlist-form button[type=submit]")
    page.wait_for_function("realtimeDashboard.ws.getStats().subscriptions.includes('ticker:SVCS')")
    redis.stop()
    expect(page.locator(LABEL)).to_have_text(DEGRADED, timeout=10_000)
    expect(page.locator(CONN)).to_have_attribute("data-state", "degraded")
    title = page.locator(CONN).get_attribute("title") or ""
    assert title.startswith("The server lost its connection to the message backplane"), title
    assert str(redis.port) not in title
    assert page.evaluate("realtimeDashboard.ws.serviceStatus") == "degraded"
    assert page.evaluate("realtimeDashboard.ws.state") == "open"  # still connected
    page.wait_for_timeout(400)  # the indicator's colour transition
    page.screenshot(path=str(screenshots / "dashboard-degraded.png"))

    # a page opened meanwhile (on a phone) is told at once, right after it connects, and the longer
    # label still fits the screen
    late = open_dashboard(live=False, viewport={"width": 360, "height": 740})
    expect(late.locator(LABEL)).to_have_text(DEGRADED, timeout=10_000)
    late.wait_for_timeout(400)
    assert late.evaluate(WIDER_THAN_VIEWPORT) == []
    late.screenshot(path=str(screenshots / "dashboard-degraded-phone.png"))

    redis.start()
    for shown in (page, late):
        expect(shown.locator(LABEL)).to_have_text("Live", timeout=15_000)
        expect(shown.locator(CONN)).to_have_attribute("data-state", "open")
        assert shown.evaluate("realtimeDashboard.ws.serviceStatus") == "ok"
    # live again: a price published now reaches the page without a reload
    server.broadcast("price", {"ticker": "SVCS", "price": 4321.5})
    page.wait_for_function(
        """() => document.querySelector('#price-rows tr[data-ticker="SVCS"] .price')?.textContent
            .replace(/,/g, '').includes('4321.5')"""
    )
