"""The fencing token of the leased feed running in the current task: what the plugin context's publishes
carry, so that a holder frozen or cut past its lease cannot publish once another instance took the feed
over (``feeds.FeedRunner`` sets it when a leased feed starts; tasks the feed starts inherit it)."""

from __future__ import annotations

import contextvars

# (lease name, token), taken when the feed started; None outside a leased feed.
FEED_FENCE: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "legend_feed_fence", default=None
)
