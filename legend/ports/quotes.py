"""Where prices come from."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from legend.domain.quotes import Quote


class QuoteProvider(Protocol):
    """A source of current quotes, fetched in batches for the tickers someone watches."""

    name: str

    async def fetch(self, tickers: Iterable[str]) -> list[Quote]:
        """Latest quote for each ticker it knows; unknown tickers are left out, not raised."""
        ...

    async def aclose(self) -> None:
        """Release connections and tasks."""
        ...
