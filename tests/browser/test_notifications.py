"""Where alerts go, in Chromium against a real server (issue 21): the dashboard's service worker registers,
and a push message delivered to it (DevTools' ``ServiceWorker.deliverPushMessage``, as a push service would)
shows the trigger as a system notification, replaced (not doubled) by the same alert again; the
Notifications panel adds a webhook (the server's 400s next to their fields), tests and removes it; push is
turned on and off for this browser; voice reads a trigger out; ``?chart=`` opens that chart.

Headless Chromium has no push service to subscribe with, so the push switch is driven over a stand-in
``pushManager`` (the permission, the server's key, the POST and the DELETE are real).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if os.environ.get("LEGEND_REQUIRE_BROWSER") != "1":
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import Browser, BrowserContext, Page, expect

if TYPE_CHECKING:
    from tests.browser.conftest import DashboardServer

OpenDashboard = Callable[..., Page]
TRIGGER = {
    "alert_id": "rule-7-3",
    "ticker": "AAPL",
    "alert_type": "breakout",
    "message": "AAPL broke out above $150.00",
    "triggered_at": "2030-01-02T15:04:05Z",
    "trigger_price": 150,
    "current_price": 150.25,
}
NOTIFICATIONS = """async () => {
    const registration = await navigator.serviceWorker.getRegistration('/static/');
    const shown = registration ? await registration.getNotifications() : [];
    return shown.map((n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data}));
}"""


@pytest.fixture
def context(browser: Browser, server: DashboardServer) -> Iterator[BrowserContext]:
    """A browser profile in which this server's pages may show notifications."""
    ctx = browser.new_context(locale="en-US", timezone_id="America/New_York")
    ctx.grant_permissions(["notifications"], origin=server.url)
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()


def worker_ready(page: Page) -> None:
    page.wait_for_function(
        "navigator.serviceWorker.getRegistration('/static/').then((r) => !!(r && r.active"
        " && r.active.state === 'activated'))"
    )


def deliver_push(page: Page, origin: str, data: dict[str, Any]) -> None:
    """Hand `data` to the page's service worker as a push message, as the push service would."""
    cdp = page.context.new_cdp_session(page)
    registrations: dict[str, dict[str, Any]] = {}

    def updated(event: dict[str, Any]) -> None:
        for registration in event["registrations"]:
            registrations[registration["registrationId"]] = registration

    cdp.on("ServiceWorker.workerRegistrationUpdated", updated)
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + 10
    found: list[str] = []
    while not found and time.monotonic() < deadline:
        page.wait_for_timeout(50)  # lets the session's events in
        found = [
            r["registrationId"]
            for r in registrations.values()
            if r["scopeURL"].endswith("/static/") and not r.get("isDeleted")
        ]
    assert found, f"no service worker registration for /static/ in {registrations}"
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": origin, "registrationId": found[0], "data": json.dumps(data)},
    )
    cdp.detach()


def test_the_service_worker_shows_a_pushed_trigger_as_a_notification_replaced_by_the_same_alert(
    open_dashboard: OpenDashboard, server: DashboardServer, context: BrowserContext
) -> None:
    page = open_dashboard(context=context)
    worker_ready(page)  # registered at start, before any permission is asked
    assert page.evaluate("Notification.permission") == "granted"
    assert page.evaluate(NOTIFICATIONS) == []

    deliver_push(page, server.url, TRIGGER)
    page.wait_for_function(f"({NOTIFICATIONS})().then((list) => list.length === 1)")
    [shown] = page.evaluate(NOTIFICATIONS)
    assert shown["title"] == "AAPL: breakout"
    assert shown["body"] == TRIGGER["message"]
    assert shown["tag"] == TRIGGER["alert_id"]
    assert shown["data"] == {"ticker": "AAPL", "alert_id": TRIGGER["alert_id"]}

    # the same alert again replaces it (tag); another alert is a second notification
    deliver_push(page, server.url, {**TRIGGER, "message": "AAPL again"})
    page.wait_for_function(f"({NOTIFICATIONS})().then((l) => l.length === 1 && l[0].body === 'AAPL again')")
    deliver_push(
        page, server.url, {**TRIGGER, "alert_id": "rule-8-1", "ticker": "MSFT", "alert_type": "price_above"}
    )
    page.wait_for_function(f"({NOTIFICATIONS})().then((list) => list.length === 2)")
    titles = sorted(n["title"] for n in page.evaluate(NOTIFICATIONS))
    assert titles == ["AAPL: breakout", "MSFT: price above"]


