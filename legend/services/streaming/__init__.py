"""The streaming service of one instance, by responsibility.

- ``publisher``: ``Publisher``, the one way in for every message (prices, patterns, alerts, market status,
  plugin events): validated, stamped, encoded once and published on the backplane, which sequences it;
- ``service``: ``StreamingService``, the one object the edges use: sessions (connect, close, the sweep of
  stale and stuck ones), and the parts below, which it builds and owns;
- ``subscriptions``: ``SubscriptionIndex``, who is subscribed to what (the fan-out's routing table);
- ``fanout``: ``Fanout``, the hot path: one envelope written to every subscriber, queueing only what waits;
- ``client_protocol``: ``ClientProtocol``, client frames (subscribe with history and resume, unsubscribe,
  ping) and the replies;
- ``session`` and ``outbox``: the state of one connection, and what waits to be written to it;
- ``limits``: ``Limits``, the per-connection limits of ``[realtime]``;
- ``admission``: ``Admission``, who may open another connection (a per-address rate, and maxima per user
  and per address across the cluster);
- ``ticker_check``: ``TickerCheck``, whether the quote provider knows a ticker, asked on its first
  subscription and remembered;
- ``service_status``: ``ServiceStatusNotifier``, tells every connection when live delivery degrades and
  when it recovers;
- ``gaps``: ``GapNotices``, tells the subscribers of a must-deliver stream which of its messages an
  outage lost (``gap``), so that no ``ok`` claims completeness to them.
"""
