"""The dashboard in Chromium tells the trader that pattern alerts may be missing after a ``gap``.

A real ``legend serve`` (the conftest's, on the in-memory backplane) and the page's own client and
socket. The ``gap`` frame itself is fed to the page's WebSocket: a real one needs two instances on
Redis, one cut from it past the stream's history (tests/cluster/test_partitions.py makes one, and checks
the server's side: the exact range, and the ``ok`` that names it), which is slow and not what this test
is about. To keep it honest, the messages the frame names are real ones the server published that the
page's socket drops before its client sees them, as a cut instance never hears them; everything else
(the subscribe without ``since`` on the wire, the server's history reply, live alerts after) is real.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if os.environ.get("LEGEND_REQUIRE_BROWSER") != "1":
    import pytest

    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import Page, expect

from tests.browser.test_pattern_settings import pattern, titles

if TYPE_CHECKING:
    from tests.browser.conftest import DashboardServer

OpenDashboard = Callable[..., Page]
NOTICE = "#activity-gap"

# Wrap the page's socket: record the frames its client sends, and drop pattern alerts while asked to
# (their seqs are kept), as a server cut from its backplane never receives them.
TAP = """() => {
    const socket = realtimeDashboard.ws._connection._ws;
    const receive = socket.onmessage;
    const send = socket.send.bind(socket);
    window.gapTest = { sent: [], lost: [], dropping: false };
    socket.send = (data) => {
        window.gapTest.sent.push(JSON.parse(data));
        send(data);
    };
    socket.onmessage = (event) => {
        const text = typeof event.data === 'string' ? event.data : new TextDecoder().decode(event.data);
        const msg = JSON.parse(text);
        if (window.gapTest.dropping && msg.type === 'pattern_alert') {
            window.gapTest.lost.push(msg.seq);
            return;
        }
        receive(event);
    };
}"""

# A frame as the server sends it, through the socket's own message handler.
FEED = """(frame) => {
    realtimeDashboard.ws._connection._ws.onmessage({ data: JSON.stringify(frame) });
}"""


def feed(page: Page, frame: dict[str, Any]) -> None:
    page.evaluate(FEED, frame)


def status(ok_complete: bool, gaps: list[str] | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "service_status",
        "status": "ok",
        "component": "backplane",
        "reason": "Live delivery is back.",
        "timestamp": "2025-11-18T15:31:00Z",
        "complete": ok_complete,
    }
    if gaps:
        frame["gaps"] = gaps
    return frame


def test_a_gap_of_pattern_alerts_shows_a_notice_reloads_the_list_and_clears(
    open_dashboard: OpenDashboard, server: DashboardServer, screenshots: Path
) -> None:
    page = open_dashboard()
    expect(page.locator(NOTICE)).to_be_hidden()
    page.evaluate(TAP)
    server.broadcast("pattern", pattern("GAPA", "VCP", 9))
    expect(page.locator("#activity-feed .feed-pattern").first).to_contain_text("GAPA")

    page.evaluate("window.gapTest.dropping = true")
    server.broadcast("pattern", pattern("GAPB", "VCP", 9))
    server.broadcast("pattern", pattern("GAPC", "VCP", 9))
    page.wait_for_function("window.gapTest.lost.length === 2")
    page.evaluate("window.gapTest.dropping = false")
    lost = page.evaluate("window.gapTest.lost")
    first, last = min(lost), max(lost)
    assert last == first + 1, lost

    feed(
        page,
        {
            "type": "service_status",
            "status": "degraded",
            "component": "backplane",
            "reason": "The server lost its connection to the message backplane.",
            "timestamp": "t",
        },
    )
    feed(page, {"type": "gap", "channel": "patterns", "from_seq": first, "to_seq": last, "timestamp": "t"})
    feed(page, status(False, ["patterns"]))

    text = (
        f"Some pattern alerts may be missing after a connection problem (patterns {first}–{last}); "
        "the list was reloaded."
    )
    notice = page.locator(NOTICE)
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(text)
    # inside a polite live region, so a screen reader reads it out
    assert page.locator(f"[role=status]:has({NOTICE})").count() == 1
    assert page.evaluate("realtimeDashboard.ws.gaps") == {"patterns": {"from": first, "to": last}}
    assert page.evaluate("realtimeDashboard.ws.serviceStatus") == "ok"
    expect(page.locator("#connection-status .conn-label")).to_have_text("Live")

    # the history was asked for again, without since, on the wire; the server's reply was taken in
    sent = page.evaluate("window.gapTest.sent.filter(f => f.type === 'subscribe')")
    assert {"type": "subscribe", "channel": "patterns"} in sent, sent
    page.wait_for_function(
        f"realtimeDashboard.ws.getStats().duplicatesDropped > 0 && realtimeDashboard.ws.getStats().streams.patterns >= {last}"
    )
    # the lost alerts stay lost (a cut server's history no longer holds them); what follows arrives
    assert titles(page, "GAPB", "GAPC") == []
    server.broadcast("pattern", pattern("GAPD", "VCP", 9))
    expect(page.locator("#activity-feed .feed-pattern").first).to_contain_text("GAPD")
    assert titles(page, "GAPA", "GAPD") == ["VCP · GAPD", "VCP · GAPA"]
    page.wait_for_timeout(300)  # the frame batch
    page.locator(".card.activity").screenshot(path=str(screenshots / "dashboard-gap-notice.png"))

    # a later ok that names it keeps it; Dismiss hides it
    feed(page, status(False, ["patterns"]))
    expect(notice).to_be_visible()
    page.click("#activity-gap-dismiss")
    expect(notice).to_be_hidden()

    # shown again by a new gap; a later complete recovery clears it
    feed(page, {"type": "gap", "channel": "alerts", "from_seq": 1, "to_seq": 3, "timestamp": "t"})
    expect(notice).to_contain_text(
        "Some alert triggers may be missing after a connection problem (alerts 1–3)"
    )
    feed(page, status(True))
    expect(notice).to_be_hidden()
    assert page.evaluate("realtimeDashboard.ws.gaps") == {}
