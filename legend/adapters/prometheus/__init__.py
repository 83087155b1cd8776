"""Prometheus metrics of one instance, read from the live services when Prometheus scrapes.

Nothing is counted here. The domain keeps its counters as plain integers where the work happens
(``Counters``, the backplane's, the quote poller's, the alerting's, each plugin's record); a scrape turns what
they say at that moment into metric families, so the per-message path pays nothing for metrics. Figures
that only exist as state (connections, subscriptions per channel, outbox depth) are counted at the scrape.
A counter the domain does not keep is left out, never made up. Metric names and their meaning:
docs/operations.md.

``collector``: ``LegendCollector`` and ``metrics_registry``, and ``sections``: what a scrape reads, in order,
each section bound to the services it reads (``legend.app.metric_sections`` hands them over); one module
per service read: ``streaming`` (connections, subscriptions, messages, latency), ``backplane``,
``quotes`` (the provider and the quote poller), ``alerting``, ``plugins``, ``tasks`` (the supervised loops);
``families``: helpers.
"""
