"""Where prices come from."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from legend.domain.quotes import Quote


class QuoteProvider(Protocol):
    """A source of current quotes, fetched in batches for the tickers someone watches."""

    name: str

    # Optional, so not a member of this protocol: ``follows_market_hours: bool``. True for market data
    # (the default for a provider that does not say): the quote poller polls it every ``update_interval`` in
    # market hours and every ``after_hours_interval`` outside them, since prices barely move then. False
    # for a source that moves at any hour, such as the simulated demo: always ``update_interval``.
    # Market status messages follow the exchange calendar either way. Read it with
    # ``follows_market_hours(provider)``.

    async def fetch(self, tickers: Iterable[str]) -> list[Quote]:
        """Latest quote for each ticker it knows; unknown tickers are left out, not raised."""
        ...

    async def aclose(self) -> None:
        """Release connections and tasks."""
        ...


def follows_market_hours(provider: QuoteProvider) -> bool:
    """The provider's ``follows_market_hours``; True when it does not declare it (a plugin written before
    the attribute existed keeps its behaviour)."""
    return bool(getattr(provider, "follows_market_hours", True))
