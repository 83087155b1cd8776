"""A plugin annotated with the types ``legend.plugins`` exports, checked by ``mypy --strict``
(tests/plugins/test_typing.py) and loaded like any other plugin."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from litestar import get

from legend.plugins import (
    ChannelSpec,
    Message,
    PluginConfig,
    PluginContext,
    PriceUpdate,
    Quote,
    QuoteProvider,
    RegisterChannel,
    RegisterFeed,
    RegisterProvider,
    RegisterRoute,
    hookimpl,
)

__version__ = "2.3.4"


class TypedConfig(PluginConfig):
    label: str = "typed"


class Reading(Message, tag="reading", kw_only=True):
    value: float


class Flat:
    """A QuoteProvider: every ticker at 1.0."""

    name = "flat"

    async def fetch(self, tickers: Iterable[str]) -> list[Quote]:
        return [
            Quote(ticker=t, price=1.0, change=0.0, change_percent=0.0, volume=0, high=1.0, low=1.0, open=1.0)
            for t in tickers
        ]

    async def aclose(self) -> None:
        pass


def flat(context: PluginContext) -> QuoteProvider:
    return Flat()


@get("/api/typed/label")
async def label(plugin: PluginContext) -> dict[str, str]:
    config: TypedConfig = plugin.config
    return {"label": config.label}


async def readings(context: PluginContext) -> None:
    while True:
        await context.publish("readings", Reading(value=1.0))
        await asyncio.sleep(3600)


def authorize(user_id: str, key: str | None) -> bool:
    return bool(user_id)


def seen(price: PriceUpdate) -> None:
    pass


@hookimpl
def config_schema() -> type[TypedConfig]:
    return TypedConfig


@hookimpl
def register_channels(register: RegisterChannel, config: TypedConfig) -> None:
    register(ChannelSpec(name="readings", schema=Reading, authorize=authorize))


@hookimpl
def register_quote_providers(register: RegisterProvider) -> None:
    register("flat", flat)


@hookimpl
def register_routes(register: RegisterRoute) -> None:
    register(label)


@hookimpl
def register_feeds(register: RegisterFeed, context: PluginContext) -> None:
    register("readings", readings, every_instance=False)


@hookimpl
def on_startup(context: PluginContext) -> None:
    context.on_price(seen)


@hookimpl
async def on_shutdown(context: PluginContext) -> None:
    await asyncio.sleep(0)
