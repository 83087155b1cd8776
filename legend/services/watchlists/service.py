"""Watchlists: each user's tickers, validated and capped; the dashboard subscribes to them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from legend.domain.symbols import normalize_ticker
from legend.ports.backplane import BackplaneUnavailable
from legend.ports.repositories import WatchlistRepository

log = logging.getLogger("legend.watchlists")

#: Announces a user's watchlist after a change (the ``watchlist`` channel: other tabs, filters).
Announce = Callable[[str, list[str]], Awaitable[object]]


class WatchlistFull(Exception):
    """The user's watchlist already holds the maximum number of tickers."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"watchlist is full: at most {limit} tickers per user")
        self.limit = limit


class Watchlists:
    """Add, remove and list a user's tickers; tickers are normalised (``aapl`` is ``AAPL``). Each change
    is announced with the list as it is now (``announce``)."""

    def __init__(
        self, repository: WatchlistRepository, max_tickers: int, announce: Announce | None = None
    ) -> None:
        self.repository = repository
        self.max_tickers = max_tickers
        self.announce = announce

    async def _changed(self, user_id: str) -> None:
        """Announce the list as stored now. The change is stored whatever happens here: when the
        backplane is down, the filters that follow the list catch up on its next change (logged)."""
        if self.announce is None:
            return
        try:
            await self.announce(user_id, await self.repository.tickers(user_id))
        except BackplaneUnavailable as exc:
            log.warning("watchlist change of %s not announced: %s", user_id, exc)

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
        if added:
            await self._changed(user_id)
        return ticker, added

    async def remove(self, user_id: str, raw_ticker: str) -> tuple[str, bool]:
        """``(ticker, removed)``: removed is False when it was not there; raises InvalidSymbol."""
        ticker = normalize_ticker(raw_ticker)
        removed = await self.repository.remove(user_id, ticker)
        if removed:
            await self._changed(user_id)
        return ticker, removed
