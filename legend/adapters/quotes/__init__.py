"""Quote providers behind the QuoteProvider port, and ``build_provider``: the one place that picks one from
``[quotes]`` settings (docs/providers.md).

- ``simulated``: a seeded random walk (legend.adapters.quotes.simulated), the default;
- ``replay``: real historical bars from CSV files (ReplayQuoteProvider);
- ``finnhub``: Finnhub REST quotes (FinnhubQuoteProvider);
- ``alpaca``: Alpaca market data v2 snapshots (AlpacaQuoteProvider).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path

from legend.adapters.quotes.alpaca import ENV_KEY_ID, ENV_SECRET_KEY, AlpacaQuoteProvider
from legend.adapters.quotes.bars import read_columns
from legend.adapters.quotes.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
    ReplayDataError,
)
from legend.adapters.quotes.finnhub import ENV_KEY, FinnhubQuoteProvider
from legend.adapters.quotes.replay import SAMPLE_FILE, SAMPLE_TICKER, ReplayQuoteProvider, ReplaySource
from legend.adapters.quotes.simulated import SimulatedQuoteProvider
from legend.ports.clock import Clock
from legend.ports.cluster import SharedPositions
from legend.ports.market import MarketCalendar
from legend.ports.quotes import QuoteProvider
from legend.settings import QuotesReplaySettings, QuotesSettings, SettingsError

BUILT_IN = ("simulated", "replay", "finnhub", "alpaca")

__all__ = [
    "BUILT_IN",
    "AlpacaQuoteProvider",
    "FinnhubQuoteProvider",
    "ProviderAuthError",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderUnavailable",
    "ReplayDataError",
    "ReplayQuoteProvider",
    "ReplaySource",
    "build_provider",
    "unknown_provider",
]


def _key(value: str | None, environ: Mapping[str, str], variable: str) -> str | None:
    """The settings value, else the vendor's conventional environment variable; blank counts as unset."""
    for candidate in (value, environ.get(variable)):
        if candidate and candidate.strip():
            return candidate.strip()
    return None


def _replay(
    settings: QuotesReplaySettings,
    clock: Clock,
    calendar: MarketCalendar | None,
    positions: SharedPositions | None,
) -> ReplayQuoteProvider:
    sources: dict[str, ReplaySource] = {}
    for ticker, source in settings.files.items():
        if isinstance(source, str):
            sources[ticker] = ReplaySource(Path(source).expanduser())
        else:
            sources[ticker] = ReplaySource(Path(source.path).expanduser(), source.start)
    if not sources:
        sources[SAMPLE_TICKER] = ReplaySource(SAMPLE_FILE)
    provider = ReplayQuoteProvider(
        sources,
        speed=settings.speed,
        advance=settings.advance,
        loop=settings.loop,
        start=settings.start,
        timezone=settings.timezone,
        clock=clock,
        calendar=calendar,
        positions=positions,
    )
    for ticker, replayed in sources.items():  # a missing file or a wrong layout stops the start
        try:
            read_columns(replayed.path)
        except ReplayDataError as exc:
            raise SettingsError(f"quotes.replay.files.{ticker}: {exc.detail}") from None
    return provider


def build_provider(
    settings: QuotesSettings,
    clock: Clock,
    *,
    environ: Mapping[str, str] | None = None,
    plugin_providers: Mapping[str, str] | None = None,
    calendar: MarketCalendar | None = None,
    positions: SharedPositions | None = None,
) -> QuoteProvider:
    """The provider ``settings.provider`` names, configured; a SettingsError when it cannot be (an unknown
    name's error lists the built-in providers and ``plugin_providers``, provider -> plugin, as well).

    Vendor keys come from the settings, else from the vendors' conventional environment variables
    (FINNHUB_API_KEY, APCA_API_KEY_ID, APCA_API_SECRET_KEY) in ``environ`` (default ``os.environ``).
    Nothing is contacted here: a refused key shows on the first fetch, as a ProviderAuthError. ``calendar``
    (the server's) places bar history in sessions; without it a provider builds its own on first use.
    ``positions`` (a cluster's) keeps the replay's clock where a takeover of polling continues it.
    """
    env = os.environ if environ is None else environ
    if settings.provider == "simulated":
        return SimulatedQuoteProvider(seed=settings.seed, clock=clock, calendar=calendar)
    if settings.provider == "replay":
        return _replay(settings.replay, clock, calendar, positions)
    if settings.provider == "finnhub":
        api_key = _key(settings.finnhub.api_key, env, ENV_KEY)
        if api_key is None:
            raise SettingsError(f"quotes.finnhub.api_key is required (or {ENV_KEY})")
        return FinnhubQuoteProvider(settings.finnhub, api_key, calendar=calendar)
    if settings.provider == "alpaca":
        key_id = _key(settings.alpaca.key_id, env, ENV_KEY_ID)
        secret_key = _key(settings.alpaca.secret_key, env, ENV_SECRET_KEY)
        missing = [
            f"quotes.alpaca.{name} is required (or {variable})"
            for name, variable, value in (
                ("key_id", ENV_KEY_ID, key_id),
                ("secret_key", ENV_SECRET_KEY, secret_key),
            )
            if value is None
        ]
        if missing or key_id is None or secret_key is None:
            raise SettingsError("; ".join(missing))
        return AlpacaQuoteProvider(settings.alpaca, key_id, secret_key, calendar=calendar)
    raise unknown_provider(settings.provider, plugin_providers or {})


def unknown_provider(name: str, plugin_providers: Mapping[str, str]) -> SettingsError:
    """The error for a ``quotes.provider`` that names no provider: every name there is (built in, and
    registered by plugins, ``plugin_providers``: provider name -> plugin name), and the closest one."""
    from_plugins = ", ".join(
        f"{provider} (plugin {plugin})" for provider, plugin in sorted(plugin_providers.items())
    )
    close = difflib.get_close_matches(name, [*BUILT_IN, *plugin_providers], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return SettingsError(
        f"quotes.provider: no provider named {name!r} (built in: {', '.join(BUILT_IN)}; from plugins: "
        f"{from_plugins or 'none'}){hint}"
    )
