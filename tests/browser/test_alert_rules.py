"""The alert rule form and list in Chromium against a real server: rules of several kinds made through the
form (a channel, a move within a window, a moving average), listed with their fields and state; a field
error from the server next to its field; pause, resume and edit; the session hint following the market
status; every state as the list says it; and the preview's fires marked on the ticker's chart.

Nothing is played: the server's REST API, its alert evaluation (prices and market status broadcast into
its price log, an expiry by its clock) and its preview over the bars it stored are real. The list's words
for the answers a server cannot be brought into at will are tested in Node (tests/js/alert-rules.test.js).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if os.environ.get("LEGEND_REQUIRE_BROWSER") != "1":
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import Locator, Page, expect

if TYPE_CHECKING:
    from tests.browser.conftest import DashboardServer

OpenDashboard = Callable[..., Page]

# What the list says of each state the server gives (state, paused_by) for a rule of the regular session.
STATE_TEXT = {
    ("armed", None): "armed",
    ("paused", "user"): "paused by you",
    ("paused", "halted"): "paused: market halted",
    ("paused", "outside_session"): "paused: outside regular hours",
    ("expired", None): "expired",
}


def rule_item(page: Page, text: str) -> Locator:
    return page.locator("#rule-list .rule", has_text=text)


def server_rules(server: DashboardServer, user: str) -> list[dict[str, Any]]:
    with server.user_api(user) as api:
        response = api.get("/api/alerts/rules")
        response.raise_for_status()
        rules: list[dict[str, Any]] = response.json()["rules"]
        return rules


def state_text(rule: dict[str, Any]) -> str:
    if rule["state"] == "fired":
        return f"fired {rule['triggers']} time" + ("" if rule["triggers"] == 1 else "s")
    text = STATE_TEXT[(rule["state"], rule["paused_by"])]
    return text.replace("regular", "extended") if rule["session"] == "extended" else text


def field(page: Page, label: str) -> Locator:
    """The form's input labelled exactly ``label``."""
    return page.get_by_label(label, exact=True)


def shown(page: Page, selector: str) -> bool:
    visible: bool = page.locator(selector).is_visible()
    return visible


