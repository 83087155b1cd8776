"""Discovery through the ``legend.plugins`` entry-point group: the example package, installed as its own
distribution by the test command, is found like any third-party plugin; the built-ins are declared there
too and also load from a checkout."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

import legend
from legend.plugins.discovery import BUILTINS, GROUP
from legend.plugins.manager import PluginManager

from .helpers import SENTIMENT_HOOKS, settings_with


def test_the_example_package_is_an_installed_entry_point() -> None:
    points = {point.name: point for point in importlib.metadata.entry_points(group=GROUP)}
    if "sentiment" not in points:
        pytest.fail("examples/legend-sentiment is not installed: run scripts/test.sh (it pip-installs it)")
    assert points["sentiment"].value == "legend_sentiment"
    assert points["sentiment"].dist is not None and points["sentiment"].dist.name == "legend-sentiment"
    # the built-ins are declared in the same group by legend-realtime itself
    assert {name: points[name].value for name in BUILTINS if name in points} == dict(BUILTINS)


def test_an_enabled_entry_point_plugin_is_loaded_registered_and_configured() -> None:
    found = PluginManager.from_settings(
        settings_with(
            {"enabled": ["sentiment"], "sentiment": {"tickers": ["NVDA"], "premium_users": ["vip"]}}
        ),
        environ={},
    )
    record = found.records["sentiment"]
    assert record.state.value == "enabled" and record.version == "0.1.0"
    assert record.source == "entry point (legend-sentiment 0.1.0)" and record.module == "legend_sentiment"
    assert record.hooks == SENTIMENT_HOOKS
    assert record.config.tickers == ["NVDA"] and record.config.premium_users == ["vip"]
    assert found.pm.get_plugin("sentiment") is record.plugin


def test_builtins_load_from_the_checkout_without_entry_points() -> None:
    found = PluginManager.from_settings(settings_with({}), environ={}, entry_points=[])
    assert {name: found.records[name].state.value for name in BUILTINS} == {
        "news": "enabled",
        "portfolio": "enabled",
        "scanner": "enabled",
    }
    assert all(found.records[name].source == "builtin" for name in BUILTINS)


def test_an_entry_point_cannot_take_a_builtin_name() -> None:
    impostor = importlib.metadata.EntryPoint(name="news", value="tests.plugins.samples.raising", group=GROUP)
    other = importlib.metadata.EntryPoint(name="extra", value="tests.plugins.samples.echo", group=GROUP)
    found = PluginManager.from_settings(
        settings_with({"enabled": ["news", "extra"]}), environ={}, entry_points=[impostor, other]
    )
    assert found.records["news"].module == BUILTINS["news"] and found.records["news"].state.value == "enabled"
    assert found.records["extra"].state.value == "enabled" and found.records["extra"].source == "entry point"


def test_module_plugins_show_a_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a module of an installed distribution that has no __version__: the distribution's version
    package = tmp_path / "acme_legend_plugin"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "hooks.py").write_text('"""No __version__ here."""\n', encoding="utf-8")
    info = tmp_path / "acme_legend_plugin-4.5.6.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-legend-plugin\nVersion: 4.5.6\n", encoding="utf-8"
    )
    (info / "top_level.txt").write_text("acme_legend_plugin\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("acme_legend_plugin", "acme_legend_plugin.hooks"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    found = PluginManager.from_settings(
        settings_with(
            {
                "modules": {
                    "acme": "acme_legend_plugin.hooks",
                    "typed": "tests.plugins.samples.typed",  # its own __version__
                    "echo": "tests.plugins.samples.echo",  # neither: no version to show
                    "inside": "legend.plugins.builtin.news.parsing",  # the legend package's version
                }
            }
        ),
        environ={},
        entry_points=[],
    )
    versions = {name: found.records[name].version for name in ("acme", "typed", "echo", "inside")}
    assert versions == {"acme": "4.5.6", "typed": "2.3.4", "echo": None, "inside": legend.__version__}
