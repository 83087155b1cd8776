"""Watchlists: each user's tickers, validated and capped; the dashboard subscribes to them."""

from __future__ import annotations

from legend.domain.symbols import normalize_ticker
from legend.ports.repositories import WatchlistRepository


class WatchlistFull(Exception):
    """The user's watchlist already holds the maximum number of tickers."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"watchlist is full: at most {limit} tickers per user")
        self.limit = limit


class Watchlists:
    """Add, remove and list a user's tickers; tickers are normalised (``aapl`` is ``AAPL``)."""

    def __init__(self, repository: WatchlistRepository, max_tickers: int) -> None:
        self.repository = repository
        self.max_tickers = max_tickers

    async def tickers(self, user_id: str) -> list[str]:
        """The user's tickers in the order they were added."""
        return await self.repository.tickers(user_id)

    async def add(self, user_id: str, raw_ticker: str) -> tuple[str, bool]:
        """``(ticker, added)``: added is False when it was already there; raises InvalidSymbol or
        WatchlistFull."""
        ticker = normalize_ticker(raw_ticker)
        added = await self.repository.add(user_id, ticker, self.max_tickers)
        if added is None:
            raise WatchlistFull(self.max_tickers)
        return ticker, added

    async def remove(self, user_id: str, raw_ticker: str) -> tuple[str, bool]:
        """``(ticker, removed)``: removed is False when it was not there; raises InvalidSymbol."""
        ticker = normalize_ticker(raw_ticker)
        return ticker, await self.repository.remove(user_id, ticker)
