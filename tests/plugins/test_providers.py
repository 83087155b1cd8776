"""``[quotes] provider`` names a built-in provider or one a plugin registered; a name that is neither stops
the start with every name there is, the plugins' providers included, and the closest one."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

from legend.bootstrap import Services
from legend.settings import QuotesSettings, Settings, SettingsError

from .helpers import settings_with
from .samples import echo

Build = Callable[..., Services]


def quotes(provider: str, **plugins: object) -> Settings:
    """Settings choosing ``provider``, with ``plugins`` (by name) enabled."""
    settings = settings_with({"enabled": list(plugins)})
    return msgspec.structs.replace(settings, quotes=QuotesSettings(provider=provider))


def test_a_typo_lists_the_plugins_providers_and_the_closest_name(build: Build) -> None:
    with pytest.raises(SettingsError) as caught:
        build(settings=quotes("cannd", echo=echo), plugins={"echo": echo})
    assert str(caught.value) == (
        "quotes.provider: no provider named 'cannd' (built in: simulated, replay, finnhub, alpaca; "
        "from plugins: canned (plugin echo)); did you mean 'canned'?"
    )


def test_without_plugin_providers_the_error_says_so(build: Build) -> None:
    with pytest.raises(SettingsError) as caught:
        build(settings=quotes("simulatd"))
    assert str(caught.value) == (
        "quotes.provider: no provider named 'simulatd' (built in: simulated, replay, finnhub, alpaca; "
        "from plugins: none); did you mean 'simulated'?"
    )
