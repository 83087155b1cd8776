"""Polling the quote provider for the cluster.

- ``quote_poller``: ``QuotePoller``, the one instance (it holds the ``streamer`` lease) that polls quotes for
  the tickers someone watches on any instance, publishes them, and announces market open and close.
"""
