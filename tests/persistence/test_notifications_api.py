"""Alert delivery through the real app (Litestar test client, SQLite and PostgreSQL): destinations per user
under /api/notifications, refused forgeries, and a trigger that reaches a real local webhook receiver
once, signed, after it failed twice; the events listing says where each delivery stands."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from legend.adapters.clock.frozen import FrozenClock
from legend.app import create_app
from legend.bootstrap import bootstrap
from legend.notification_settings import NotificationSettings
from legend.settings import DatabaseSettings, SecuritySettings, Settings
from tests.support.webhook_receiver import WebhookReceiver, status, verify_signature

Client = AsyncTestClient[Any]
ALICE = {"X-User-Id": "alice"}
BOB = {"X-User-Id": "bob"}
ADMIN = {"Authorization": "Bearer admin-secret"}
SECRET = "a-secret-of-sixteen+"


def settings_for(url: str, **notifications: Any) -> Settings:
    return Settings(
        database=DatabaseSettings(url=url),
        security=SecuritySettings(admin_token="admin-secret"),
        notifications=NotificationSettings(interval=0.05, **notifications),
    )


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    services = bootstrap(settings_for(database_url), clock=FrozenClock(), run_quote_poller=False)
    async with AsyncTestClient(
        create_app(services=services), base_url="http://legend.localhost"
    ) as test_client:
        yield test_client


def keys(response: Any) -> list[str]:
    assert response.status_code == 400, response.text
    return [item["key"] for item in response.json()["extra"]]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the guard is the same on every backend
@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost/hook",
        "http://hooks.example.com/hook",  # http:// is not allowed here
        "https://user:pass@hooks.example.com/hook",
    ],
)
async def test_a_webhook_the_server_must_not_call_is_refused_and_not_stored(client: Client, url: str) -> None:
    response = await client.post(
        "/api/notifications/webhooks", json={"url": url, "secret": SECRET}, headers=ALICE
    )
    assert keys(response) == ["url"]
    assert "refused" in response.json()["extra"][0]["message"]
    assert (await client.get("/api/notifications", headers=ALICE)).json()["webhooks"] == []


async def test_destinations_are_listed_tested_and_removed_by_their_owner_only(client: Client) -> None:
    hook = await client.post(
        "/api/notifications/webhooks",
        json={"url": "https://hooks.example.com/a", "secret": SECRET},
        headers=ALICE,
    )
    assert hook.status_code == 201, hook.text
    assert "secret" not in hook.json()
    mail = await client.post("/api/notifications/email", json={"address": "alice@example.com"}, headers=ALICE)
    assert mail.status_code == 201
    assert keys(
        await client.post("/api/notifications/email", json={"address": "a@b\r\nBcc: x@y"}, headers=ALICE)
    ) == ["address"]
    listing = (await client.get("/api/notifications", headers=ALICE)).json()
    assert [w["url"] for w in listing["webhooks"]] == ["https://hooks.example.com/a"]
    assert [e["address"] for e in listing["email"]] == ["alice@example.com"]
    assert "webhook" in listing["channels"] and "push" in listing["channels"]
    assert (await client.get("/api/notifications", headers=BOB)).json()["webhooks"] == []
    hook_id = hook.json()["id"]
    assert (await client.delete(f"/api/notifications/webhooks/{hook_id}", headers=BOB)).status_code == 404
    assert (await client.post(f"/api/notifications/webhooks/{hook_id}/test", headers=BOB)).status_code == 404
    assert (await client.delete(f"/api/notifications/webhooks/{hook_id}", headers=ALICE)).status_code == 204
    assert (await client.get("/api/notifications", headers=ALICE)).json()["webhooks"] == []


async def test_the_push_key_is_a_p256_point_and_the_same_after_a_restart(database_url: str) -> None:
    found = []
    for _ in range(2):
        services = bootstrap(settings_for(database_url), clock=FrozenClock(), run_quote_poller=False)
        async with AsyncTestClient(
            create_app(services=services), base_url="http://legend.localhost"
        ) as client:
            found.append(
                (await client.get("/api/notifications/push/key", headers=ALICE)).json()["public_key"]
            )
    import base64

    raw = base64.urlsafe_b64decode(found[0] + "=" * (-len(found[0]) % 4))
    assert len(raw) == 65 and raw[0] == 4 and found[0] == found[1]


async def test_a_trigger_reaches_a_webhook_once_signed_after_two_failures(database_url: str) -> None:
    with WebhookReceiver(status(500), status(503), status(200)) as receiver:
        settings = settings_for(database_url, allow_networks=["127.0.0.0/8"], allow_http=True)
        clock = FrozenClock()
        services = bootstrap(settings, clock=clock, run_quote_poller=False)
        async with AsyncTestClient(
            create_app(services=services), base_url="http://legend.localhost"
        ) as client:
            hook = await client.post(
                "/api/notifications/webhooks", json={"url": receiver.url(), "secret": SECRET}, headers=ALICE
            )
            assert hook.status_code == 201, hook.text
            rule = {
                "ticker": "AAPL",
                "kind": "price_above",
                "threshold": 100,
                "session": "any",
                "notify": ["webhook"],
            }
            assert (await client.post("/api/alerts/rules", json=rule, headers=ALICE)).status_code == 201
            for price in (99.0, 101.0):
                sent = await client.post(
                    "/api/ws/broadcast/price", json={"ticker": "AAPL", "price": price}, headers=ADMIN
                )
                assert sent.status_code == 200, sent.text
            for _ in range(200):  # the first attempt, then two retries on the schedule (the clock moves them)
                await asyncio.sleep(0.05)
                clock.advance(30)
                if len(receiver.received) >= 3:
                    break
            await asyncio.sleep(0.3)
            assert len(receiver.received) == 3  # 500, 503, then 200: never again after it
            final = receiver.received[-1]
            assert verify_signature(SECRET, final.body, final.headers["x-legend-signature"], tolerance=10**9)
            body = json.loads(final.body)
            assert body["ticker"] == "AAPL" and body["alert_type"] == "price_above"
            assert final.headers["idempotency-key"] == body["alert_id"]
            [event] = (await client.get("/api/alerts/events", headers=ALICE)).json()["events"]
            [delivery] = event["deliveries"]
            assert (delivery["channel"], delivery["state"], delivery["attempts"]) == (
                "webhook",
                "delivered",
                3,
            )
            assert delivery["delivered_at"] is not None
            metrics = (await client.get("/metrics", headers=ADMIN)).text
            assert 'legend_alert_delivery_attempts_total{channel="webhook"} 3.0' in metrics, metrics[-2000:]
            assert 'legend_alert_delivery_failures_total{channel="webhook"} 2.0' in metrics
