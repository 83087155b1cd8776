"""legend-sentiment: social sentiment per ticker, as an example of a third-party Legend Realtime plugin.

Everything goes through the plugin API (``legend.plugins``): hooks and the ``PluginContext``. The plugin
owns a table of its own (``storage.py``, revisions in ``migrations/``): each ticker's readings summed per
day, served by ``GET /api/sentiment/{ticker}/daily``.
"""

from __future__ import annotations

import asyncio
import math
import random
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath

from legend.plugins import (
    ChannelSpec,
    Delivery,
    Message,
    PluginConfig,
    PluginContext,
    PriceUpdate,
    RegisterChannel,
    RegisterFeed,
    RegisterRoute,
    RegisterStorage,
    hookimpl,
)
from legend.plugins.web import current_user
from legend_sentiment.storage import MIGRATIONS, DailySentiment, Day, metadata

__version__ = "0.1.0"


class SentimentConfig(PluginConfig):
    """``[plugins.sentiment]``."""

    tickers: list[str] = msgspec.field(default_factory=lambda: ["AAPL", "MSFT", "TSLA"])
    interval: Annotated[float, msgspec.Meta(gt=0)] = 5.0  # seconds between readings
    seed: int = 7
    premium_users: list[str] = []  # when not empty, only these users may subscribe


class Sentiment(Message, tag="sentiment", kw_only=True):
    """One reading of the social mood about a ticker over the last ``window_seconds``."""

    ticker: str
    score: Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)]
    label: Literal["bearish", "neutral", "bullish"]
    mentions: Annotated[int, msgspec.Meta(ge=0)]
    bullish: Annotated[int, msgspec.Meta(ge=0)]
    bearish: Annotated[int, msgspec.Meta(ge=0)]
    window_seconds: float


@hookimpl
def config_schema() -> type[SentimentConfig]:
    return SentimentConfig


@hookimpl
def register_channels(register: RegisterChannel, config: SentimentConfig) -> None:
    premium = set(config.premium_users)

    def authorize(user_id: str, key: str | None) -> bool:
        return not premium or user_id in premium

    register(
        ChannelSpec(
            name="sentiment:{symbol}",  # a pattern: one stream per ticker, the ticker is required
            schema=Sentiment,
            delivery=Delivery.CONFLATE,  # only the newest reading matters
            history_size=10,
            authorize=authorize,
            description="Social sentiment about one ticker.",
        )
    )


@hookimpl
def register_feeds(register: RegisterFeed) -> None:
    register("readings", readings)


@hookimpl
def register_storage(register: RegisterStorage) -> None:
    register(metadata, MIGRATIONS)  # the table sentiment_daily and the revisions that make it


@hookimpl
def register_routes(register: RegisterRoute) -> None:
    register(SentimentController)


@hookimpl
def on_startup(context: PluginContext) -> None:
    mood = context.singleton(Mood)
    context.on_price(mood.on_price)
    context.log.info("sentiment for %s every %ss", ", ".join(context.config.tickers), context.config.interval)


@hookimpl
def on_shutdown(context: PluginContext) -> None:
    context.log.info("sentiment published %d readings", int(context.metrics.get("readings", 0)))


class Mood:
    """The day's price move per ticker, which the simulated crowd follows."""

    def __init__(self, context: PluginContext) -> None:
        self.moves: dict[str, float] = {}
        self.rng = random.Random(context.config.seed)

    def on_price(self, price: PriceUpdate) -> None:
        """A plain callback: it runs in the plugin's worker thread, never on the event loop."""
        self.moves[price.ticker] = price.change_percent

    def reading(self, ticker: str, window: float) -> Sentiment:
        drift = math.tanh(self.moves.get(ticker, 0.0) / 2)
        score = max(-1.0, min(1.0, round(drift * 0.7 + self.rng.gauss(0, 0.25), 3)))
        mentions = self.rng.randint(20, 200)
        bullish = round(mentions * (score + 1) / 2)
        label: Literal["bearish", "neutral", "bullish"] = (
            "bullish" if score > 0.15 else "bearish" if score < -0.15 else "neutral"
        )
        return Sentiment(
            ticker=ticker,
            score=score,
            label=label,
            mentions=mentions,
            bullish=bullish,
            bearish=mentions - bullish,
            window_seconds=window,
        )


def daily_sentiment(context: PluginContext) -> DailySentiment | None:
    """The plugin's table, on the server's database (None: a server built without one)."""
    return DailySentiment(context.database) if context.database is not None else None


async def readings(context: PluginContext) -> None:
    """The feed: a reading per ticker every ``interval`` seconds, published and counted in its day's row
    (supervised: restarted if it raises)."""
    config: SentimentConfig = context.config
    mood = context.singleton(Mood)
    days = context.singleton(daily_sentiment)
    while True:
        for ticker in config.tickers:
            reading = mood.reading(ticker.upper(), config.interval)
            await context.publish(context.stream("sentiment", reading.ticker), reading)
            context.metrics["readings"] = context.metrics.get("readings", 0) + 1
            if days is not None:
                await days.add(
                    reading.ticker,
                    context.clock.now(),
                    reading.score,
                    reading.mentions,
                    reading.bullish,
                    reading.bearish,
                )
        await asyncio.sleep(config.interval)


class DailyView(msgspec.Struct, kw_only=True):
    """A ticker's sentiment per day, newest first."""

    ticker: str
    days: list[Day]


class SentimentController(Controller):
    """``GET /api/sentiment/{ticker}/daily``: what the plugin's table holds (premium users only, when the
    channel has premium users)."""

    path = "/api/sentiment"
    tags = ["sentiment"]
    dependencies = {"user_id": current_user}

    @get("/{ticker:str}/daily", summary="A ticker's sentiment per day")
    async def daily(
        self, ticker: FromPath[str], plugin: NamedDependency[PluginContext], user_id: NamedDependency[str]
    ) -> DailyView:
        premium = plugin.config.premium_users
        if premium and user_id not in premium:
            raise PermissionDeniedException(detail="sentiment is for premium users")
        days = plugin.singleton(daily_sentiment)
        symbol = ticker.upper()
        return DailyView(ticker=symbol, days=await days.days(symbol) if days is not None else [])
