"""The ``news`` plugin's hooks (its ``legend.plugins`` entry point). Written as any third-party plugin would
be: only hooks and the context. Its parts: ``config`` (``[plugins.news]``), ``schema`` (the channel's
message), ``parsing`` (RSS/Atom and JSON Feed), ``desk`` (polling, de-duplication, publishing) and ``api``
(REST).

- Channel ``news`` (every item) and ``news:{SYMBOL}`` (items that mention the symbol; the same item goes
  to both, with the same ``id``). Must-deliver, with a history for resume.
- Feeds from ``[plugins.news] feeds``: RSS/Atom or JSON Feed, each polled every ``poll_interval`` seconds
  with conditional requests (``If-None-Match``/``If-Modified-Since``; a 304 costs nothing). The ETag and
  Last-Modified survive restarts in the plugin store.
- De-duplication by guid within its feed (or link, or headline and date) and by link across feeds, in a
  bounded memory of the last ``max_seen`` items, kept in the plugin store and re-read from it and from the
  ``news`` history whenever a feed is given its lease: an item is published once, across polls, feeds,
  restarts and instances. Items beyond ``max_items_per_poll`` are old news: remembered, never sent.
- An item that reached ``news`` but not some ``news:{SYMBOL}`` (the backplane failed) is remembered, and
  only the missing streams are retried.
- ``POST /api/news/broadcast`` (admin) publishes an item by hand; ``POST /api/news/refresh`` (admin) polls
  the feeds that run on this instance now.
"""

from __future__ import annotations

import asyncio

from legend.plugins import ChannelSpec, Delivery, PluginContext, hookimpl
from legend.plugins.builtin.news.api import NewsController
from legend.plugins.builtin.news.config import NewsConfig, feed_name
from legend.plugins.builtin.news.desk import NewsDesk
from legend.plugins.builtin.news.schema import CHANNEL, News
from legend.plugins.context import FeedFunction, RegisterChannel, RegisterFeed, RegisterRoute
from legend.runtime.backoff import exponential


@hookimpl
def config_schema() -> type[NewsConfig]:
    return NewsConfig


@hookimpl
def register_channels(register: RegisterChannel, config: NewsConfig) -> None:
    register(
        ChannelSpec(
            name=CHANNEL,
            schema=News,
            delivery=Delivery.RELIABLE,
            keyed=True,
            key_required=False,
            history_size=config.history_size,
            description="Market news: every item, or with a ticker only those mentioning it.",
            readable_by_plugins=True,  # other plugins read the news (a sentiment score, say)
        )
    )


@hookimpl
def register_routes(register: RegisterRoute) -> None:
    register(NewsController)


@hookimpl
def register_feeds(register: RegisterFeed, context: PluginContext) -> None:
    config: NewsConfig = context.config
    for index, feed in enumerate(config.feeds):
        register(feed_name(index, feed), _poller(index))


@hookimpl
async def on_shutdown(context: PluginContext) -> None:
    await context.singleton(NewsDesk).aclose()


def _poller(index: int) -> FeedFunction:
    async def poll_forever(context: PluginContext) -> None:
        desk = context.singleton(NewsDesk)
        feed = desk.config.feeds[index]
        # the feed (re)starts when this instance was (again) given its lease: another instance may have
        # polled it meanwhile, so what it published and left to retry is read again first
        await desk.sync(feed.url)
        failures = 0
        while True:
            result = await desk.poll(index)
            failures = failures + 1 if result.status == "error" else 0
            # a failing feed is asked less often: doubling up to an hour
            hour = max(feed.poll_interval, 3600.0)
            await asyncio.sleep(exponential(feed.poll_interval, min(failures, 12), maximum=hour))

    return poll_forever
