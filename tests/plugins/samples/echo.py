"""A well-behaved plugin using every hook, plus a few deliberate misbehaviours behind settings.

- ``[plugins.echo] greeting``: what ``GET /api/echo/hello`` answers; ``/api/echo/crash`` raises.
- channel ``echo`` (schema ``Echo``; subscribers need ``allowed_users`` when it is not empty);
- feed ``chatter`` publishes an ``Echo`` every ``interval`` seconds, and with ``invalid = true`` three
  invalid messages before each valid one (wrong type, missing field, a stream of another channel);
- feed ``crashy`` (with ``crash = true``) raises every time it runs: it must be restarted with backoff;
- provider ``canned``: a QuoteProvider answering one fixed price per ticker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from legend.plugins import ChannelSpec, Delivery, Message, PluginConfig, PluginContext, Quote, hookimpl


class EchoConfig(PluginConfig):
    greeting: str = "hello"
    interval: Annotated[float, msgspec.Meta(gt=0)] = 0.05
    invalid: bool = False
    crash: bool = False
    allowed_users: list[str] = []


class Echo(Message, tag="echo", kw_only=True):
    text: Annotated[str, msgspec.Meta(min_length=1)]
    n: int


EVENTS: list[str] = []


@hookimpl
def config_schema() -> type[EchoConfig]:
    return EchoConfig


@hookimpl
def register_channels(register: Any, config: EchoConfig) -> None:
    allowed = set(config.allowed_users)
    register(
        ChannelSpec(
            name="echo",
            schema=Echo,
            delivery=Delivery.RELIABLE,
            keyed=True,
            authorize=(lambda user, key: user in allowed) if allowed else None,
        )
    )


class CannedQuotes:
    name = "canned"

    async def fetch(self, tickers: Iterable[str]) -> list[Quote]:
        return [
            Quote(
                ticker=t,
                price=100.0,
                change=1.0,
                change_percent=1.0,
                volume=10,
                high=101.0,
                low=99.0,
                open=99.5,
            )
            for t in tickers
        ]

    async def aclose(self) -> None:
        pass


@hookimpl
def register_quote_providers(register: Any) -> None:
    register("canned", lambda context: CannedQuotes())


class EchoController(Controller):
    path = "/api/echo"

    @get("/hello")
    async def hello(self, plugin: NamedDependency[PluginContext]) -> dict[str, str]:
        return {"greeting": plugin.config.greeting, "plugin": plugin.name}

    @get("/crash")
    async def crash(self) -> dict[str, str]:
        raise RuntimeError("handler crashed")


@hookimpl
def register_routes(register: Any) -> None:
    register(EchoController)


@hookimpl
def register_feeds(register: Any, context: PluginContext) -> None:
    register("chatter", chatter)
    if context.config.crash:
        register("crashy", crashy)


async def chatter(context: PluginContext) -> None:
    n = 0
    while True:
        n += 1
        if context.config.invalid:
            await context.publish("echo", {"type": "echo", "text": 5, "n": n})  # wrong type
            await context.publish("echo", {"text": "no n"})  # missing field
            await context.publish("patterns", Echo(text="elsewhere", n=n))  # not its channel
        await context.publish("echo", Echo(text=context.config.greeting, n=n))
        await asyncio.sleep(context.config.interval)


async def crashy(context: PluginContext) -> None:
    context.metrics["crashy_runs"] = context.metrics.get("crashy_runs", 0) + 1
    raise RuntimeError("crashy feed fails")


@hookimpl
def on_startup(context: PluginContext) -> None:
    EVENTS.append(f"startup {context.name}")


@hookimpl
async def on_shutdown(context: PluginContext) -> None:
    EVENTS.append(f"shutdown {context.name}")
