"""REST request limits on a real ``legend serve``: a user's or an address's loop on ``/api/*`` gets 429 with
``Retry-After``, other users and the admin token go on, and the probes, metrics, docs and static files
are never limited. With the default limits, a dashboard loading is far from them and a loop is not."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.server import ADMIN_TOKEN, LegendServer

PER_USER = {"api_rate": 2, "api_burst": 5, "api_address_rate": 0}
PER_ADDRESS = {"api_rate": 0, "api_address_rate": 2, "api_address_burst": 5}
# what the dashboard asks for when it loads (web/static/js/dashboard/*.js)
DASHBOARD_LOAD = [
    "/api/auth/config",
    "/api/auth/me",
    "/api/watchlist",
    "/api/alerts/rules",
    "/api/alerts/events?limit=50",
]
UNLIMITED = ["/health", "/ready", "/docs/openapi.json", "/dashboard", "/static/js/realtime-dashboard.js"]


def serve(security: dict[str, object] | None = None) -> Iterator[LegendServer]:
    with LegendServer({"security": security or {}}) as srv:
        yield srv


@pytest.fixture(scope="module")
def per_user() -> Iterator[LegendServer]:
    yield from serve(PER_USER)


@pytest.fixture(scope="module")
def per_address() -> Iterator[LegendServer]:
    yield from serve(PER_ADDRESS)


@pytest.fixture(scope="module")
def defaults() -> Iterator[LegendServer]:
    yield from serve()


def loop(client: httpx.Client, path: str, count: int, **headers: str) -> tuple[list[httpx.Response], float]:
    """``count`` requests, four at a time: a loop faster than the bucket refills even on a busy machine
    (one at a time, a loaded run once took over half a second per request, the refill interval)."""
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: client.get(path, headers=headers), range(count)))
    return answers, time.monotonic() - started


def check_refusal(answer: httpx.Response, who: str) -> None:
    assert answer.status_code == 429, answer.text
    assert int(answer.headers["Retry-After"]) >= 1
    body = answer.json()
    assert body["status_code"] == 429 and f"too many requests {who}" in body["detail"], body


def test_a_users_loop_is_refused_and_other_users_go_on(per_user: LegendServer) -> None:
    with httpx.Client(base_url=per_user.url, timeout=10) as client:
        answers, elapsed = loop(client, "/api/watchlist", 40, **{"X-User-Id": "looper"})
        ok = [a for a in answers if a.status_code == 200]
        assert len(ok) >= 5  # the burst
        assert len(ok) <= 5 + 2 * elapsed + 1
        check_refusal(next(a for a in answers if a.status_code != 200), "for this user")
        # another user, same address: unaffected; the identity-free endpoints too
        assert client.get("/api/watchlist", headers={"X-User-Id": "calm"}).status_code == 200
        assert client.get("/api/market/status").status_code == 200
        # the admin token (automation, the fuzzer) is not limited, whoever it acts as
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}", "X-User-Id": "looper"}
        assert all(a.status_code == 200 for a in loop(client, "/api/watchlist", 20, **admin)[0])
        for path in UNLIMITED:
            assert client.get(path).status_code == 200, path


def test_an_addresss_loop_is_refused_but_not_the_admin_nor_the_probes(per_address: LegendServer) -> None:
    with httpx.Client(base_url=per_address.url, timeout=10) as client:
        answers, elapsed = loop(client, "/api/auth/config", 40)
        assert sum(a.status_code == 200 for a in answers) >= 5  # the burst
        assert sum(a.status_code == 200 for a in answers) <= 5 + 2 * elapsed + 1
        check_refusal(next(a for a in answers if a.status_code != 200), "from your address")
        # another user, same address
        others, _ = loop(client, "/api/watchlist", 8, **{"X-User-Id": "someone"})
        check_refusal(next(a for a in others if a.status_code != 200), "from your address")
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert all(a.status_code == 200 for a in loop(client, "/api/ws/stats", 30, **admin)[0])
        for path in UNLIMITED:
            assert client.get(path).status_code == 200, path
        metrics = client.get("/metrics", headers=admin)
        assert metrics.status_code == 200
        limited = re.search(
            r'^legend_api_requests_limited_total\{limit="address"\} (\S+)$', metrics.text, re.M
        )
        assert limited and float(limited.group(1)) >= 30


def test_the_default_limits_let_dashboards_load_and_stop_a_loop(defaults: LegendServer) -> None:
    with httpx.Client(base_url=defaults.url, timeout=10) as client:
        for reload in range(5):  # five users loading the dashboard from one address at once
            for path in DASHBOARD_LOAD:
                answer = client.get(path, headers={"X-User-Id": f"trader{reload}"})
                assert answer.status_code == 200, (path, answer.text)
        # a script looping on 8 connections at once: hundreds of requests a second, even on a busy machine
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda _: client.get("/api/watchlist", headers={"X-User-Id": "script"}), range(400))
            )
        elapsed = time.monotonic() - started
        refused = [a for a in answers if a.status_code == 429]
        assert refused, f"400 requests in {elapsed:.1f} s all went through"
        assert sum(a.status_code == 200 for a in answers) <= 60 + 20 * elapsed + 1
