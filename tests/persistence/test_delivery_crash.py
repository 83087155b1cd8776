"""A SIGKILL of the sender in the middle of a delivery's retries: a real ``legend serve`` (SQLite, the
embedded default) whose webhook receiver answered 503 is killed while the delivery waits for its retry; the
restarted server resumes it and the receiver gets the trigger once more, with the same alert id, and never
again after its 200."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx

from tests.cluster.conftest import until
from tests.support.server import LegendServer
from tests.support.webhook_receiver import WebhookReceiver, status, verify_signature

SECRET = "a-secret-of-sixteen+"
ALICE = {"X-User-Id": "alice"}


async def test_a_sender_killed_mid_retry_resumes_after_the_restart_with_no_duplicate(tmp_path: Path) -> None:
    with WebhookReceiver(status(503), status(200)) as receiver:
        server = LegendServer(
            {
                "database": {"data_dir": str(tmp_path / "data")},
                "quotes": {"provider": "replay"},
                "realtime": {"update_interval": 3600, "after_hours_interval": 3600},
                "notifications": {"allow_networks": ["127.0.0.0/8"], "allow_http": True, "interval": 0.1},
            }
        )
        try:
            server.start(timeout=60)
            async with httpx.AsyncClient(timeout=10) as http:
                hook = await http.post(
                    f"{server.url}/api/notifications/webhooks",
                    json={"url": receiver.url(), "secret": SECRET},
                    headers=ALICE,
                )
                assert hook.status_code == 201, hook.text
                rule = {"ticker": "CRSH", "kind": "price_above", "threshold": 100, "session": "any"}
                assert (
                    await http.post(f"{server.url}/api/alerts/rules", json=rule, headers=ALICE)
                ).status_code == 201
                for value in (99.0, 101.0):
                    sent = await http.post(
                        f"{server.url}/api/ws/broadcast/price",
                        json={"ticker": "CRSH", "price": value},
                        headers=server.admin,
                    )
                    assert sent.status_code == 200, sent.text

                async def first_attempt() -> bool | None:
                    return True if receiver.received else None

                await until(first_attempt, timeout=30, what="the first attempt (answered 503)")
                await asyncio.sleep(0.3)  # its outcome stored: retrying in 2.5 to 5 s
                server.stop(signal.SIGKILL)
                assert len(receiver.received) == 1
                server.start(timeout=60)  # on the same data: the retry is due soon

                async def delivered() -> dict[str, object] | None:
                    events = (await http.get(f"{server.url}/api/alerts/events", headers=ALICE)).json()[
                        "events"
                    ]
                    states = [d for e in events for d in e["deliveries"]]
                    return states[0] if states and states[0]["state"] == "delivered" else None

                delivery, _ = await until(
                    delivered, timeout=30, what="the delivery resumed after the restart"
                )
                await asyncio.sleep(1.0)  # nothing more comes
                assert delivery["attempts"] == 2 and len(receiver.received) == 2
                first, second = (json.loads(r.body) for r in receiver.received)
                assert first["alert_id"] == second["alert_id"]
                last = receiver.received[-1]
                assert verify_signature(SECRET, last.body, last.headers["x-legend-signature"])
        finally:
            server.close()
