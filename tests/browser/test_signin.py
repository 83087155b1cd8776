"""Signing in to a JWT server from the dashboard: the sign-in panel, pasted tokens (refused with the
server's reason, or accepted), a login service's hand-over, sign-out, and the message when a token
expires. Tokens come from the real ``legend token create``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest

if os.environ.get("LEGEND_REQUIRE_BROWSER") != "1":
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DashboardServer

if TYPE_CHECKING:
    from collections.abc import Callable

    OpenDashboard = Callable[..., Page]

SECRET = "browser-jwt-secret-browser-jwt-secret-42"
JWT: dict[str, dict[str, Any]] = {
    "security": {
        "auth": "jwt",
        "jwt_secret": SECRET,
        "jwt_leeway_seconds": 0,
        "login_url": "/signin-service",
    },
    "realtime": {"cleanup_interval": 0.2},
}
LABEL = "#connection-status .conn-label"
USER_APIS = ("/api/auth/me", "/api/watchlist", "/api/alerts/rules", "/api/alerts/events")


@pytest.fixture(scope="module")
def server(browser: Browser) -> Iterator[DashboardServer]:
    """This module's dashboards talk to a server in JWT mode."""
    srv = DashboardServer(JWT).start()
    try:
        yield srv
    finally:
        srv.close()


def create_token(server: DashboardServer, user: str, ttl: int = 600) -> str:
    """What an administrator runs: ``legend token create --user ID --ttl SECONDS``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGEND_")}
    command = ["token", "create", "--config", str(server.config_path), "--user", user, "--ttl", str(ttl)]
    result = subprocess.run(
        [sys.executable, "-m", "legend", *command],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def submit_token(page: Page, token: str) -> None:
    page.fill("#signin-token", token)
    page.click("#signin-form button[type=submit]")


def test_without_a_token_the_dashboard_asks_to_sign_in_and_a_pasted_token_gets_in(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    page = open_dashboard(path="/dashboard", live=False, refused=("/api/auth/me",))
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("main.layout")).to_be_hidden()
    expect(page.locator(LABEL)).to_have_text("Signed out")
    expect(page.locator("#signin-message")).to_be_hidden()  # nothing went wrong: just not signed in
    expect(page.locator("#signin-login")).to_have_attribute("href", f"{server.url}/signin-service")
    expect(page.locator("#signin")).to_contain_text("legend token create --user")
    expect(page.locator("#signin-token")).to_be_focused()

    # what is not a token, a forged one and an expired one are refused, each with its reason
    submit_token(page, "hello")
    expect(page.locator("#signin-error")).to_contain_text("not an access token")
    now = int(time.time())
    forged = jwt.encode({"sub": "mallory", "iat": now, "exp": now + 600}, "x" * 40, algorithm="HS256")
    submit_token(page, forged)
    expect(page.locator("#signin-error")).to_have_text(
        "The server refused this token: invalid token: Signature verification failed."
    )
    expired = jwt.encode({"sub": "amy", "iat": now - 120, "exp": now - 60}, SECRET, algorithm="HS256")
    submit_token(page, expired)
    expect(page.locator("#signin-error")).to_contain_text("This token expired at")
    assert page.watch.sockets == []  # type: ignore[attr-defined] # no stream was opened for any of them

    token = create_token(server, "amy")
    with page.expect_navigation():
        submit_token(page, " Bearer " + token + "\n")  # as copied from a header, with stray blanks
    expect(page.locator(LABEL)).to_have_text("Live")
    expect(page.locator("#signin")).to_be_hidden()
    expect(page.locator("#user-chip .user-name")).to_have_text("amy")
    assert (page.locator("#user-chip").get_attribute("title") or "").startswith("Signed in as amy until ")
    expect(page.locator("#sign-out")).to_be_visible()
    sockets = page.watch.sockets  # type: ignore[attr-defined]
    assert sockets and all("token=" not in url for url in sockets)  # sent as a subprotocol, not in the URL

    # the stream and the REST API act as amy
    page.fill("#watchlist-input", "aapl")
    page.click("#watchlist-form button[type=submit]")
    page.wait_for_function(
        "document.querySelector('#price-rows tr[data-ticker=\"AAPL\"] .price')?.textContent.trim() !== ''"
    )
    saved = httpx.get(f"{server.url}/api/watchlist", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert saved.json()["tickers"] == ["AAPL"]

    # the token is kept: a reload stays signed in; signing out forgets it
    page.reload()
    expect(page.locator(LABEL)).to_have_text("Live")
    page.click("#sign-out")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator(LABEL)).to_have_text("Signed out")
    assert page.evaluate("localStorage.getItem('legend.token')") is None
    assert page.evaluate("realtimeDashboard.ws.state") == "closed"
    page.reload()
    expect(page.locator("#signin")).to_be_visible()


def test_a_login_service_hands_the_token_over_and_its_expiry_asks_to_sign_in_again(
    open_dashboard: OpenDashboard, server: DashboardServer
) -> None:
    token = create_token(server, "brief", ttl=5)
    page = open_dashboard(path=f"/dashboard#token={token}", refused=USER_APIS)
    expect(page.locator("#user-chip .user-name")).to_have_text("brief")
    assert "token" not in page.url  # taken out of the address bar and the history
    assert page.evaluate("localStorage.getItem('legend.token')") == token

    # the server closes the stream with 4401 when the token expires: the dashboard says so
    expect(page.locator("#signin")).to_be_visible(timeout=20_000)
    expect(page.locator("#signin-message")).to_contain_text("Your session expired at")
    expect(page.locator("#signin-message")).to_contain_text("Sign in again")
    expect(page.locator(LABEL)).to_have_text("Signed out")
    assert page.evaluate("realtimeDashboard.ws.state") == "closed"
    opened = len(page.watch.sockets)  # type: ignore[attr-defined]
    page.wait_for_timeout(1500)
    assert len(page.watch.sockets) == opened, "no reconnecting with a dead token"  # type: ignore[attr-defined]


def test_a_token_the_server_no_longer_accepts_shows_why(
    open_dashboard: OpenDashboard, server: DashboardServer, browser: Browser
) -> None:
    # a token kept from before the secret was rotated
    now = int(time.time())
    stale = jwt.encode({"sub": "amy", "iat": now, "exp": now + 600}, "old-secret" * 4, algorithm="HS256")
    context = browser.new_context(locale="en-US")
    try:
        context.add_init_script(f"localStorage.setItem('legend.token', {stale!r})")
        page = open_dashboard(path="/dashboard", live=False, context=context, refused=USER_APIS)
        expect(page.locator("#signin-message")).to_have_text(
            "The server refused your token (invalid token: Signature verification failed). Sign in again."
        )
        assert page.watch.sockets == []  # type: ignore[attr-defined]
    finally:
        context.close()

    # a REST call refused while signed in (here: the token replaced behind the page's back) signs out too
    good = open_dashboard(path=f"/dashboard#token={create_token(server, 'amy')}", refused=USER_APIS)
    good.evaluate(f"localStorage.setItem('legend.token', {stale!r}); realtimeDashboard.loadRules()")
    expect(good.locator("#signin")).to_be_visible()
    expect(good.locator("#signin-message")).to_contain_text("The server refused your token")
    assert good.evaluate("realtimeDashboard.ws.state") == "closed"
