"""Alert delivery to webhooks: how fast the queue hands stored triggers to real local receivers, and what a
dead receiver costs the others.

    python bench/bench_delivery.py [--triggers 2000] [--users 200] [--dead 20]

In-process, SQLite: ``--users`` users each with a webhook on a local receiver (``--dead`` of them never
answer: every attempt waits the 5 s timeout), ``--triggers`` triggers stored spread over them, then the
delivery loop runs (``NotificationService``, the real ``WebhookSender``) until every live receiver has its
triggers. Prints deliveries per second and the latency from the loop's start to each receipt (p50, p99),
with the dead receivers and without them, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from legend.adapters.clock.system import SystemClock
from legend.adapters.notify.webhook import WebhookSender
from legend.adapters.sql import Database, migrate
from legend.adapters.sql.notifications import SqlAlchemyNotificationRepository
from legend.adapters.sql.tables import alert_events
from legend.services.notifications.service import NotificationService
from tests.support.webhook_receiver import WebhookReceiver, delayed, status


async def run(triggers: int, users: int, dead: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        database = Database(f"sqlite+aiosqlite:///{folder}/bench.sqlite")
        await migrate.upgrade(database)
        repository = SqlAlchemyNotificationRepository(database)
        now = datetime.now(UTC)
        with WebhookReceiver(status(200)) as alive, WebhookReceiver(delayed(30.0, status(200))) as stuck:
            for n in range(users):
                receiver = stuck if n < dead else alive
                fields = {"url": receiver.url(f"/u{n}"), "secret": "s" * 16}
                await repository.add("webhook", f"user{n}", fields, now)
            async with database.write() as conn:
                await conn.execute(
                    alert_events.insert(),
                    [
                        {"alert_key": f"{k}:1", "rule_id": None, "generation": 1, "user_id": f"user{k % users}",
                         "ticker": "AAPL", "alert_type": "price_above", "threshold": 1.0, "value": 2.0,
                         "price": 2.0, "message": "AAPL above its alert level", "triggered_at": now}
                        for k in range(triggers)
                    ],
                )  # fmt: skip
            expected = sum(1 for k in range(triggers) if k % users >= dead)
            sender = WebhookSender(["127.0.0.0/8"], allow_http=True)
            service = NotificationService(repository, {"webhook": sender}, SystemClock(), instance_id="bench")
            started = time.monotonic()
            loop = asyncio.create_task(service.run())
            while len(alive.received) < expected and time.monotonic() - started < 120:  # noqa: ASYNC110 - a thread fills it
                await asyncio.sleep(0.01)
            elapsed = time.monotonic() - started
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
            await sender.close()
            latencies = sorted(r.at - started for r in alive.received)
        await database.close()
    return {
        "delivered": len(latencies),
        "seconds": elapsed,
        "per_second": len(latencies) / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", type=int, default=2000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--dead", type=int, default=20)
    args = parser.parse_args()
    print(
        f"Webhook delivery of {args.triggers} triggers to {args.users} users' receivers (SQLite, in-process)\n"
    )
    for dead in (0, args.dead):
        figures = asyncio.run(run(args.triggers, args.users, dead))
        print(f"{dead:>3} dead receivers: {figures['delivered']:.0f} delivered to the live ones in "
              f"{figures['seconds']:.2f} s ({figures['per_second']:.0f}/s), latency from the loop's start "
              f"p50 {figures['p50']:.2f} s, p99 {figures['p99']:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
