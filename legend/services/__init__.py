"""The services: what works through the ports (publishes, polls, stores), one subpackage each.

- ``streaming``: the streaming service of one instance (publisher, sessions, subscriptions, fan-out);
- ``polling``: the quote poller that polls quotes for the cluster;
- ``alerts``: alert evaluation and the alerting service;
- ``watchlists``: each user's tickers;
- ``leased_loop``: ``LeasedLoop``, the lease-holding loop that alert evaluation and bar building share.

They import the model (``legend.domain``), the ports (``legend.ports``), the runtime (``legend.runtime``)
and other services; never an adapter, a plugin or the composition root, which hand them what they use.
"""
