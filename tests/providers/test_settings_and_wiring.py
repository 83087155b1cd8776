"""``[quotes]`` settings (validated, unknown keys rejected, backward compatible) and ``build_provider``."""

from __future__ import annotations

import csv
import tomllib
from datetime import date
from pathlib import Path

import msgspec
import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.quotes import ReplayQuoteProvider, build_provider
from legend.adapters.quotes.replay import SAMPLE_FILE
from legend.adapters.quotes.simulated import SimulatedQuoteProvider
from legend.settings import QuotesReplayFile, QuotesSettings, Settings, SettingsError, load_settings

SHARED_SP500 = Path("/work/shared/data/SP500_NOV2019_IDay.csv")


def quotes(raw: dict[str, object]) -> QuotesSettings:
    return msgspec.convert(raw, QuotesSettings, strict=False)


def settings_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "legend.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_defaults_are_unchanged_and_build_the_simulated_provider() -> None:
    quotes = Settings().quotes
    assert (quotes.provider, quotes.seed) == ("simulated", 42)
    clock = FrozenClock()
    provider = build_provider(quotes, clock, environ={})
    assert isinstance(provider, SimulatedQuoteProvider)
    assert await provider.fetch(["AAPL"]) == await SimulatedQuoteProvider(seed=42, clock=clock).fetch(
        ["AAPL"]
    )
    seeded = build_provider(QuotesSettings(seed=7), clock, environ={})
    assert await seeded.fetch(["AAPL"]) == await SimulatedQuoteProvider(seed=7, clock=clock).fetch(["AAPL"])


def test_the_replay_table_is_read_and_validated(tmp_path: Path) -> None:
    path = settings_file(
        tmp_path,
        """
[quotes]
provider = "replay"

[quotes.replay]
files = { spx = "/data/SP500_NOV2019_IDay.csv", AAPL = { path = "/data/aapl.csv", start = 2017-01-03 } }
speed = 2.5
advance = "time"
loop = false
start = 2019-11-06
""",
    )
    replay = load_settings(path, environ={}).quotes.replay
    assert replay.files == {
        "SPX": "/data/SP500_NOV2019_IDay.csv",
        "AAPL": QuotesReplayFile(path="/data/aapl.csv", start=date(2017, 1, 3)),
    }
    assert (replay.speed, replay.advance, replay.loop, replay.start) == (
        2.5,
        "time",
        False,
        date(2019, 11, 6),
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[quotes.replay]\nspeeed = 2", "Object contains unknown field `speeed` - at `$.quotes.replay`"),
        ("[quotes.replay]\nspeed = 0", "Expected `float` > 0.0 - at `$.quotes.replay.speed`"),
        ("[quotes.replay]\nadvance = \"poll\"", "Invalid enum value 'poll' - at `$.quotes.replay.advance`"),
        ("[quotes.replay]\nfiles = { \"S P\" = \"x.csv\" }", "files: Invalid ticker: 'S P' - at `$.quotes.replay`"),
        ("[quotes.replay]\ntimezone = \"Mars/Olympus\"", "unknown time zone 'Mars/Olympus'"),
        ("[quotes.finnhub]\napi_kee = \"x\"", "Object contains unknown field `api_kee` - at `$.quotes.finnhub`"),
        ("[quotes.alpaca]\nfeed = \"nasdaq\"", "Invalid enum value 'nasdaq' - at `$.quotes.alpaca.feed`"),
        ("[quotes.alpaca]\nbase_url = \"data.alpaca.markets\"", "base_url: expected an http:// or https:// URL"),
        ("[quotes]\nprovider = \"\"", "Expected `str` matching regex"),
    ],
)  # fmt: skip
def test_a_wrong_key_or_value_stops_the_start_with_its_path(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(settings_file(tmp_path, table), environ={})
    assert message in str(error.value)


def test_an_unknown_provider_name_stops_the_start_when_the_provider_is_built() -> None:
    settings = quotes({"provider": "bloomberg"})  # a plugin could register it: the name is checked here
    with pytest.raises(SettingsError) as error:
        build_provider(settings, FrozenClock(), environ={})
    assert str(error.value) == (
        "quotes.provider: no provider named 'bloomberg' (built in: simulated, replay, finnhub, alpaca; "
        "from plugins: none)"
    )


def test_provider_tables_can_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "LEGEND_QUOTES__PROVIDER": "alpaca",
        "LEGEND_QUOTES__ALPACA": '{"feed": "sip", "max_symbols_per_request": 50}',
    }
    quotes = load_settings(None, environ=env).quotes
    assert (quotes.provider, quotes.alpaca.feed, quotes.alpaca.max_symbols_per_request) == (
        "alpaca",
        "sip",
        50,
    )


async def test_replay_without_files_replays_the_bundled_sp500_sample() -> None:
    provider = build_provider(QuotesSettings(provider="replay"), FrozenClock(), environ={})
    assert isinstance(provider, ReplayQuoteProvider) and provider.tickers == ["SPX"]
    if SHARED_SP500.exists():
        assert SAMPLE_FILE.read_bytes() == SHARED_SP500.read_bytes()
    with SAMPLE_FILE.open(newline="") as file:
        first = next(csv.DictReader(file))
    [quote] = await provider.fetch(["SPX", "AAPL"])
    assert (quote.price, quote.open, quote.high, quote.low) == tuple(
        float(first[k]) for k in ("Close", "Open", "High", "Low")
    )


def test_a_missing_or_unreadable_replay_file_stops_the_start(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("when,price\n2020-01-02,1\n", encoding="utf-8")
    with pytest.raises(SettingsError) as error:
        build_provider(
            quotes({"provider": "replay", "replay": {"files": {"X": str(tmp_path / "none.csv")}}}),
            FrozenClock(),
            environ={},
        )
    assert str(error.value) == f"quotes.replay.files.X: {tmp_path / 'none.csv'}: file not found"
    with pytest.raises(
        SettingsError, match=r"quotes.replay.files.Y: .*wrong.csv line 1: no Date \(or Datetime"
    ):
        build_provider(
            quotes({"provider": "replay", "replay": {"files": {"Y": str(wrong)}}}), FrozenClock(), environ={}
        )


def test_the_vendor_adapters_dependency_is_declared() -> None:
    """The wheel's contents (providers and the bundled sample) are checked in tests/packaging."""
    project = tomllib.loads(
        (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    )
    assert any(dep.startswith("httpx") for dep in project["project"]["dependencies"])