def test_a_notifications_address_opens_the_tickers_chart(open_dashboard: OpenDashboard) -> None:
    user = "chart-" + uuid.uuid4().hex[:8]
    page = open_dashboard(path=f"/dashboard?user_id={user}&chart=NVDA")
    page.wait_for_function("realtimeDashboard.chartTicker === 'NVDA'")
    expect(page.locator("#chart-dialog")).to_be_visible()
    expect(page.locator("#chart-title")).to_have_text("NVDA")
    assert "chart=" not in page.url  # a reload does not open it again


def test_webhooks_are_added_with_the_servers_errors_next_to_their_fields_tested_and_removed(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    user = "hooks-" + uuid.uuid4().hex[:8]
    page = open_dashboard(user_id=user, rejected=("/api/notifications/webhooks",))
    page.wait_for_function("realtimeDashboard.notifications.available === true")
    expect(page.locator("#webhook-form")).to_be_visible()
    expect(page.locator("#email-form")).to_be_hidden()  # this server has no SMTP relay

    url, secret = page.get_by_label("Webhook URL"), page.get_by_label("Signing secret")
    add = page.get_by_role("button", name="Add webhook")
    # a short secret: the server's 400, next to the secret
    url.fill("https://hooks.example.com/legend")
    secret.fill("short")
    add.click()
    expect(page.locator("#webhook-secret-error")).to_contain_text("16")
    expect(secret).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#webhook-url-error")).to_be_hidden()
    # a loopback address: refused (server-side request forgery), next to the URL
    url.fill("https://127.0.0.1/hook")
    secret.fill("s" * 24)
    add.click()
    expect(page.locator("#webhook-url-error")).to_contain_text("refused")
    expect(page.locator("#webhook-secret-error")).to_be_hidden()

    url.fill("https://hooks.example.com/legend")
    secret.fill("s" * 24)
    add.click()
    item = page.locator("#destination-list .destination[data-channel='webhook']")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("https://hooks.example.com/legend")
    expect(url).to_have_value("")
    with server.user_api(user) as api:
        [hook] = api.get("/api/notifications").json()["webhooks"]
    assert hook["url"] == "https://hooks.example.com/legend"
    with server.user_api("someone-else") as api:
        assert api.get("/api/notifications").json()["webhooks"] == []

    # a test sends now and says what came of it (the name does not resolve here: not delivered)
    item.get_by_role("button", name="Send a test to Webhook https://hooks.example.com/legend").click()
    result = item.locator(".destination-result")
    expect(result).not_to_have_text("Sending a test…", timeout=20_000)
    text = result.text_content() or ""
    assert text.startswith(("Delivered", "Not delivered", "Failed")), text

    item.get_by_role("button", name="Remove Webhook https://hooks.example.com/legend").click()
    expect(item).to_have_count(0)
    with server.user_api(user) as api:
        assert api.get("/api/notifications").json()["webhooks"] == []


# A stand-in pushManager: headless Chromium has no push service to subscribe with.
FAKE_PUSH = """
(() => {
    window.__push = {subscribed: null, unsubscribed: 0, options: null};
    const fake = (options) => ({
        endpoint: 'https://push.example.net/send/' + Math.random().toString(36).slice(2),
        options: options,
        toJSON() { return {endpoint: this.endpoint, expirationTime: null, keys: {p256dh: 'BPk' + 'a'.repeat(84), auth: 'c2VjcmV0LWF1dGgtMTIzNA'}}; },
        unsubscribe() { window.__push.subscribed = null; window.__push.unsubscribed++; return Promise.resolve(true); },
    });
    PushManager.prototype.subscribe = function (options) {
        window.__push.options = options;
        window.__push.subscribed = fake(options);
        return Promise.resolve(window.__push.subscribed);
    };
    PushManager.prototype.getSubscription = function () { return Promise.resolve(window.__push.subscribed); };
})();
"""


def test_push_is_turned_on_with_the_servers_key_and_off_again(
    open_dashboard: OpenDashboard, server: DashboardServer, context: BrowserContext
) -> None:
    user = "push-" + uuid.uuid4().hex[:8]
    context.add_init_script(FAKE_PUSH)
    page = open_dashboard(user_id=user, context=context)
    page.wait_for_function("realtimeDashboard.notifications.available === true")
    toggle = page.locator("#push-toggle")
    expect(toggle).to_be_enabled()
    expect(toggle).to_have_attribute("aria-pressed", "false")

    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#push-status")).to_contain_text("Push is on")
    with server.user_api(user) as api:
        key = api.get("/api/notifications/push/key").json()["public_key"]
        [listed] = api.get("/api/notifications").json()["push"]
    # subscribed with the server's key, for notifications the user sees
    options = page.evaluate(
        "({user: __push.options.userVisibleOnly, key: btoa(String.fromCharCode(...__push.options.applicationServerKey))"
        ".replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '')})"
    )
    assert options == {"user": True, "key": key}
    assert listed["endpoint"] == page.evaluate("__push.subscribed.endpoint")
    expect(page.locator("#destination-list .destination[data-channel='push']")).to_contain_text(
        "this browser"
    )

    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("__push.unsubscribed") == 1
    with server.user_api(user) as api:
        assert api.get("/api/notifications").json()["push"] == []
    expect(page.locator("#destination-list .destination")).to_have_count(0)


SPEECH = """
window.__spoken = [];
Object.defineProperty(window, 'speechSynthesis', {configurable: true, value: {
    speak(u) { window.__spoken.push(u.text); setTimeout(() => u.onend && u.onend(), 0); },
    cancel() {},
}});
"""


def test_voice_reads_a_trigger_out_and_is_remembered(
    open_dashboard: OpenDashboard, server: DashboardServer, browser: Browser
) -> None:
    context = browser.new_context(locale="en-US", timezone_id="America/New_York")
    try:
        context.add_init_script(SPEECH)
        user = "voice-" + uuid.uuid4().hex[:8]
        page = open_dashboard(user_id=user, context=context)
        broadcast = {
            k: TRIGGER[k] for k in ("ticker", "alert_type", "message", "trigger_price", "current_price")
        }
        broadcast["user_id"] = user
        voice = page.locator("#voice-toggle")
        expect(voice).to_be_visible()
        expect(voice).to_have_attribute("aria-pressed", "false")
        server.broadcast("alert", {**broadcast, "alert_id": "quiet-1"})
        expect(page.locator("#activity-feed .feed-item")).to_have_count(1)
        assert page.evaluate("__spoken") == []  # off: nothing said

        voice.click()
        expect(voice).to_have_attribute("aria-pressed", "true")
        expect(voice).to_have_text("Voice on")
        server.broadcast("alert", {**broadcast, "alert_id": "loud-1"})
        page.wait_for_function("__spoken.includes('AAPL broke out above $150.00')")
        assert page.evaluate("__spoken") == ["Voice alerts on", "AAPL broke out above $150.00"]

        page.reload()  # remembered in this browser
        page.wait_for_function(
            "document.querySelector('#connection-status .conn-label').textContent === 'Live'"
        )
        expect(page.locator("#voice-toggle")).to_have_attribute("aria-pressed", "true")
    finally:
        context.close()
