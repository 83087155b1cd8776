"""The app moves what start-up built out of the garbage collector's sight, and gives it back at shutdown
(docs/alerts.md, "Benchmark": a full collection over 100,000 loaded rules paused the loop for ~180 ms)."""

from __future__ import annotations

import gc
from pathlib import Path

from litestar.testing import AsyncTestClient

from legend.adapters.clock.frozen import FrozenClock
from legend.app import create_app
from legend.bootstrap import bootstrap
from legend.domain.alert_rules import AlertKind, AlertRule
from legend.settings import DatabaseSettings, Settings


async def test_start_up_freezes_the_heap_and_shutdown_unfreezes_it(tmp_path: Path) -> None:
    settings = Settings(database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend.db"))
    services = bootstrap(settings, clock=FrozenClock(), run_quote_poller=False)
    assert gc.get_freeze_count() == 0
    async with AsyncTestClient(create_app(services=services), base_url="http://legend.localhost") as client:
        assert gc.get_freeze_count() > 10_000  # the modules, the services, the loaded rules
        assert (await client.get("/health")).status_code == 200
    assert gc.get_freeze_count() == 0


def test_alert_rules_are_not_tracked_by_the_collector() -> None:
    clock = FrozenClock()
    rule = AlertRule(
        id=1,
        user_id="u",
        ticker="AAPL",
        kind=AlertKind.PRICE_ABOVE,
        threshold=1.0,
        created_at=clock.now(),
        updated_at=clock.now(),
    )
    assert not gc.is_tracked(rule)