def test_rules_of_several_kinds_are_made_through_the_form_and_listed_with_their_fields_and_state(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    user = "kinds-" + uuid.uuid4().hex[:8]
    page = open_dashboard(user_id=user, rejected=("/api/alerts/rules",))
    page.wait_for_function("realtimeDashboard.alertRules.available === true")
    # every kind of the API is offered, grouped, each field labelled
    kinds = page.eval_on_selector_all("#rule-kind option", "options => options.map(o => o.value)")
    assert set(kinds) >= {
        "price_above", "price_below", "crossing", "breakout", "breakdown", "entering_channel", "exiting_channel",
        "moving_up", "moving_down", "moving_up_percent", "moving_down_percent", "sma_cross_up", "sma_cross_down",
        "change_percent_above", "change_percent_below", "volume_above", "volume_spike",
    }  # fmt: skip
    assert page.locator("#rule-kind optgroup").count() >= 5
    expect(field(page, "Hours")).to_have_value("regular")  # a new rule watches the regular session

    # a channel: only its bounds; a bound the server refuses is shown next to that bound
    field(page, "Ticker").fill("aapl")
    field(page, "Condition").select_option("entering_channel")
    assert [shown(page, f"#rule-{f}") for f in ("lower", "upper", "threshold", "window", "period")] == [
        True, True, False, False, False,
    ]  # fmt: skip
    field(page, "From ($)").fill("200")
    field(page, "To ($)").fill("100")
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/api/alerts/rules")
    ) as made:
        page.get_by_role("button", name="Create alert").click()
    assert made.value.status == 400
    expect(page.locator("#rule-upper-error")).to_have_text("must be greater than lower")
    expect(field(page, "To ($)")).to_have_attribute("aria-invalid", "true")
    expect(field(page, "To ($)")).to_have_attribute("aria-describedby", "rule-upper-error")
    expect(page.locator("#rules-error")).to_be_hidden()
    expect(page.locator("#rule-list .rule")).to_have_count(0)
    field(page, "To ($)").fill("300")  # typing clears the error
    expect(page.locator("#rule-upper-error")).to_be_hidden()
    field(page, "Hours").select_option("extended")
    page.get_by_role("button", name="Create alert").click()
    channel = rule_item(page, "Enters channel $200.00 – $300.00")
    expect(channel).to_contain_text("Extended hours · Fires on each new cross")

    # a move within a window: the threshold is now a percent, the window in seconds
    field(page, "Condition").select_option("moving_up_percent")
    expect(page.locator("#rule-threshold-label")).to_have_text("Move (%)")
    assert [shown(page, f"#rule-{f}") for f in ("lower", "threshold", "window", "period", "evaluate")] == [
        False, True, True, False, True,
    ]  # fmt: skip
    field(page, "Move (%)").fill("2")
    field(page, "Within").fill("90")
    field(page, "Time window unit").select_option("s")
    field(page, "Hours").select_option("any")
    page.get_by_role("button", name="Create alert").click()
    move = rule_item(page, "Rises by 2.00% within 1 min 30 s")
    expect(move).to_contain_text("Any time")

    # a moving average: evaluated at the close of its bars (no "Check" choice), no threshold
    field(page, "Condition").select_option("sma_cross_up")
    assert [shown(page, f"#rule-{f}") for f in ("threshold", "period", "interval", "evaluate")] == [
        False, True, True, False,
    ]  # fmt: skip
    expect(field(page, "Bars averaged")).to_have_value("20")
    field(page, "Bars of").select_option("15m")
    field(page, "Fires").select_option("once")
    page.get_by_role("button", name="Create alert").click()
    sma = rule_item(page, "Close crosses above SMA 20 of 15m bars")
    expect(sma).to_contain_text("Any time · Fires once")
    expect(page.locator("#rule-list .rule")).to_have_count(3)

    # the server has what the form said, and the list says each rule's state as the server does
    stored = {r["kind"]: r for r in server_rules(server, user)}
    assert (stored["entering_channel"]["lower"], stored["entering_channel"]["upper"]) == (200, 300)
    assert stored["entering_channel"]["session"] == "extended"
    assert (stored["moving_up_percent"]["threshold"], stored["moving_up_percent"]["window_seconds"]) == (
        2,
        90,
    )
    sma_rule = stored["sma_cross_up"]
    assert (sma_rule["period"], sma_rule["interval"], sma_rule["evaluate"], sma_rule["rearm"]) == (
        20, "15m", "bar_close", "once",
    )  # fmt: skip
    for item, rule in (
        (channel, stored["entering_channel"]),
        (move, stored["moving_up_percent"]),
        (sma, sma_rule),
    ):
        expect(item.locator(".tag-state")).to_have_text(state_text(rule))
    expect(move.locator(".tag-state")).to_have_text("armed")  # any time: armed now
    # each rule's buttons say which rule they act on
    expect(
        move.get_by_role("button", name="Pause alert AAPL Rises by 2.00% within 1 min 30 s")
    ).to_be_visible()


