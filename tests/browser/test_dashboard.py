"""The dashboard page against a real server: live status, prices, notifications, recovery, stats, layout."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

if os.environ.get("LEGEND_REQUIRE_BROWSER") != "1":
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import Browser, Locator, Page, expect

if TYPE_CHECKING:
    from tests.browser.conftest import DashboardServer

LABEL = "#connection-status .conn-label"
TIMEOUT_LIVE = 10_000  # ms: the test server sends a price every half second
ROWS = "#price-rows tr[data-ticker]"

PATTERN = {
    "ticker": "AAPL",
    "pattern_type": "VCP",
    "score": 8.5,
    "entry_price": 150.5,
    "stop_price": 145,
    "target_price": 165,
}
ALERT = {"ticker": "AAPL", "alert_type": "breakout", "trigger_price": 150, "current_price": 150.25}

# realtimeDashboard.ws.getStats() in the spec's "Frontend Statistics" example, with the JSON types
SPEC_STATS = {
    "connected": "boolean",
    "reconnecting": "boolean",
    "reconnectAttempts": "number",
    "messagesReceived": "number",
    "messagesSent": "number",
    "updatesApplied": "number",
    "reconnects": "number",
    "errors": "number",
    "lastMessageTime": "string",
    "subscriptions": "array",
    "queueSize": "number",
    "pendingUpdates": "number",
    "cacheSize": "number",
}

OpenDashboard = Callable[..., Page]

# toasts and activity items have finished sliding in (prices keep flashing: that is what they do)
ANIMATIONS_SETTLED = """() => [...document.querySelectorAll('.toast, .feed-item')]
    .every(e => e.getAnimations({subtree: true}).every(a => a.playState !== 'running'))"""

# elements sticking out of the viewport on the right (nothing when the page cannot scroll sideways)
WIDER_THAN_VIEWPORT = """() => {
    const width = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth <= width) return [];
    return [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > width + 0.5)
        .map(e => `${e.tagName.toLowerCase()}.${e.getAttribute('class')}: ${e.getBoundingClientRect().right}`);
}"""


def clock(at: datetime) -> str:
    """``9:30 AM``, as Intl writes it in en-US."""
    return f"{at:%I:%M %p}".lstrip("0")


def exchange_time(iso: str) -> str:
    """What the market badge shows for an instant: New York time with ``ET``, the weekday when it is not
    the exchange's current day, the date when further than six days away."""
    ny = ZoneInfo("America/New_York")
    when = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ny)
    now = datetime.now(ny)
    text = f"{clock(when)} ET"
    if when.date() == now.date():
        return text
    if abs((when - now).total_seconds()) <= 6 * 86400:
        return f"{when:%a} {text}"
    return f"{when:%b} {when.day}, {text}"


def row(page: Page, ticker: str) -> Locator:
    return page.locator(f'#price-rows tr[data-ticker="{ticker}"]')


def wait_for_price(page: Page, ticker: str, other_than: str = "") -> str:
    """Wait until the row of ``ticker`` shows a price (different from ``other_than``); returns it."""
    page.wait_for_function(
        """([t, old]) => {
            const p = document.querySelector(`#price-rows tr[data-ticker="${t}"] .price`);
            return !!p && p.textContent.trim() !== '' && p.textContent !== old;
        }""",
        arg=[ticker, other_than],
    )
    return row(page, ticker).locator(".price").inner_text()


def subscriptions(page: Page) -> list[str]:
    subs: list[str] = page.evaluate("realtimeDashboard.ws.getStats().subscriptions")
    return subs


def tickers_on_screen(page: Page) -> list[str]:
    shown: list[str] = page.eval_on_selector_all(ROWS, "rows => rows.map(r => r.dataset.ticker)")
    return shown


def add_ticker(page: Page, ticker: str) -> None:
    page.fill("#watchlist-input", ticker.lower())
    page.click("#watchlist-form button[type=submit]")


