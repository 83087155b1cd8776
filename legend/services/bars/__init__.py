"""Bars, by responsibility: the services that build the cluster's OHLCV bars once and fill their past, over
the ports.

What they work on is pure and lives in the model, ``legend.domain``: ``bars`` (``Bar``, the intervals),
``bar_alignment`` (where a bar lies in exchange time), ``bar_building`` (``BarBuilder``) and ``bar_history``
(rolling finer bars up, what a backfill covered).

- ``building``: ``BarBuilding``, the loop that puts every price of the cluster into its bars exactly once,
  from the price log, on the instance that holds the ``bars`` lease, and stores them with its position;
- ``backfill``: ``BarBackfill``, the past of a ticker's bars from the quote provider's history, in the
  background, never over a bar the builder stored.
"""
