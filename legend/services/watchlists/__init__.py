"""Watchlists: each user's tickers, the ones the dashboard subscribes to.

- ``service``: ``Watchlists``, add, remove and list a user's tickers over the watchlist repository
  (normalised, at most ``max_tickers`` of them: ``WatchlistFull`` beyond).
"""