def test_a_rule_is_paused_resumed_and_edited(open_dashboard: OpenDashboard, server: DashboardServer) -> None:
    user = "edit-" + uuid.uuid4().hex[:8]
    page = open_dashboard(user_id=user, rejected=("/api/alerts/rules",))
    page.wait_for_function("realtimeDashboard.alertRules.available === true")
    field(page, "Ticker").fill("MSFT")
    field(page, "Price ($)").fill("100000")  # never reached: the rule stays armed
    field(page, "Hours").select_option("any")
    page.get_by_role("button", name="Create alert").click()
    rule = rule_item(page, "MSFT")
    expect(rule.locator(".tag-state")).to_have_text("armed")
    expect(field(page, "Price ($)")).to_have_value("")  # ready for the next rule

    with page.expect_response(lambda r: r.request.method == "PATCH") as paused:
        rule.get_by_role("button", name=re.compile("^Pause alert MSFT")).click()
    assert json.loads(paused.value.request.post_data or "{}") == {"armed": False}
    expect(rule.locator(".tag-state")).to_have_text("paused by you")
    assert server_rules(server, user)[0]["armed"] is False
    rule.get_by_role("button", name=re.compile("^Resume alert MSFT")).click()
    expect(rule.locator(".tag-state")).to_have_text("armed")
    assert server_rules(server, user)[0]["armed"] is True

    # edit: the same form, filled with the rule, saved with PATCH
    rule.get_by_role("button", name=re.compile("^Edit alert MSFT")).click()
    expect(page.locator("#rule-form-title")).to_have_text("Edit alert: MSFT Price above $100,000.00")
    expect(rule).to_have_attribute("aria-current", "true")
    expect(field(page, "Price ($)")).to_have_value("100000")
    expect(field(page, "Hours")).to_have_value("any")
    field(page, "Price ($)").fill("-5")  # the server's range: shown next to the field
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#rule-threshold-error")).to_contain_text("greater than 0")
    field(page, "Condition").select_option("crossing")  # a price for a price: the value stays
    expect(field(page, "Price ($)")).to_have_value("-5")
    field(page, "Price ($)").fill("90000")
    field(page, "Check").select_option("bar_close")
    field(page, "Bars of").select_option("1h")
    expires = datetime.now() + timedelta(days=2)  # in the browser's zone (New York) too: later than now
    field(page, "Expires (your time, optional)").fill(expires.strftime("%Y-%m-%dT%H:%M"))
    with page.expect_response(lambda r: r.request.method == "PATCH") as saved:
        page.get_by_role("button", name="Save changes").click()
    assert saved.value.status == 200
    edited = rule_item(page, "Price crosses $90,000.00")
    expect(edited).to_contain_text("At 1h bar close · Any time")
    expect(edited).to_contain_text("Expires")
    expect(page.locator("#rule-form-title")).to_have_text("New alert")
    expect(page.get_by_role("button", name="Create alert")).to_be_visible()
    [stored] = server_rules(server, user)  # the same rule, changed
    assert (stored["kind"], stored["threshold"], stored["evaluate"], stored["interval"]) == (
        "crossing", 90000, "bar_close", "1h",
    )  # fmt: skip
    assert stored["expires_at"] is not None

    # Cancel leaves the rule as it was
    edited.get_by_role("button", name=re.compile("^Edit alert")).click()
    field(page, "Price ($)").fill("1")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#rule-form-title")).to_have_text("New alert")
    assert server_rules(server, user)[0]["threshold"] == 90000


