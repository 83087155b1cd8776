"""The dashboard's pattern settings in a real browser: types, minimum score and "watchlist only" become the
``patterns`` subscription's filter on a real server; the Activity list shows only what matches, the
settings outlive a reload, and "watchlist only" follows a watchlist changed elsewhere."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if os.environ.get("LEGEND_REQUIRE_BROWSER") != "1":
    import pytest

    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from tests.browser.conftest import DashboardServer

OpenDashboard = Callable[..., Page]
PATTERNS = "#activity-feed .feed-pattern"


def pattern(ticker: str, pattern_type: str, score: float) -> dict[str, Any]:
    return {
        "ticker": ticker,
        "pattern_type": pattern_type,
        "score": score,
        "entry_price": 100,
        "stop_price": 95,
        "target_price": 115,
    }


def titles(page: Page, *tickers: str) -> list[str]:
    """The pattern items of the Activity list (of these tickers only, when named), newest first, as their
    titles say ("VCP · AAPL"). The server is the module's: its patterns history holds other tests' too."""
    found = page.locator(f"{PATTERNS} .feed-title").all_text_contents()
    return [t for t in found if not tickers or t.rsplit(" · ", 1)[-1] in tickers]


def open_settings(page: Page) -> None:
    if not page.locator("#pattern-settings").evaluate("d => d.open"):
        page.get_by_text("Pattern settings").click()


def test_pattern_settings_filter_the_activity_list_and_persist(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    user = "pat-" + uuid.uuid4().hex[:8]
    page = open_dashboard(user_id=user)
    expect(page.locator("#pattern-summary")).to_have_text("All patterns")
    open_settings(page)
    settings = page.locator("#pattern-form")
    for known in ("Breakout", "52 week high", "New high", "Gap up", "Gap down", "VCP"):
        expect(settings.get_by_label(known, exact=True)).to_be_visible()  # every box has its label

    # unfiltered: everything comes
    server.broadcast("pattern", pattern("AMZN", "BREAKOUT", 5))
    expect(page.locator(PATTERNS)).to_have_count(1)

    settings.get_by_label("VCP", exact=True).check()
    settings.get_by_label("Minimum score").fill("8")
    settings.get_by_label("Minimum score").press("Enter")
    expect(page.locator("#pattern-summary")).to_have_text("VCP · score ≥ 8")
    expect(page.locator(PATTERNS)).to_have_count(0)  # the BREAKOUT no longer matches: gone
    wanted = {"pattern_type": {"in": ["VCP"]}, "score": {"gte": 8}}
    page.wait_for_function(
        "w => JSON.stringify(realtimeDashboard.ws.getFilter('patterns')) === JSON.stringify(w)", arg=wanted
    )  # the server's echo

    server.broadcast("pattern", pattern("AAPL", "VCP", 9.2))
    server.broadcast("pattern", pattern("MSFT", "VCP", 7.9))  # score too low
    server.broadcast("pattern", pattern("NVDA", "BREAKOUT", 9.5))  # another type
    server.broadcast("pattern", pattern("TSLA", "VCP", 8))  # the bound itself; the last one sent
    expect(page.locator(f"{PATTERNS} .feed-title", has_text="TSLA")).to_have_count(1)
    assert titles(page) == ["VCP · TSLA", "VCP · AAPL"]  # delivered in order: the others were not sent
    assert page.locator(".toast-pattern", has_text="MSFT").count() == 0

    # a reload keeps the settings; the filtered history lists the same two
    page.reload()
    page.wait_for_function("document.querySelector('#connection-status .conn-label').textContent === 'Live'")
    expect(page.locator("#pattern-summary")).to_have_text("VCP · score ≥ 8")
    open_settings(page)
    expect(page.get_by_label("VCP", exact=True)).to_be_checked()
    expect(page.get_by_label("Breakout", exact=True)).not_to_be_checked()
    expect(page.get_by_label("Minimum score")).to_have_value("8")
    expect(page.locator(PATTERNS)).to_have_count(2)
    assert titles(page) == ["VCP · TSLA", "VCP · AAPL"]


def test_watchlist_only_follows_the_watchlist(open_dashboard: OpenDashboard, server: DashboardServer) -> None:
    user = "wl-" + uuid.uuid4().hex[:8]
    api = server.user_api(user)
    on_list = api.get("/api/watchlist").json()["tickers"]
    if not on_list:
        api.post("/api/watchlist", json={"ticker": "GOOGL"}).raise_for_status()
        on_list = ["GOOGL"]
    mine = next((t for t in on_list if t in ("GOOGL", "META", "SPY")), on_list[0])  # no other test's
    other = next(t for t in ("IBM", "AMD", "ORCL", "INTC") if t not in on_list)
    page = open_dashboard(user_id=user)
    expect(page.locator(f'#price-rows tr[data-ticker="{mine}"]')).to_have_count(1)

    server.broadcast("pattern", pattern(other, "GAP_UP", 6))
    expect(page.locator(f"{PATTERNS} .feed-title", has_text=other)).to_have_count(1)

    open_settings(page)
    page.get_by_label("Watchlist only").check()
    expect(page.locator("#pattern-summary")).to_have_text("watchlist")
    expect(page.locator(f"{PATTERNS} .feed-title", has_text=other)).to_have_count(0)  # not on the list: gone
    page.wait_for_function("realtimeDashboard.ws.getFilter('patterns')?.ticker === 'watchlist'")

    server.broadcast("pattern", pattern(other, "GAP_UP", 6.5))
    server.broadcast("pattern", pattern(mine, "GAP_DOWN", 6))
    expect(page.locator(f"{PATTERNS} .feed-title", has_text=mine)).to_have_count(1)
    assert titles(page, mine, other) == [f"GAP_DOWN · {mine}"]

    # added elsewhere (another tab, the API): this tab shows the row, and its patterns come at once
    api.post("/api/watchlist", json={"ticker": other}).raise_for_status()
    expect(page.locator(f'#price-rows tr[data-ticker="{other}"]')).to_have_count(1)
    server.broadcast("pattern", pattern(other, "NEW_HIGH", 7))
    expect(page.locator(f"{PATTERNS} .feed-title", has_text=other)).to_have_count(1)
    assert titles(page, mine, other) == [f"NEW_HIGH · {other}", f"GAP_DOWN · {mine}"]

    # turned off again: the filtered history brings back what "watchlist only" had kept out
    page.get_by_label("Watchlist only").uncheck()
    expect(page.locator("#pattern-summary")).to_have_text("All patterns")
    expect(page.locator(f"{PATTERNS} .feed-title", has_text="GAP_UP")).to_have_count(2)
