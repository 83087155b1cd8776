"""Bars, by responsibility: the service that builds the cluster's OHLCV bars once, over the ports.

What it works on is pure and lives in the model, ``legend.domain``: ``bars`` (``Bar``, the intervals),
``bar_alignment`` (where a bar lies in exchange time) and ``bar_building`` (``BarBuilder``).

- ``building``: ``BarBuilding``, the loop that puts every price of the cluster into its bars exactly once,
  from the price log, on the instance that holds the ``bars`` lease, and stores them with its position.
"""
