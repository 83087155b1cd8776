"""Settings choose which plugins run and carry each plugin's table, validated by the plugin; a bad key stops
the start with its path, like any other settings error. The kill switch blocks plugins before import."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from legend.bootstrap import Services
from legend.plugins.manager import PluginManager
from legend.settings import SettingsError, load_settings
from tests.support.server import run_legend

from .helpers import settings_with, toml
from .samples import echo

Build = Callable[..., Services]


def manager(
    plugins: Mapping[str, Any], environ: Mapping[str, str] | None = None, **kwargs: Any
) -> PluginManager:
    return PluginManager.from_settings(settings_with(plugins), environ=environ or {}, **kwargs)


def states(found: PluginManager) -> dict[str, str]:
    return {name: record.state.value for name, record in found.records.items()}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"news": {"feds": []}}, "[plugins.news] unknown setting `feds` - at `$.plugins.news.feds`"),
        (
            {"news": {"feeds": [{"url": "https://example.com/rss", "poll_interval": "often"}]}},
            "Expected `float`, got `str` - at `$.plugins.news.feeds[0].poll_interval`",
        ),
        (
            {"news": {"feeds": [{"url": "https://example.com/rss", "kind": "xml"}]}},
            "Invalid enum value 'xml' - at `$.plugins.news.feeds[0].kind`",
        ),
        (
            {"news": {"feeds": [{"url": "ftp://example.com/rss"}]}},
            "feed url must be http:// or https://, not 'ftp://example.com/rss' - at `$.plugins.news.feeds[0]`",
        ),
        (
            {"portfolio": {"update_interval": 0}},
            "Expected `float` > 0.0 - at `$.plugins.portfolio.update_interval`",
        ),
        ({"newz": {}}, "[plugins.newz] there is no plugin named 'newz'"),
        ({"enabled": ["news", "sentimnt"]}, "enabled names 'sentimnt', which is not installed"),
        ({"enabled": "news"}, "Expected `array | null`, got `str` - at `$.plugins.enabled`"),
        ({"enable": ["news"]}, "[plugins] unknown setting `enable`"),
        ({"hook_timeout": -1}, "Expected `float` > 0.0 - at `$.plugins.hook_timeout`"),
        (
            {"enabled": ["echo"], "echo": {"greeting": 3}},
            "Expected `str`, got `int` - at `$.plugins.echo.greeting`",
        ),
        # installed but not enabled: the table is validated all the same
        (
            {"sentiment": {"tickrs": ["AAPL"]}},
            "[plugins.sentiment] unknown setting `tickrs` - at `$.plugins.sentiment.tickrs`",
        ),
        (
            {"enabled": ["news"], "echo": {"interval": -1}},
            "[plugins.echo] Expected `float` > 0.0 - at `$.plugins.echo.interval`",
        ),
        (
            {"enabled": [], "modules": {"raising": "tests.plugins.samples.raising"}, "raising": {"x": 1}},
            "[plugins.raising] plugin raising takes no settings - at `$.plugins.raising`",
        ),
    ],
)
def test_invalid_plugin_settings_stop_the_start_with_the_path(table: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        manager(table, overrides={"echo": echo})
    assert message in str(caught.value)


def test_a_plugin_that_is_not_enabled_keeps_a_valid_table_unused() -> None:
    found = manager({"enabled": ["news"], "echo": {"greeting": "hi"}}, overrides={"echo": echo})
    echoed = found.records["echo"]
    assert echoed.state.value == "disabled" and echoed.config is None and echoed.errors == 0


def test_a_broken_schema_of_a_plugin_that_is_not_enabled_is_logged_not_fatal() -> None:
    import types

    from legend.plugins import hookimpl

    @hookimpl
    def config_schema() -> type:
        raise RuntimeError("schema exploded")

    plugin = types.SimpleNamespace(config_schema=config_schema)
    found = manager({"enabled": ["news"], "idle": {"x": 1}}, overrides={"idle": plugin})
    idle = found.records["idle"]
    assert (
        idle.state.value == "disabled" and idle.last_error == "config_schema: RuntimeError: schema exploded"
    )


def test_a_settings_file_with_a_bad_plugin_key_stops_legend_serve(tmp_path: Path) -> None:
    config = tmp_path / "legend.toml"
    config.write_text(toml({"plugins.portfolio": {"max_positons": 5}}), encoding="utf-8")
    done = run_legend("serve", "--config", str(config), "--port", "0")
    assert done.returncode == 2
    assert "settings error: [plugins.portfolio] unknown setting `max_positons`" in done.stderr
    assert "$.plugins.portfolio.max_positons" in done.stderr


def test_environment_overrides_reach_plugin_tables() -> None:
    settings = load_settings(environ={"LEGEND_PLUGINS__PORTFOLIO": '{"max_positions": 7}'})
    found = PluginManager.from_settings(settings, environ={})
    assert found.records["portfolio"].config.max_positions == 7


def test_by_default_the_builtins_run_and_installed_third_party_plugins_wait_to_be_enabled() -> None:
    found = manager({})
    assert states(found)["news"] == states(found)["portfolio"] == "enabled"
    assert states(found).get("sentiment") == "disabled"  # installed (examples/legend-sentiment), not enabled
    chosen = manager({"enabled": ["portfolio", "sentiment"]})
    assert (states(chosen)["news"], states(chosen)["portfolio"], states(chosen)["sentiment"]) == (
        "disabled",
        "enabled",
        "enabled",
    )
    assert states(manager({"enabled": []})) == {name: "disabled" for name in states(found)}


def test_the_kill_switch_blocks_plugins_before_they_are_imported() -> None:
    table = {"modules": {"boom": "tests.plugins.samples.import_boom"}}
    broken = manager(table)
    assert states(broken)["boom"] == "failed" and "cannot even be imported" in (
        broken.records["boom"].last_error or ""
    )
    found = manager(table, environ={"LEGEND_DISABLED_PLUGINS": "boom, news"})
    assert states(found)["boom"] == "blocked" and states(found)["news"] == "blocked"
    assert found.records["boom"].errors == 0 and found.records["boom"].hooks == []
    assert found.pm.is_blocked("news") and states(found)["portfolio"] == "enabled"


async def test_blocked_plugins_add_nothing_to_the_server(build: Build) -> None:
    blocked = PluginManager.from_settings(settings_with({}), environ={"LEGEND_DISABLED_PLUGINS": "news"})
    services = build(plugin_manager=blocked)
    assert "news" not in services.registry.names() and "portfolio" in services.registry.names()


def _cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_legend("plugins", "list", *args, env=env)


def test_legend_plugins_list(tmp_path: Path) -> None:
    config = tmp_path / "legend.toml"
    config.write_text(
        toml(
            {
                "plugins": {
                    "enabled": ["news", "sentiment"],
                    "modules": {"raising": "tests.plugins.samples.raising"},
                }
            }
        ),
        encoding="utf-8",
    )
    done = _cli("--config", str(config), env={"LEGEND_DISABLED_PLUGINS": "portfolio"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "STATE", "ERRORS", "SOURCE", "HOOKS"]
    rows = {
        line.split()[0]: line.split()
        for line in lines[1:]
        if line and not line.startswith(("blocked", "raising:"))
    }
    assert rows["news"][1:4] == ["0.1.0", "enabled", "0"]
    assert rows["portfolio"][2] == "blocked"
    assert rows["sentiment"][1:3] == ["0.1.0", "enabled"] and "register_feeds" in " ".join(rows["sentiment"])
    assert rows["raising"][2] == "disabled"  # not in `enabled`; register hooks never ran
    assert "blocked by LEGEND_DISABLED_PLUGINS: portfolio" in done.stdout

    as_json = json.loads(_cli("--config", str(config), "--json").stdout)
    sentiment = next(p for p in as_json["plugins"] if p["name"] == "sentiment")
    assert sentiment["source"] == "entry point (legend-sentiment 0.1.0)" and sentiment["state"] == "enabled"


def test_legend_plugins_list_shows_a_bad_table_and_fails_as_serve_would(tmp_path: Path) -> None:
    config = tmp_path / "legend.toml"
    config.write_text(toml({"plugins.news": {"feeds": "nope"}}), encoding="utf-8")
    done = _cli("--config", str(config))
    assert done.returncode == 2  # as `legend serve` with this file
    assert (
        "news: last error: settings: [plugins.news] Expected `array`, got `str` - at `$.plugins.news.feeds`"
        in done.stdout
    )
    assert done.stderr.splitlines()[-2:] == [
        "legend: settings error: [plugins.news] Expected `array`, got `str` - at `$.plugins.news.feeds`",
        "legend: `legend serve` refuses to start with these settings",
    ]
    as_json = _cli("--config", str(config), "--json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["settings_errors"] == [
        "[plugins.news] Expected `array`, got `str` - at `$.plugins.news.feeds`"
    ]


def test_legend_plugins_list_reports_every_error_serve_would_stop_at(tmp_path: Path) -> None:
    config = tmp_path / "legend.toml"
    config.write_text(
        toml(
            {
                "quotes": {"provider": "cannd"},
                "plugins": {"modules": {"echo": "tests.plugins.samples.echo"}},
                "plugins.sentiment": {"tickrs": []},  # installed, not enabled: checked all the same
                "plugins.newz": {},
            }
        ),
        encoding="utf-8",
    )
    done = _cli("--config", str(config))
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("legend: settings error: ")]
    assert errors == [
        "legend: settings error: [plugins.newz] there is no plugin named 'newz' (installed: echo, news, "
        "portfolio, scanner, sentiment) - at `$.plugins.newz`",
        "legend: settings error: [plugins.sentiment] unknown setting `tickrs` - at `$.plugins.sentiment.tickrs`",
        "legend: settings error: quotes.provider: no provider named 'cannd' (built in: simulated, replay, "
        "finnhub, alpaca; from plugins: canned (plugin echo)); did you mean 'canned'?",
    ]
    assert "echo" in done.stdout and "sentiment" in done.stdout  # the listing is there all the same
    served = run_legend("serve", "--config", str(config), "--port", "0")
    assert served.returncode == 2 and "[plugins.newz] there is no plugin named 'newz'" in served.stderr