def test_goes_live_and_loads_nothing_from_elsewhere(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    page = open_dashboard(timezone="Asia/Tokyo")
    expect(page.locator(LABEL)).to_have_text("Live")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")

    # the market status badge comes from the sticky market_status channel; times in the exchange's zone
    # (NYSE: ET), named, whatever the browser's zone; the browser's own time on hover
    market = httpx.get(f"{server.url}/api/market/status", timeout=5).json()
    badge = page.locator("#market-status")
    expect(badge).to_have_attribute("data-status", market["status"])
    upcoming = market["next_close"] if market["status"] == "open" else market["next_open"]
    verb = "closes" if market["status"] == "open" else "opens"
    expect(badge.locator(".market-next")).to_have_text(f"{verb} {exchange_time(upcoming)}")
    local = datetime.fromisoformat(upcoming.replace("Z", "+00:00")).astimezone(ZoneInfo("Asia/Tokyo"))
    title = badge.get_attribute("title") or ""
    assert f"({market['exchange']}): {verb} " in title
    assert f"Your time: {local:%A}, {local:%b} {local.day}, {local.year}, {clock(local)} GMT+9" in title

    subs = subscriptions(page)
    for channel in ("market_status", "patterns", "alerts"):
        assert channel in subs

    # no CDN, no web fonts: every request stays on this server
    origin = urlsplit(server.url).netloc
    requests = page.watch.requests  # type: ignore[attr-defined]
    assert [u for u in requests if not u.startswith("data:") and urlsplit(u).netloc != origin] == []


def test_adding_a_ticker_subscribes_it_and_prices_move(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    page = open_dashboard()
    if "/api/watchlist" in server.missing_apis:
        expect(page.locator("#watchlist-note")).to_contain_text("kept in this browser")
    else:
        expect(page.locator("#watchlist-note")).to_be_hidden()

    add_ticker(page, "amd")
    expect(row(page, "AMD")).to_have_count(1)
    expect(page.locator("#watchlist-input")).to_have_value("")
    page.wait_for_function(
        "realtimeDashboard.ws.getStats().subscriptions.includes('ticker:AMD')", timeout=30_000
    )

    first = wait_for_price(page, "AMD")
    second = wait_for_price(page, "AMD", other_than=first)
    assert second != first
    # the chart is drawn from the stream
    points = row(page, "AMD").locator(".spark-line").get_attribute("points") or ""
    assert len(points.split()) >= 2

    # adding it again never makes a second row; junk is refused with a message
    add_ticker(page, "AMD")
    add_ticker(page, "not a ticker!")
    expect(page.locator("#watchlist-error")).to_contain_text("not a ticker symbol")
    expect(row(page, "AMD")).to_have_count(1)

    # the watchlist survives a reload (server, or this browser when the API is missing)
    page.reload()
    expect(page.locator(LABEL)).to_have_text("Live")
    expect(row(page, "AMD")).to_have_count(1)
    wait_for_price(page, "AMD")

    # removing unsubscribes
    row(page, "AMD").locator("button.remove").click()
    expect(row(page, "AMD")).to_have_count(0)
    page.wait_for_function("!realtimeDashboard.ws.getStats().subscriptions.includes('ticker:AMD')")
    assert len(tickers_on_screen(page)) == len(set(tickers_on_screen(page)))


def test_without_the_watchlist_api_the_list_is_kept_in_this_browser(open_dashboard: OpenDashboard) -> None:
    missing = ("/api/watchlist", "/api/alerts/rules", "/api/alerts/events")
    user = "local-" + uuid.uuid4().hex[:8]
    page = open_dashboard(user_id=user, without=missing)
    expect(page.locator("#watchlist-note")).to_contain_text("kept in this browser")
    expect(page.locator("#rules-note")).to_contain_text("not available")
    expect(page.locator(ROWS)).to_have_count(8)  # a starter list
    add_ticker(page, "AMD")
    wait_for_price(page, "AMD")

    again = open_dashboard(user_id=user, context=page.context, without=missing)
    expect(again.locator(ROWS)).to_have_count(9)
    wait_for_price(again, "AMD")
    assert tickers_on_screen(again) == tickers_on_screen(page)


def test_pattern_alerts_and_alert_triggers_show_notifications(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    page = open_dashboard()
    page.evaluate("realtimeDashboard.subscribeTicker('AAPL')")
    expect(page.locator("#sound-toggle")).to_have_attribute("aria-pressed", "false")  # off by default

    server.broadcast("pattern", PATTERN)
    toast = page.locator(".toast.toast-pattern")
    expect(toast).to_have_count(1)
    expect(toast).to_contain_text("VCP · AAPL")
    expect(toast).to_contain_text("Entry $150.50")
    expect(toast).to_contain_text("R/R 2.64")
    expect(row(page, "AAPL").locator(".pattern-chip")).to_have_text("VCP 8.5")

    # with sound on, a trigger also beeps (WebAudio, no file)
    page.click("#sound-toggle")
    expect(page.locator("#sound-toggle")).to_have_attribute("aria-pressed", "true")
    server.broadcast("alert", ALERT)
    alert = page.locator(".toast.toast-alert")
    expect(alert).to_have_count(1)
    expect(alert).to_contain_text("AAPL")
    expect(alert).to_contain_text("$150.25")
    expect(row(page, "AAPL")).to_have_attribute("data-effect", re.compile("^alert"))
    assert page.evaluate("realtimeDashboard.beeper.ctx !== null")

    feed = page.locator("#activity-feed .feed-item")
    expect(feed).to_have_count(2)
    expect(feed.first).to_contain_text("AAPL")

    # a toast goes away on click
    toast.click()
    expect(page.locator(".toast.toast-pattern")).to_have_count(0)

    # a page opened later gets both from history: in the activity list, marked, without a toast
    later = open_dashboard()
    expect(later.locator("#activity-feed .feed-item .tag")).to_have_count(2)
    expect(later.locator("#activity-feed")).to_contain_text("VCP · AAPL")
    expect(later.locator(".toast")).to_have_count(0)
    expect(later.locator("#sound-toggle")).to_have_attribute("aria-pressed", "false")


def test_alert_rule_form_creates_a_rule_that_fires(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    page = open_dashboard()
    page.evaluate("realtimeDashboard.subscribeTicker('AAPL')")
    page.fill("#rule-ticker", "aapl")
    page.select_option("#rule-kind", "price_above")
    page.select_option(
        "#rule-session", "any"
    )  # a new rule watches the regular session: these tests run at any hour
    page.click("#rule-form button[type=submit]")
    expect(page.locator("#rule-threshold-error")).to_contain_text("Enter the price level")
    expect(page.locator("#rule-threshold")).to_have_attribute("aria-invalid", "true")

    page.fill("#rule-threshold", "1")  # AAPL is above 1: the rule fires on the next price
    page.click("#rule-form button[type=submit]")
    if "/api/alerts/rules" in server.missing_apis:
        expect(page.locator("#rules-note")).to_contain_text("not available")
        return
    expect(page.locator("#rules-error")).to_be_hidden()
    rule = page.locator("#rule-list .rule", has_text="AAPL")
    expect(rule).to_contain_text("Price above $1.00")
    alert = page.locator(".toast.toast-alert")
    expect(alert).to_contain_text("AAPL")
    expect(rule).to_contain_text("fired 1 time")  # the list follows the rule's state

    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        rule.get_by_role("button", name=re.compile("^Delete alert AAPL")).click()
    assert deleted.value.status == 204
    expect(rule).to_have_count(0)
    page.reload()
    expect(page.locator(LABEL)).to_have_text("Live")
    expect(page.locator("#rule-list .rule")).to_have_count(0)


def test_triggers_missed_while_away_are_listed_on_return(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    if "/api/alerts/rules" in server.missing_apis:
        return  # nothing fires without rules
    user = "away-" + uuid.uuid4().hex[:8]
    page = open_dashboard(user_id=user)
    context = page.context
    page.close()  # the trader leaves

    with server.user_api(user) as api:
        api.post(
            "/api/alerts/rules",
            json={"ticker": "AAPL", "kind": "price_above", "threshold": 1, "session": "any"},
        ).raise_for_status()
        watcher = open_dashboard()  # someone else keeps AAPL streaming, so the rule is evaluated
        watcher.evaluate("realtimeDashboard.subscribeTicker('AAPL')")
        watcher.wait_for_function("document.querySelector('#price-rows .price')?.textContent !== ''")
        deadline = time.monotonic() + 10
        while not api.get("/api/alerts/events").json()["events"]:
            assert time.monotonic() < deadline, "the rule did not fire"
            time.sleep(0.1)

    back = open_dashboard(user_id=user, context=context)  # the same browser: it knows when they left
    expect(back.locator("#activity-away")).to_have_text("1 while you were away")
    item = back.locator("#activity-feed .feed-item", has_text="AAPL · Price above")
    expect(item).to_have_count(1)  # from the event list and the stream's history, shown once
    expect(item.locator(".tag")).to_have_text("while away")
    expect(back.locator(".toast")).to_have_count(0)


def test_stats_have_every_field_of_the_spec(open_dashboard: OpenDashboard) -> None:
    page = open_dashboard()
    page.wait_for_function("realtimeDashboard.ws.getStats().lastMessageTime !== null")
    types = page.evaluate(
        "() => { const s = realtimeDashboard.ws.getStats(); const t = {};"
        " for (const k of Object.keys(s)) t[k] = Array.isArray(s[k]) ? 'array' : s[k] === null ? 'null' : typeof s[k];"
        " return t; }"
    )
    assert {k: types.get(k) for k in SPEC_STATS} == SPEC_STATS
    stats = page.evaluate("realtimeDashboard.ws.getStats()")
    assert stats["connected"] is True
    assert stats["reconnecting"] is False

    panel = page.locator("#stats-panel")
    expect(panel).to_be_hidden()
    assert page.evaluate("realtimeDashboard.toggleStats()") is True
    expect(panel).to_be_visible()
    for key in SPEC_STATS:
        expect(panel.locator(f'dd[data-stat="{key}"]')).not_to_have_text("")
    expect(panel.locator('dd[data-stat="connected"]')).to_have_text("true")
    assert page.evaluate("realtimeDashboard.toggleStats()") is False
    expect(panel).to_be_hidden()
    page.click("#stats-toggle")
    expect(panel).to_be_visible()


def test_bounded_lists_and_teardown(open_dashboard: OpenDashboard) -> None:
    """Chart points, notifications and activity items stay bounded however long the page stays open;
    destroy() leaves no handler behind."""
    page = open_dashboard()
    page.evaluate("realtimeDashboard.subscribeTicker('AAPL')")
    sizes = page.evaluate(
        """async () => {
            const d = realtimeDashboard;
            for (let i = 0; i < 500; i++) {
                d.watchlist.onPrice({type: 'price_update', ticker: 'AAPL', price: 100 + (i % 7), change: 1, change_percent: 1,
                            volume: i, high: 110, low: 100, open: 100, timestamp: new Date().toISOString()}, {});
                d.alerts.onPattern({type: 'pattern_alert', ticker: 'AAPL', pattern_type: 'VCP', score: 8, entry_price: 10,
                              stop_price: 9, target_price: 12, timestamp: new Date(Date.now() + i).toISOString()}, {});
            }
            await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
            return {
                points: d.rows.get('AAPL').points.length,
                drawn: document.querySelector('tr[data-ticker="AAPL"] .spark-line').getAttribute('points').split(' ').length,
                toasts: document.querySelectorAll('.toast').length,
                feed: document.querySelectorAll('#activity-feed .feed-item').length,
                cache: d.ws.getStats().cacheSize,
            };
        }"""
    )
    assert sizes["points"] == sizes["drawn"] == 90
    assert sizes["toasts"] <= 4
    assert sizes["feed"] == 50
    assert sizes["cache"] < 200

    page.evaluate("realtimeDashboard.destroy()")
    assert page.evaluate("realtimeDashboard.ws.state") == "closed"
    assert page.evaluate("realtimeDashboard.ws._handlers.size") == 0


def test_server_restart_recovers_without_duplicate_rows(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    page = open_dashboard()
    page.evaluate("realtimeDashboard.subscribeTicker('AAPL')")
    before = wait_for_price(page, "AAPL")
    shown = tickers_on_screen(page)

    server.crash()
    expect(page.locator(LABEL)).not_to_have_text("Live")
    expect(page.locator(LABEL)).to_have_text("Reconnecting…")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "reconnecting")

    server.start()
    expect(page.locator(LABEL)).to_have_text("Live", timeout=20_000)
    wait_for_price(page, "AAPL", other_than=before)  # prices flow again

    assert tickers_on_screen(page) == shown
    subs = subscriptions(page)
    assert len(subs) == len(set(subs))
    stats = page.evaluate("realtimeDashboard.ws.getStats()")
    assert stats["reconnects"] >= 1
    assert stats["connected"] is True


def test_screenshots_desktop_and_phone(
    open_dashboard: OpenDashboard, server: DashboardServer, screenshots: Path
) -> None:
    user = "trader"
    shots: list[Path] = []
    for name, viewport, scheme in [
        ("desktop", {"width": 1280, "height": 800}, "light"),
        ("desktop-dark", {"width": 1280, "height": 800}, "dark"),
        ("phone", {"width": 390, "height": 844}, "light"),
        ("phone-dark", {"width": 390, "height": 844}, "dark"),
    ]:
        page = open_dashboard(user_id=user, viewport=viewport, color_scheme=scheme)
        page.wait_for_function("realtimeDashboard.watchlistMode !== 'loading'")
        if not tickers_on_screen(page):  # a server-side watchlist starts empty
            for ticker in ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "SPY"):
                page.evaluate("t => realtimeDashboard.addToWatchlist(t)", ticker)
        # every row has a price and a chart with some history
        page.wait_for_function(
            """() => { const rows = [...document.querySelectorAll('#price-rows tr[data-ticker]')];
                return rows.length > 0 && rows.every(r => r.querySelector('.price').textContent !== ''
                    && r.querySelector('.spark-line').getAttribute('points').split(' ').length >= 6); }"""
        )
        expect(page.locator("#simulated-badge")).to_be_visible()  # the demo says its prices are simulated
        expect(page.locator("#price-rows .row-note").first).to_be_visible()
        if name == "desktop":
            # a rule, a pattern and a trigger at the levels the simulation shows now (no invented prices)
            price = {
                t: float(row(page, t).locator(".price").inner_text().replace(",", ""))
                for t in ("AAPL", "NVDA", "MSFT")
            }
            if page.locator("#rule-list .rule").count() == 0:
                created = page.evaluate(
                    "r => realtimeDashboard.createAlertRule(r)",
                    {"ticker": "AAPL", "kind": "price_above", "threshold": round(price["AAPL"] * 1.02)},
                )
                assert created["ok"], created
            nvda = price["NVDA"]
            server.broadcast(
                "pattern",
                {
                    **PATTERN,
                    "ticker": "NVDA",
                    "pattern_type": "Flat Base",
                    "entry_price": round(nvda * 1.01, 2),
                    "stop_price": round(nvda * 0.96, 2),
                    "target_price": round(nvda * 1.12, 2),
                },
            )
            msft = price["MSFT"]
            server.broadcast(
                "alert",
                {**ALERT, "ticker": "MSFT", "trigger_price": round(msft - 0.5), "current_price": msft},
            )
            expect(page.locator(".toast")).to_have_count(2)
        page.wait_for_function(ANIMATIONS_SETTLED)
        # no horizontal scrolling, at any width
        assert page.evaluate(WIDER_THAN_VIEWPORT) == [], name
        path = screenshots / f"dashboard-{name}.png"
        page.screenshot(path=str(path))
        shots.append(path)
        # the price chart of the first row, on top of it
        page.locator("#price-rows tr[data-ticker] button.sym").first.click()
        page.wait_for_function("realtimeDashboard.chart?.series?.data().length >= 6")
        page.wait_for_timeout(300)  # the chart paints on its next frame
        assert page.evaluate(WIDER_THAN_VIEWPORT) == [], name + " chart"
        path = screenshots / f"dashboard-{name}-chart.png"
        page.screenshot(path=str(path))
        shots.append(path)
        page.context.close()
    assert all(p.stat().st_size > 10_000 for p in shots)
    # The README's docs/img/dashboard.png and dashboard-chart.png are committed copies of
    # artifacts/screenshots/dashboard-desktop.png and dashboard-desktop-chart.png, made by
    # scripts/screenshots.sh (which runs this test); a test never rewrites tracked files.


def chart_state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(
        """() => {
            const d = realtimeDashboard;
            const row = d.rows.get(d.chartTicker);
            const series = d.chart && d.chart.series;
            return {
                open: document.getElementById('chart-dialog').open,
                ticker: d.chartTicker,
                type: series ? series.seriesType() : null,
                data: series ? series.data().map(p => ({...p})) : [],
                times: row ? row.times.slice() : [],
                prices: row ? row.prices.slice() : [],
                price: document.querySelector('#chart-dialog .chart-price').textContent,
            };
        }"""
    )
    return state


def test_clicking_a_ticker_opens_its_chart_from_history_then_live(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    # someone watches AAPL for a while: the stream's history fills
    watcher = open_dashboard()
    watcher.evaluate("realtimeDashboard.subscribeTicker('AAPL')")
    watcher.wait_for_function("realtimeDashboard.rows.get('AAPL').times.length >= 6")

    # far from New York: the chart still reads in ET; a server without bars (GET /api/bars 404): the chart
    # draws the prices the page has (tests/browser/test_chart_bars.py: the chart on the server's bars)
    page = open_dashboard(timezone="Asia/Tokyo", without=("/api/bars",))
    page.evaluate("realtimeDashboard.subscribeTicker('AAPL')")
    wait_for_price(page, "AAPL")
    # the history reply alone gave this page several prices
    assert page.evaluate("realtimeDashboard.rows.get('AAPL').times.length") >= 5
    assert page.evaluate("typeof LightweightCharts") == "undefined"  # loaded on first use only

    row(page, "AAPL").locator("button.sym").click()
    dialog = page.locator("#chart-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".chart-ticker")).to_have_text("AAPL")
    expect(dialog.locator("#chart-canvas canvas").first).to_be_visible()
    page.wait_for_function("realtimeDashboard.chart?.series?.data().length >= 5")
    state = chart_state(page)
    assert state["type"] == "Area" and state["ticker"] == "AAPL"
    # one point per kept price, in New York wall-clock seconds
    shifted = page.evaluate(
        "ts => ts.map(t => PriceChart.zonedSeconds(t, 'America/New_York'))", state["times"]
    )
    assert [p["time"] for p in state["data"]] == shifted
    assert [p["value"] for p in state["data"]] == state["prices"]
    ny_now = datetime.now(ZoneInfo("America/New_York")).replace(tzinfo=UTC).timestamp()
    assert abs(state["data"][-1]["time"] - ny_now) < 60
    label = page.evaluate(
        "t => realtimeDashboard.chart.chart.options().localization.timeFormatter(t)",
        state["data"][-1]["time"],
    )
    # exchange time first, then this browser's own (Tokyo), each named
    assert re.fullmatch(r".+ ET · \d{1,2}:\d\d\s?[AP]M GMT\+9", label), label

    # live: new prices extend the chart, and the header follows the row
    count = len(state["data"])
    page.wait_for_function(
        "n => realtimeDashboard.chart.series.data().length > n", arg=count, timeout=TIMEOUT_LIVE
    )
    state = chart_state(page)
    assert state["data"][-1]["value"] == state["prices"][-1]
    expect(dialog.locator(".chart-price")).to_have_text(row(page, "AAPL").locator(".price").inner_text())

    # candles from the same prices: each one's open and close within its high and low
    dialog.locator('button[data-kind="candles"]').click()
    expect(dialog.locator('button[data-kind="candles"]')).to_have_attribute("aria-pressed", "true")
    state = chart_state(page)
    assert state["type"] == "Candlestick" and state["data"]
    for candle in state["data"]:
        assert (
            candle["low"]
            <= min(candle["open"], candle["close"])
            <= max(candle["open"], candle["close"])
            <= candle["high"]
        )
    assert state["data"][-1]["close"] == state["prices"][-1]
    expect(page.locator("#chart-note")).to_contain_text("candles")
    expect(page.locator("#chart-note")).to_contain_text("ET")
    # the library's attribution (its NOTICE asks for it) is on the chart
    expect(page.locator('#chart-canvas a[href*="tradingview.com"]')).to_have_count(1)

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # the dialog's close event, which forgets the ticker, is dispatched in a task after it hides
    page.wait_for_function("realtimeDashboard.chartTicker === null")
    # the choice is remembered; reopening shows candles again, the sparkline opens it too
    row(page, "AAPL").locator("td.col-chart").click()
    expect(dialog).to_be_visible()
    page.wait_for_function("realtimeDashboard.chart.series.seriesType() === 'Candlestick'")
    page.locator("#chart-close").click()
    expect(dialog).to_be_hidden()

    # closed and at once opened again: the close event, which comes a task later, leaves it open
    page.evaluate("realtimeDashboard.openChart('AAPL')")
    reopened = page.evaluate(
        """async () => {
            document.querySelector('#chart-close').click();
            await realtimeDashboard.openChart('AAPL');
            await new Promise((resolve) => setTimeout(resolve, 50));
            return realtimeDashboard.chartTicker;
        }"""
    )
    assert reopened == "AAPL"
    page.locator("#chart-close").click()
    expect(dialog).to_be_hidden()

    # removing the ticker while its chart is open closes the chart
    page.evaluate("realtimeDashboard.openChart('AAPL')")
    expect(dialog).to_be_visible()
    page.evaluate("realtimeDashboard.unsubscribeTicker('AAPL')")
    expect(dialog).to_be_hidden()

    # the library came from this server; nothing from anywhere else
    origin = urlsplit(server.url).netloc
    requests = page.watch.requests  # type: ignore[attr-defined]
    assert any(u.endswith("/static/js/lightweight-charts.standalone.production.js") for u in requests)
    assert [u for u in requests if not u.startswith("data:") and urlsplit(u).netloc != origin] == []


@pytest.mark.parametrize(
    "viewport", [{"width": 1280, "height": 800}, {"width": 900, "height": 800}, {"width": 390, "height": 844}]
)
def test_the_stats_panel_never_covers_the_watchlist(
    open_dashboard: OpenDashboard, viewport: dict[str, int]
) -> None:
    page = open_dashboard(viewport=viewport)
    page.wait_for_function("realtimeDashboard.watchlistMode !== 'loading'")
    for ticker in ("AAPL", "MSFT", "NVDA"):
        page.evaluate("t => realtimeDashboard.addToWatchlist(t)", ticker)
    page.click("#stats-toggle")
    panel = page.locator("#stats-panel")
    expect(panel).to_be_visible()
    expect(panel.locator('dd[data-stat="connected"]')).to_have_text("true")
    boxes = page.evaluate(
        """() => [document.getElementById('stats-panel'), document.querySelector('section.watchlist')]
            .map(e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"""
    )
    (pl, pt, pr, pb), (wl, wt, wr, wb) = boxes
    assert pr <= wl or wr <= pl or pb <= wt or wb <= pt, f"stats {boxes[0]} overlaps the watchlist {boxes[1]}"
    # and it is on screen once opened (scrolled to on a phone, where it comes after the watchlist)
    assert pt < viewport["height"] and pb > 0
    expect(row(page, "AAPL").locator("button.remove")).to_be_visible()
    row(page, "AAPL").locator("button.sym").scroll_into_view_if_needed()
    row(page, "AAPL").locator("button.sym").click()  # nothing lies on top of the rows
    expect(page.locator("#chart-dialog")).to_be_visible()


def test_development_mode_ignores_a_stored_token_and_needs_no_sign_in(
    open_dashboard: OpenDashboard, browser: Browser
) -> None:
    """A token left in localStorage (say from a JWT deployment on the same host) changes nothing here:
    the server is in development mode, so the page neither sends it nor asks anyone to sign in."""
    context = browser.new_context(locale="en-US")
    try:
        context.add_init_script(
            "localStorage.setItem('legend.token', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln')"
        )
        page = open_dashboard(user_id="dev-trader", context=context)
        expect(page.locator("#user-chip .user-name")).to_have_text("dev-trader")
        expect(page.locator("#signin")).to_be_hidden()
        expect(page.locator("#sign-out")).to_be_hidden()
        assert page.evaluate("realtimeDashboard.authMode") == "dev"
        assert page.evaluate("realtimeDashboard.ws.getStats().connectionId").startswith("dev-trader_")
    finally:
        context.close()
