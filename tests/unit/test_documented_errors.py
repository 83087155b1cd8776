"""Error texts the README and docs/ quote are the ones users really get: each is produced here and looked
up, verbatim, in the page that quotes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.quotes import build_provider
from legend.app import create_app
from legend.bootstrap import bootstrap
from legend.settings import (
    DatabaseSettings,
    QuotesReplaySettings,
    QuotesSettings,
    SecuritySettings,
    Settings,
    SettingsError,
)
from tests.support.server import run_legend

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PROVIDERS = (ROOT / "docs" / "providers.md").read_text(encoding="utf-8")


def test_the_readme_quotes_the_settings_error_of_the_cli(tmp_path: Path) -> None:
    (tmp_path / "legend.toml").write_text("[realtime]\nmax_subscriptions = 0\n")
    result = run_legend("serve", "--config", "legend.toml", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert (
        line == "legend: settings error: legend.toml: Expected `int` >= 1 - at `$.realtime.max_subscriptions`"
    )
    assert line in README


async def test_the_readme_quotes_the_answer_to_a_bad_broadcast(tmp_path: Path) -> None:
    settings = Settings(
        security=SecuritySettings(admin_token="admin-secret"),
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend.db"),
    )
    services = bootstrap(settings, clock=FrozenClock(), run_quote_poller=False)
    body = {"ticker": "AAPL", "price": 0, "change": 0, "change_percent": 0, "volume": 1}
    body |= {"high": 1, "low": 1, "open_price": 1}
    async with AsyncTestClient(create_app(services=services), base_url="http://legend.localhost") as client:
        response = await client.post(
            "/api/ws/broadcast/price", json=body, headers={"Authorization": "Bearer admin-secret"}
        )
    assert response.status_code == 400
    (problem,) = response.json()["extra"]
    assert json.dumps(problem) in README


def test_the_provider_guide_quotes_the_replay_header_error(tmp_path: Path) -> None:
    csv = tmp_path / "prices.csv"
    csv.write_text("Date,Price,Volume\n2019-11-05,1.0,10\n")
    quotes = QuotesSettings(provider="replay", replay=QuotesReplaySettings(files={"SPX": str(csv)}))
    with pytest.raises(SettingsError) as raised:
        build_provider(quotes, FrozenClock())
    message = str(raised.value)
    assert message.startswith(f"quotes.replay.files.SPX: {csv} line 1: ")
    assert message.removeprefix(f"quotes.replay.files.SPX: {csv}") in PROVIDERS