def test_the_session_hint_follows_the_market_status(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    page = open_dashboard()
    hint = page.locator("#rule-session-hint")
    hours = field(page, "Hours")
    expect(hours).to_have_attribute("aria-describedby", re.compile("rule-session-hint"))
    real = httpx.get(server.url + "/api/market/status", timeout=5).json()
    try:
        next_open = (datetime.now(UTC) + timedelta(hours=15)).isoformat()
        server.broadcast("market_status", {"status": "closed", "next_open": next_open})
        expect(hint).to_contain_text(
            "The market is closed now: this alert waits for the regular session (opens"
        )
        hours.select_option("any")
        expect(hint).to_be_hidden()
        hours.select_option("extended")
        expect(hint).to_contain_text("waits for extended-hours trading")
        server.broadcast("market_status", {"status": "after_hours", "next_open": next_open})
        expect(hint).to_be_hidden()
        hours.select_option("regular")
        expect(hint).to_contain_text("It is after hours now")
        server.broadcast("market_status", {"status": "open"})
        expect(hint).to_be_hidden()
        server.broadcast("market_status", {"status": "halted"})
        expect(hint).to_have_text("Trading is halted: alerts pause until it resumes.")
    finally:  # the calendar's status again, for the pages after this one
        server.broadcast(
            "market_status", {k: real[k] for k in ("status", "next_open", "next_close") if real.get(k)}
        )


def regular_state(server: DashboardServer) -> tuple[str, str | None]:
    """What the calendar makes of a ``regular`` rule now: armed in the regular session, paused outside."""
    status = httpx.get(server.url + "/api/market/status", timeout=5).json()["status"]
    return ("armed", None) if status == "open" else ("paused", "outside_session")


def test_the_list_says_every_state_the_server_gives(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    """Every state brought about on the server: prices broadcast for a ticker of this test alone fire its
    rules, the owner pauses one, one expires by the clock, a market_status broadcast halts every rule and
    another lifts the halt; a rule of the regular session is armed or waits as the calendar says now."""
    user = "states-" + uuid.uuid4().hex[:8]
    ticker = "Z" + uuid.uuid4().hex[:5].upper()
    never = {"kind": "price_above", "threshold": 100000, "session": "any"}  # not reached: armed
    bodies = [
        never,
        {"kind": "price_above", "threshold": 10, "session": "any", "rearm": "recross"},  # fires twice
        {"kind": "price_above", "threshold": 10, "session": "any", "rearm": "once"},  # fires, disarmed
        {**never, "expires_at": (datetime.now(UTC) + timedelta(seconds=4)).isoformat()},
        never,  # paused by its owner
        {**never, "session": "regular"},
    ]
    with server.user_api(user) as api:
        ids = []
        for body in bodies:
            made = api.post("/api/alerts/rules", json={"ticker": ticker, **body})
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
        assert api.patch(f"/api/alerts/rules/{ids[4]}", json={"armed": False}).status_code == 200
    for price in (11, 9, 11):  # above, below, above: the recross rule fires twice, the once rule once
        server.broadcast("price", {"ticker": ticker, "price": price})

    def states() -> list[tuple[str, str | None, int]]:
        return [(r["state"], r["paused_by"], r["triggers"]) for r in server_rules(server, user)]

    def settle(want: Callable[[list[tuple[str, str | None, int]]], bool]) -> None:
        """Wait until the server's rules (state, paused_by, triggers) are as ``want`` says."""
        deadline, now = time.monotonic() + 15, states()
        while not want(now) and time.monotonic() < deadline:
            time.sleep(0.1)
            now = states()
        assert want(now), now

    settle(lambda s: [t for _, _, t in s[:3]] == [0, 2, 1])
    page = open_dashboard(user_id=user)
    items = page.locator("#rule-list .rule")
    expect(items).to_have_count(len(bodies))

    def shows(expected: list[tuple[list[str], str | None] | None]) -> None:
        """The list's tags and buttons, rule by rule, as ``expected`` (None: not looked at) and as the
        server's rules say."""
        rules = server_rules(server, user)
        for i, want in enumerate(expected):
            if want is None:
                continue
            tags, action = want
            item = items.nth(i)
            expect(item.locator(".tag")).to_have_text(tags)
            assert tags[0] == state_text(rules[i]), (tags, rules[i])
            expect(item.get_by_role("button")).to_have_text(["Edit", *([action] if action else []), "×"])
            expect(item.locator(".tag-state")).to_have_attribute("data-state", rules[i]["state"])

    shows(
        [
            (["armed"], "Pause"),
            (["armed", "fired 2 times"], "Pause"),
            (["fired 1 time"], "Re-arm"),
            None,  # expiring: armed or expired by now
            (["paused by you"], "Resume"),
            ([STATE_TEXT[regular_state(server)]], "Pause"),
        ]
    )
    expect(items.nth(3)).to_contain_text("Expires")

    # the expiry comes by the clock; then a halt holds every armed rule, and the page reads them again
    settle(lambda s: s[3][0] == "expired")
    real = httpx.get(server.url + "/api/market/status", timeout=5).json()
    try:
        server.broadcast("market_status", {"status": "halted"})
        halt, mine = ("paused", "halted"), ("paused", "user")  # a halt holds armed rules of every session
        settle(lambda s: [r[:2] for r in s] == [halt, halt, ("fired", None), ("expired", None), mine, halt])
        shows(
            [
                (["paused: market halted"], "Pause"),  # still armed: its owner can pause it
                (["paused: market halted", "fired 2 times"], "Pause"),
                (["fired 1 time"], "Re-arm"),
                (["expired"], None),
                (["paused by you"], "Resume"),
                (["paused: market halted"], "Pause"),
            ]
        )
    finally:  # the calendar's status again: the halt is lifted
        server.broadcast(
            "market_status", {k: real[k] for k in ("status", "next_open", "next_close") if real.get(k)}
        )
    settle(lambda s: all(by != "halted" for _, by, _ in s))
    regular = regular_state(server)
    shows(
        [
            (["armed"], "Pause"),
            (["armed", "fired 2 times"], "Pause"),
            (["fired 1 time"], "Re-arm"),
            (["expired"], None),
            (["paused by you"], "Resume"),
            ([STATE_TEXT[regular]], "Pause"),
        ]
    )


def test_preview_marks_its_fires_on_the_tickers_chart(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    """POST /api/alerts/preview over the server's own AAPL bars (the simulated provider's backfill and the
    bars built since): each fire it answers is marked on the chart at the bar that holds it, at its price;
    fires before the bars the chart loaded first are drawn as it scrolls back to them."""
    page = open_dashboard()
    page.evaluate("realtimeDashboard.subscribeTicker('AAPL')")  # newly watched: its past is backfilled
    deadline, bars = time.monotonic() + 60, list[dict[str, Any]]()
    while len(bars) < 500 and time.monotonic() < deadline:  # the chart's first page
        bars = httpx.get(f"{server.url}/api/bars/AAPL?interval=1m&limit=500", timeout=5).json()["bars"]
        time.sleep(0.2)
    assert len(bars) == 500, len(bars)
    # a level near the top of the chart's first page: the price crossed it there, a few times
    high, low = max(b["high"] for b in bars), min(b["low"] for b in bars)
    level = round(high - (high - low) / 10, 2)
    field(page, "Ticker").fill("aapl")
    field(page, "Condition").select_option("crossing")
    field(page, "Price ($)").fill(str(level))
    field(page, "Hours").select_option("any")
    field(page, "Preview days").fill("1")
    with page.expect_response(lambda r: r.url.endswith("/api/alerts/preview")) as answered:
        page.get_by_role("button", name="Preview", exact=True).click()
    assert answered.value.status == 200, answered.value.text()
    assert json.loads(answered.value.request.post_data or "{}") == {
        "ticker": "AAPL", "kind": "crossing", "threshold": level, "evaluate": "tick", "session": "any",
        "rearm": "recross", "days": 1,
    }  # fmt: skip
    answer = answered.value.json()
    fires = answer["fires"]
    assert answer["evaluated"]["bars"] >= 500 and not answer["truncated"]
    assert fires, f"no crossing of {level} in a day of bars"
    expect(page.locator("#chart-dialog")).to_be_visible()  # the ticker's chart, a row shown for it
    page.wait_for_function(
        "realtimeDashboard.chart?.series?.data().length >= 500 && realtimeDashboard.chart.markersShown"
    )
    expect(page.locator("#rule-preview-note")).to_contain_text(
        f"Would have fired {len(fires)} time{'' if len(fires) == 1 else 's'} in the last day"
    )

    def first_ms() -> int:
        ms: int = page.evaluate("realtimeDashboard.chart.bars[0].ms")
        return ms

    def instant(fire: dict[str, Any]) -> int:
        return int(datetime.fromisoformat(fire["at"].replace("Z", "+00:00")).timestamp() * 1000)

    earlier = sum(1 for f in fires if instant(f) < first_ms())
    note = f"{len(fires)} preview alert{'' if len(fires) == 1 else 's'} marked"
    expect(page.locator("#chart-note")).to_contain_text(
        note + (f" ({earlier} before these bars: scroll back)" if earlier else "")
    )
    assert page.evaluate("realtimeDashboard.chart.markersShown") == len(fires) - earlier
    for _ in range(10):  # scrolled back to the day's first fire: every fire is drawn
        if page.evaluate("realtimeDashboard.chart.markersShown") == len(fires):
            break
        loaded = page.evaluate("realtimeDashboard.chart.series.data().length")
        page.evaluate("realtimeDashboard.chart.chart.timeScale().setVisibleLogicalRange({from: 0, to: 80})")
        page.wait_for_function(f"realtimeDashboard.chart.series.data().length > {loaded}")
    expect(page.locator("#chart-note")).to_contain_text(note)
    expect(page.locator("#chart-note")).not_to_contain_text("scroll back")
    # each mark on the bar that holds its fire (the minute it lies in), at its price
    marks = page.evaluate(
        """() => {
            const c = realtimeDashboard.chart;
            const times = c.series.data().map(p => p.time);
            return c._markerPlugin.markers().map(m => {
                const i = times.indexOf(m.time);  // the bar it is drawn on
                return {ms: i < 0 ? null : c.bars[i].ms, price: m.price};
            });
        }"""
    )
    assert marks == [{"ms": instant(f) // 60_000 * 60_000, "price": f["price"]} for f in fires]
    page.get_by_role("button", name="Close chart").click()
    page.wait_for_function("realtimeDashboard.chart.markersShown === 0")
    expect(page.get_by_role("button", name="Create alert")).to_be_visible()  # then the trader creates it
