"""What the dashboard tells a new user, in a real browser: that the demo's prices are simulated (the badge,
a ticker's note), times in exchange time with the browser's own on hover, notifications that never cover
the alert rules, and readable statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import DashboardServer
from tests.browser.test_dashboard import ALERT, PATTERN, OpenDashboard, row, wait_for_price

NEW_YORK = ZoneInfo("America/New_York")


def test_a_simulated_server_says_so_and_each_row_shows_the_servers_note(
    open_dashboard: OpenDashboard,
) -> None:
    page = open_dashboard()
    badge = page.locator("#simulated-badge")
    expect(badge).to_be_visible()
    expect(badge).to_have_text("Simulated prices")
    expect(badge).to_have_attribute(
        "title",
        "".join(
            [
                'These prices are a demo, not a market feed (quotes.provider = "simulated"): a random walk per ',
                "ticker that moves at all hours, also while the market is closed. The market status follows the ",
                "real exchange calendar.",
            ]
        ),
    )
    # the market badge is beside it
    market, simulated = page.locator("#market-status").bounding_box(), badge.bounding_box()
    assert market and simulated and abs(market["y"] - simulated["y"]) < 4

    page.evaluate("realtimeDashboard.subscribeTicker('AAPL'); realtimeDashboard.subscribeTicker('ZZZZZ9')")
    wait_for_price(page, "ZZZZZ9")
    note = row(page, "ZZZZZ9").locator(".row-note")
    made_up = "Made-up prices: ZZZZZ9 is not a ticker the simulation knows, so its level is invented"
    expect(note).to_be_visible()
    expect(note).to_have_attribute("title", made_up)  # whole on hover, however narrow the column
    assert made_up.startswith(note.inner_text().rstrip("…")[:20])
    expect(row(page, "AAPL").locator(".row-note")).to_have_attribute(
        "title", "Simulated prices: a demo walk from AAPL's close of 31 Oct 2025, moving at all hours"
    )


def ny_clock(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(NEW_YORK)


def test_activity_and_toast_times_read_in_exchange_time_with_your_time_on_hover(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    page = open_dashboard(timezone="Asia/Tokyo")  # far from New York
    server.broadcast("pattern", PATTERN)
    expect(page.locator(".toast")).to_have_count(1)
    for time in (page.locator("#activity-feed .feed-time").first, page.locator(".toast .toast-time").first):
        at = ny_clock(time.get_attribute("datetime") or "")
        expected = f"{at:%I:%M:%S %p}".lstrip("0") + " ET"
        assert time.inner_text().replace("\u202f", " ") == expected
        title = (time.get_attribute("title") or "").replace("\u202f", " ")
        exchange, yours = title.split("\n")
        assert exchange.startswith("Exchange time: ") and exchange.endswith(f"{at:%Z}"), title
        assert yours.startswith("Your time: ") and yours.endswith("GMT+9"), title


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


@pytest.mark.parametrize(
    "viewport",
    [
        {"width": 1280, "height": 800},
        {"width": 1024, "height": 700},
        {"width": 800, "height": 1000},
        {"width": 390, "height": 844},
    ],
    ids=lambda v: f"{v['width']}x{v['height']}",
)
def test_notifications_never_cover_the_alert_rules(
    open_dashboard: OpenDashboard, server: DashboardServer, viewport: dict[str, int]
) -> None:
    if "/api/alerts/rules" in server.missing_apis:
        pytest.fail("this server has no alert rules API")
    user = f"rules{viewport['width']}"
    with server.user_api(user) as api:
        for threshold in (500.0, 600.0, 700.0):
            api.post(
                "/api/alerts/rules", json={"ticker": "SPY", "kind": "price_above", "threshold": threshold}
            )
    page = open_dashboard(user_id=user, viewport=viewport)
    rules = page.locator("#rule-list .rule")
    expect(rules).to_have_count(3)
    for i in range(4):  # as many as are shown at once
        server.broadcast("pattern", {**PATTERN, "ticker": "SPY", "score": 5 + i})
    server.broadcast("alert", {**ALERT, "ticker": "SPY"})
    expect(page.locator(".toast")).to_have_count(4)
    # wherever the page is scrolled: the top, the rules, the bottom
    for scroll in (
        "window.scrollTo(0, 0)",
        "document.getElementById('rule-list').scrollIntoView({block: 'end'})",
        "window.scrollTo(0, document.body.scrollHeight)",
    ):
        page.evaluate(scroll)
        page.wait_for_timeout(100)
        boxes: dict[str, Any] = page.evaluate(
            """() => ({
                rules: [...document.querySelectorAll('#rule-list .rule, #rule-form')].map(e => e.getBoundingClientRect().toJSON()),
                toasts: [...document.querySelectorAll('.toast')].map(e => e.getBoundingClientRect().toJSON()),
            })"""
        )
        for toast in boxes["toasts"]:
            for rule in boxes["rules"]:
                assert not overlaps(toast, rule), (scroll, toast, rule)
    # and on a wide screen, where they float, they are in view
    if viewport["width"] > 980:
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        for toast in page.locator(".toast").all():
            expect(toast).to_be_in_viewport()


def test_statistics_have_readable_labels_with_the_raw_name_on_hover(open_dashboard: OpenDashboard) -> None:
    page: Page = open_dashboard()
    page.evaluate("realtimeDashboard.toggleStats(true)")
    term = page.locator("#stats-list dt", has_text="Messages received")
    expect(term).to_have_count(1)
    expect(term).to_have_attribute("title", "messagesReceived")
    terms = page.locator("#stats-list dt").all_inner_texts()
    assert "Prices superseded (conflated)" in terms and "conflatedMessages" not in terms
