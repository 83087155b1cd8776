"""The watchlist and alert REST API over the real app (Litestar test client), on SQLite and PostgreSQL:
identity, per-user scoping, field-level errors with nothing half-written, and triggers listed afterwards."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import jwt
import pytest
from litestar.testing import AsyncTestClient

from legend.adapters.clock.frozen import FrozenClock
from legend.app import create_app
from legend.bootstrap import bootstrap
from legend.settings import AlertSettings, DatabaseSettings, SecuritySettings, Settings, WatchlistSettings

ADMIN = {"Authorization": "Bearer admin-secret"}
ALICE = {"X-User-Id": "alice"}
BOB = {"X-User-Id": "bob"}
JWT_SECRET = "a-test-secret-that-is-long-enough-for-hs256"

Client = AsyncTestClient[Any]


def settings_for(url: str, **security: Any) -> Settings:
    return Settings(
        database=DatabaseSettings(url=url),
        security=SecuritySettings(admin_token="admin-secret", **security),
        watchlist=WatchlistSettings(max_tickers=3),
        alerts=AlertSettings(max_rules_per_user=3),
    )


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    services = bootstrap(settings_for(database_url), clock=FrozenClock(), run_quote_poller=False)
    async with AsyncTestClient(
        create_app(services=services), base_url="http://legend.localhost"
    ) as test_client:
        yield test_client


def keys(response: Any) -> list[str]:
    body = response.json()
    assert body["status_code"] == response.status_code == 400, body
    return [item["key"] for item in body["extra"]]


# ───────────────────────────── identity ─────────────────────────────


async def test_jwt_mode_needs_a_valid_token_and_scopes_to_its_subject(database_url: str) -> None:
    settings = settings_for(database_url, auth="jwt", jwt_secret=JWT_SECRET)
    services = bootstrap(settings, clock=FrozenClock(), run_quote_poller=False)
    async with AsyncTestClient(create_app(services=services), base_url="http://legend.localhost") as client:
        for path in ("/api/watchlist", "/api/alerts/rules", "/api/alerts/events"):
            response = await client.get(path, headers=ALICE)  # the development header means nothing here
            assert response.status_code == 401
            assert (
                response.json()["detail"]
                == "authentication required: missing token: send Authorization: Bearer <JWT>"
            )
            assert response.headers["www-authenticate"].startswith("Bearer")
        forged = jwt.encode({"sub": "alice", "exp": time.time() + 60}, "x" * 40, algorithm="HS256")
        response = await client.get("/api/watchlist", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401 and "invalid token" in response.json()["detail"]
        token = jwt.encode({"sub": "alice", "exp": time.time() + 60}, JWT_SECRET, algorithm="HS256")
        bearer = {"Authorization": f"Bearer {token}"}
        assert (
            await client.post("/api/watchlist", json={"ticker": "aapl"}, headers=bearer)
        ).status_code == 201
        assert (await client.get("/api/watchlist", headers=bearer)).json()["tickers"] == ["AAPL"]


async def test_development_identity_comes_from_the_header_or_the_query(client: Client) -> None:
    await client.post("/api/watchlist", json={"ticker": "AAPL"}, headers=ALICE)
    assert (await client.get("/api/watchlist?user_id=alice")).json()["tickers"] == ["AAPL"]
    assert (await client.get("/api/watchlist", headers=BOB)).json()["tickers"] == []
    response = await client.get("/api/watchlist", headers={"X-User-Id": "no spaces allowed"})
    assert response.status_code == 401 and "invalid user_id" in response.json()["detail"]


# ───────────────────────────── watchlist ─────────────────────────────


async def test_watchlist_add_list_remove(client: Client) -> None:
    response = await client.post("/api/watchlist", json={"ticker": " aapl "}, headers=ALICE)
    assert response.status_code == 201
    assert response.json() == {"ticker": "AAPL", "added": True, "tickers": ["AAPL"]}
    response = await client.post("/api/watchlist", json={"ticker": "AAPL"}, headers=ALICE)
    assert response.status_code == 200 and response.json()["added"] is False
    await client.post("/api/watchlist", json={"ticker": "brk.b"}, headers=ALICE)
    assert (await client.get("/api/watchlist", headers=ALICE)).json() == {
        "tickers": ["AAPL", "BRK.B"],
        "max_tickers": 3,
    }
    assert (await client.delete("/api/watchlist/brk.b", headers=ALICE)).status_code == 204
    response = await client.delete("/api/watchlist/brk.b", headers=ALICE)
    assert response.status_code == 404 and response.json()["detail"] == "BRK.B is not on your watchlist"
    assert (await client.delete("/api/watchlist/AAPL", headers=BOB)).status_code == 404
    assert (await client.get("/api/watchlist", headers=ALICE)).json()["tickers"] == ["AAPL"]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"ticker": "$$$"}, "ticker"),
        ({"ticker": ""}, "ticker"),
        ({"ticker": "WAYTOOLONGTICKER"}, "ticker"),
        ({"ticker": 42}, "ticker"),
        ({}, "ticker"),
        ({"ticker": "AAPL", "note": "x"}, "note"),
    ],
)
async def test_bad_watchlist_input_is_a_field_error_and_writes_nothing(
    client: Client, body: Any, key: str
) -> None:
    response = await client.post("/api/watchlist", json=body, headers=ALICE)
    assert keys(response) == [key]
    assert (await client.get("/api/watchlist", headers=ALICE)).json()["tickers"] == []


async def test_a_bad_ticker_in_the_path_is_a_field_error(client: Client) -> None:
    response = await client.delete("/api/watchlist/$$", headers=ALICE)
    assert keys(response) == ["ticker"] and response.json()["extra"][0]["source"] == "path"


async def test_the_watchlist_is_capped(client: Client) -> None:
    for ticker in ("A", "B", "C"):
        assert (
            await client.post("/api/watchlist", json={"ticker": ticker}, headers=ALICE)
        ).status_code == 201
    response = await client.post("/api/watchlist", json={"ticker": "D"}, headers=ALICE)
    assert response.status_code == 409
    assert response.json()["detail"] == "watchlist is full: at most 3 tickers per user"
    assert response.json()["extra"][0]["key"] == "ticker"
    assert (await client.get("/api/watchlist", headers=ALICE)).json()["tickers"] == ["A", "B", "C"]
    assert (await client.post("/api/watchlist", json={"ticker": "D"}, headers=BOB)).status_code == 201


# ───────────────────────────── alert rules ─────────────────────────────

RULE = {"ticker": "aapl", "kind": "breakout", "threshold": 150, "rearm": "recross"}


async def test_rules_crud_is_scoped_to_the_caller(client: Client) -> None:
    response = await client.post("/api/alerts/rules", json=RULE, headers=ALICE)
    assert response.status_code == 201
    rule = response.json()
    assert {k: rule[k] for k in ("ticker", "kind", "threshold", "rearm", "cooldown_seconds", "armed")} == {
        "ticker": "AAPL",
        "kind": "breakout",
        "threshold": 150.0,
        "rearm": "recross",
        "cooldown_seconds": None,
        "armed": True,
    }
    assert (rule["condition_met"], rule["triggers"], rule["last_triggered_at"]) == (None, 0, None)
    assert rule["created_at"] == "2026-01-05T15:00:00.000Z"
    path = f"/api/alerts/rules/{rule['id']}"
    assert (await client.get(path, headers=ALICE)).json() == rule
    assert (await client.get("/api/alerts/rules", headers=ALICE)).json() == {"rules": [rule], "max_rules": 3}
    for call in (client.get(path, headers=BOB), client.patch(path, json={"threshold": 1}, headers=BOB)):
        response = await call
        assert response.status_code == 404 and response.json()["detail"] == f"no alert rule {rule['id']}"
    assert (await client.delete(path, headers=BOB)).status_code == 404
    assert (await client.get("/api/alerts/rules", headers=BOB)).json()["rules"] == []
    response = await client.patch(
        path, json={"threshold": 155.5, "rearm": "cooldown", "cooldown_seconds": 300}, headers=ALICE
    )
    assert response.status_code == 200
    assert {k: response.json()[k] for k in ("threshold", "rearm", "cooldown_seconds")} == {
        "threshold": 155.5,
        "rearm": "cooldown",
        "cooldown_seconds": 300.0,
    }
    assert (await client.delete(path, headers=ALICE)).status_code == 204
    assert (await client.get(path, headers=ALICE)).status_code == 404
    for missing in ("/api/alerts/rules/999999", "/api/alerts/rules/0", f"/api/alerts/rules/{2**40}"):
        assert (await client.get(missing, headers=ALICE)).status_code == 404


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({**RULE, "ticker": "??"}, ["ticker"]),
        ({**RULE, "kind": "price_sideways"}, ["kind"]),
        ({**RULE, "threshold": 0}, ["threshold"]),
        ({**RULE, "threshold": -150}, ["threshold"]),
        ({**RULE, "threshold": [150]}, ["threshold"]),
        ({**RULE, "threshold": 1e300 * 10}, ["threshold"]),
        ({**RULE, "kind": "volume_above", "threshold": 0.5}, ["threshold"]),
        ({**RULE, "kind": "change_percent_below", "threshold": -150}, ["threshold"]),
        ({**RULE, "rearm": "sometimes"}, ["rearm"]),
        ({**RULE, "rearm": "cooldown"}, ["cooldown_seconds"]),
        ({**RULE, "rearm": "cooldown", "cooldown_seconds": -5}, ["cooldown_seconds"]),
        ({**RULE, "cooldown_seconds": 60}, ["cooldown_seconds"]),
        ({**RULE, "armed": False}, ["armed"]),
        ({"kind": "breakout", "threshold": 150}, ["ticker"]),
        ({"ticker": "AAPL", "kind": "breakout"}, ["threshold"]),
        (
            {**RULE, "ticker": "$", "threshold": -1, "rearm": "cooldown"},
            ["ticker", "threshold", "cooldown_seconds"],
        ),
    ],
)
async def test_bad_rules_are_field_errors_and_write_nothing(
    client: Client, body: Any, expected: list[str]
) -> None:
    response = await client.post("/api/alerts/rules", json=body, headers=ALICE)
    assert keys(response) == expected
    assert (await client.get("/api/alerts/rules", headers=ALICE)).json()["rules"] == []


async def test_malformed_json_is_a_400(client: Client) -> None:
    response = await client.post(
        "/api/alerts/rules",
        content=b'{"ticker": "AAPL",',
        headers={**ALICE, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert (await client.get("/api/alerts/rules", headers=ALICE)).json()["rules"] == []


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"threshold": -1}, ["threshold"]),
        ({"kind": "volume_above"}, ["threshold"]),  # 150 shares is fine, but 150.5 is not: see below
        ({"rearm": "cooldown"}, ["cooldown_seconds"]),
        ({"cooldown_seconds": 30}, ["cooldown_seconds"]),
        ({"ticker": "NOT VALID"}, ["ticker"]),
        ({"armed": None}, ["armed"]),
        ({"owner": "bob"}, ["owner"]),
    ],
)
async def test_bad_patches_are_field_errors_and_change_nothing(
    client: Client, patch: Any, expected: list[str]
) -> None:
    rule = (await client.post("/api/alerts/rules", json={**RULE, "threshold": 150.5}, headers=ALICE)).json()
    path = f"/api/alerts/rules/{rule['id']}"
    assert keys(await client.patch(path, json=patch, headers=ALICE)) == expected
    assert (await client.get(path, headers=ALICE)).json() == rule


async def test_the_number_of_rules_is_capped(client: Client) -> None:
    for _ in range(3):
        assert (await client.post("/api/alerts/rules", json=RULE, headers=ALICE)).status_code == 201
    response = await client.post("/api/alerts/rules", json=RULE, headers=ALICE)
    assert (
        response.status_code == 409
        and response.json()["detail"] == "too many alert rules: at most 3 per user"
    )
    assert len((await client.get("/api/alerts/rules", headers=ALICE)).json()["rules"]) == 3


# ───────────────────────────── triggers ─────────────────────────────


async def broadcast(client: Client, *prices: float) -> None:
    """Publish prices, then wait until alerting has evaluated them (it runs beside the price stream)."""
    before = (await client.get("/api/ws/stats", headers=ADMIN)).json()["alerting"]["prices_evaluated"]
    for value in prices:
        response = await client.post(
            "/api/ws/broadcast/price", json={"ticker": "AAPL", "price": value}, headers=ADMIN
        )
        assert response.status_code == 200
    async with asyncio.timeout(10):
        while (await client.get("/api/ws/stats", headers=ADMIN)).json()["alerting"][
            "prices_evaluated"
        ] < before + len(prices):
            await asyncio.sleep(0.01)


async def test_events_list_the_callers_triggers_newest_first_in_pages(client: Client) -> None:
    rule = (await client.post("/api/alerts/rules", json=RULE, headers=ALICE)).json()
    await client.post("/api/alerts/rules", json={**RULE, "threshold": 500}, headers=BOB)
    await broadcast(client, 149, 151, 152, 149, 151.5, 148, 153)
    page = (await client.get("/api/alerts/events?limit=2", headers=ALICE)).json()
    assert [e["alert_id"] for e in page["events"]] == [f"{rule['id']}:3", f"{rule['id']}:2"]
    first = page["events"][0]
    assert {
        k: first[k]
        for k in ("ticker", "alert_type", "trigger_price", "current_price", "message", "published")
    } == {
        "ticker": "AAPL",
        "alert_type": "breakout",
        "trigger_price": 150.0,
        "current_price": 153.0,
        "message": "AAPL breaking out at $153.00 (target: $150.00)",
        "published": True,
    }
    rest = (
        await client.get(f"/api/alerts/events?limit=2&before={page['next_before']}", headers=ALICE)
    ).json()
    assert [e["alert_id"] for e in rest["events"]] == [f"{rule['id']}:1"] and rest["next_before"] is None
    assert (await client.get("/api/alerts/events", headers=BOB)).json() == {"events": [], "next_before": None}
    state = (await client.get(f"/api/alerts/rules/{rule['id']}", headers=ALICE)).json()
    assert (state["triggers"], state["condition_met"], state["armed"]) == (3, True, True)


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("before=0", "before"),
        ("before=2147483648", "before"),
        ("before=99999999999999999999", "before"),
        ("limit=x", "limit"),
    ],
)
async def test_bad_event_queries_are_field_errors(client: Client, query: str, key: str) -> None:
    assert keys(await client.get(f"/api/alerts/events?{query}", headers=ALICE)) == [key]


async def test_the_api_is_documented_under_its_tags(client: Client) -> None:
    paths = (await client.get("/docs/openapi.json")).json()["paths"]
    assert paths["/api/watchlist"]["post"]["tags"] == ["watchlist"]
    assert paths["/api/alerts/rules/{rule_id}"]["patch"]["tags"] == ["alerts"]
    assert paths["/api/alerts/events"]["get"]["tags"] == ["alerts"]


# ───────────────────────────── the kinds beyond a level (issue 20) ─────────────────────────────

# Validation is the same on every backend: these run on SQLite only (storage is covered on both above).
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

NEW_KINDS = [
    {"kind": "crossing", "threshold": 150},
    {"kind": "entering_channel", "lower": 140, "upper": 160},
    {"kind": "exiting_channel", "lower": 140, "upper": 160},
    {"kind": "moving_up", "threshold": 2.5, "window_seconds": 300},
    {"kind": "moving_down_percent", "threshold": 1.5, "window_seconds": 86400},
    {"kind": "sma_cross_up", "interval": "5m", "period": 20},
    {"kind": "sma_cross_down", "interval": "1d", "period": 200},
    {"kind": "volume_spike", "threshold": 3, "interval": "1m", "period": 2},
    {"kind": "price_above", "threshold": 150, "evaluate": "bar_close", "interval": "15m"},
]


@SQLITE_ONLY
@pytest.mark.parametrize("fields", NEW_KINDS, ids=[f"{f['kind']}-{f.get('interval', '')}" for f in NEW_KINDS])
async def test_every_kind_is_created_with_its_own_fields_and_listed_with_its_state(
    client: Client, fields: dict[str, Any]
) -> None:
    response = await client.post("/api/alerts/rules", json={"ticker": "aapl", **fields}, headers=ALICE)
    assert response.status_code == 201, response.text
    rule = response.json()
    for key, value in fields.items():
        assert rule[key] == value, key
    bars = fields["kind"].startswith(("sma", "volume_spike"))
    assert rule["evaluate"] == ("bar_close" if bars else fields.get("evaluate", "tick"))
    assert (rule["session"], rule["expires_at"], rule["armed"], rule["triggers"]) == (
        "regular",
        None,
        True,
        0,
    )
    assert rule["state"] in ("armed", "paused")  # paused outside the regular session
    assert rule["paused_by"] == (None if rule["state"] == "armed" else "outside_session")
    paused = (
        await client.patch(f"/api/alerts/rules/{rule['id']}", json={"armed": False}, headers=ALICE)
    ).json()
    assert (paused["state"], paused["paused_by"], paused["armed"]) == ("paused", "user", False)
    resumed = (
        await client.patch(
            f"/api/alerts/rules/{rule['id']}", json={"armed": True, "session": "any"}, headers=ALICE
        )
    ).json()
    assert (resumed["state"], resumed["paused_by"]) == ("armed", None)


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"kind": "entering_channel", "lower": 160, "upper": 140}, ["upper"]),
        ({"kind": "entering_channel", "lower": 150, "upper": 150}, ["upper"]),
        ({"kind": "exiting_channel", "lower": 140}, ["upper"]),
        ({"kind": "entering_channel", "lower": 140, "upper": 160, "threshold": 150}, ["threshold"]),
        ({"kind": "crossing", "threshold": 150, "lower": 1}, ["lower"]),
        ({"kind": "moving_up", "threshold": 1}, ["window_seconds"]),
        ({"kind": "moving_up", "threshold": 1, "window_seconds": 5}, ["window_seconds"]),
        ({"kind": "moving_up", "threshold": 1, "window_seconds": 86401}, ["window_seconds"]),
        ({"kind": "moving_up", "threshold": -1, "window_seconds": 60}, ["threshold"]),
        ({"kind": "moving_up_percent", "threshold": 0, "window_seconds": 60}, ["threshold"]),
        ({"kind": "sma_cross_up", "interval": "5m", "period": 1}, ["period"]),
        ({"kind": "sma_cross_up", "interval": "5m", "period": 201}, ["period"]),
        ({"kind": "sma_cross_up", "period": 20}, ["interval"]),
        ({"kind": "sma_cross_up", "interval": "5m", "period": 20, "evaluate": "tick"}, ["evaluate"]),
        ({"kind": "sma_cross_up", "interval": "2m", "period": 20}, ["interval"]),
        ({"kind": "volume_spike", "interval": "1m", "period": 20}, ["threshold"]),
        ({"kind": "price_above", "threshold": 150, "evaluate": "bar_close"}, ["interval"]),
        ({"kind": "price_above", "threshold": 150, "interval": "1m"}, ["interval"]),
        ({"kind": "price_above", "threshold": 150, "period": 3}, ["period"]),
        ({"kind": "price_above", "threshold": 150, "session": "lunch"}, ["session"]),
        ({"kind": "price_above", "threshold": 150, "expires_at": "2001-01-01T00:00:00Z"}, ["expires_at"]),
        ({"kind": "price_above", "threshold": 150, "expires_at": "tomorrow"}, ["expires_at"]),
    ],
)
async def test_bad_fields_of_the_new_kinds_are_named_and_write_nothing(
    client: Client, body: dict[str, Any], expected: list[str]
) -> None:
    response = await client.post("/api/alerts/rules", json={"ticker": "AAPL", **body}, headers=ALICE)
    assert response.status_code == 400, response.text
    assert keys(response) == expected
    assert (await client.get("/api/alerts/rules", headers=ALICE)).json()["rules"] == []


async def test_editing_a_rule_into_another_kind_keeps_only_what_the_new_kind_uses(client: Client) -> None:
    rule = (
        await client.post(
            "/api/alerts/rules",
            json={"ticker": "AAPL", "kind": "moving_up", "threshold": 2, "window_seconds": 60},
            headers=ALICE,
        )
    ).json()
    path = f"/api/alerts/rules/{rule['id']}"
    moved = await client.patch(
        path, json={"kind": "entering_channel", "lower": 10, "upper": 20}, headers=ALICE
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["threshold"], moved.json()["window_seconds"], moved.json()["lower"]) == (
        None,
        None,
        10,
    )
    sma = await client.patch(
        path, json={"kind": "sma_cross_up", "interval": "1h", "period": 50}, headers=ALICE
    )
    assert (sma.json()["evaluate"], sma.json()["lower"], sma.json()["upper"]) == ("bar_close", None, None)


async def test_an_expiry_shows_as_expired_once_it_passes(database_url: str) -> None:
    clock = FrozenClock()
    services = bootstrap(settings_for(database_url), clock=clock, run_quote_poller=False)
    async with AsyncTestClient(create_app(services=services), base_url="http://legend.localhost") as client:
        soon = (clock.now() + timedelta(minutes=1)).isoformat()
        body = {**RULE, "session": "any", "expires_at": soon}
        rule = (await client.post("/api/alerts/rules", json=body, headers=ALICE)).json()
        assert rule["state"] == "armed" and rule["expires_at"] is not None
        clock.advance(61)
        path = f"/api/alerts/rules/{rule['id']}"
        assert (await client.get(path, headers=ALICE)).json()["state"] == "expired"
        again = await client.patch(path, json={"armed": True}, headers=ALICE)  # needs a later expiry
        assert keys(again) == ["expires_at"]
        later = (clock.now() + timedelta(hours=1)).isoformat()
        armed = (await client.patch(path, json={"expires_at": later}, headers=ALICE)).json()
        assert (armed["state"], armed["armed"]) == ("armed", True)


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"kind": "crossing", "threshold": 150, "days": 31}, ["days"]),
        ({"kind": "crossing", "threshold": 150, "days": 0}, ["days"]),
        ({"kind": "entering_channel", "lower": 2, "upper": 1}, ["upper"]),
        ({"kind": "crossing", "threshold": 150, "id": 4}, ["id"]),
    ],
)
async def test_bad_previews_are_field_errors(
    client: Client, body: dict[str, Any], expected: list[str]
) -> None:
    response = await client.post("/api/alerts/preview", json={"ticker": "AAPL", **body}, headers=ALICE)
    assert response.status_code == 400, response.text
    assert keys(response) == expected


async def test_a_preview_without_stored_bars_evaluates_nothing_and_says_so(client: Client) -> None:
    response = await client.post("/api/alerts/preview", json={**RULE, "days": 30}, headers=ALICE)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "fires": [],
        "evaluated": {"bars": 0, "from": None, "to": None},
        "truncated": False,
    }
