"""The plugin API: everything a plugin author imports (see docs/plugins.md).

::

    from legend.plugins import ChannelSpec, Delivery, Message, PluginConfig, PluginContext, hookimpl

The ``Register*`` protocols and the callback aliases type hook implementations and callbacks for mypy::

    @hookimpl
    def register_channels(register: RegisterChannel, config: MyConfig) -> None: ...

A plugin with tables of its own declares them with ``register_storage`` (``RegisterStorage``), names them
with ``NAMING_CONVENTION`` and ``UtcDateTime``, and reads and writes them through ``context.database``
(``SqlDatabase``). A plugin that reads bars uses ``context.bars(...)`` and ``context.on_bars(callback)``
(``Bar``, ``BarsCallback``); the built-in ``scanner`` is the worked example.
"""

from legend.domain.bars import Bar
from legend.domain.channels import AuthorizeFn, ChannelSpec, Delivery, InvalidMessage
from legend.domain.envelope import Envelope
from legend.domain.messages import PriceUpdate
from legend.domain.quotes import Quote
from legend.domain.stream_name import InvalidStreamName, StreamName
from legend.plugins.base import Message, PluginConfig
from legend.plugins.context import (
    BarsCallback,
    FeedFunction,
    PluginContext,
    PriceCallback,
    ProviderFactory,
    RegisterChannel,
    RegisterFeed,
    RegisterProvider,
    RegisterRoute,
    SubscribeCallback,
)
from legend.plugins.hookspecs import hookimpl
from legend.plugins.storage import (
    NAMING_CONVENTION,
    RegisterStorage,
    SqlDatabase,
    UtcDateTime,
    chunks,
    from_row,
)
from legend.ports.backplane import BackplaneUnavailable
from legend.ports.quotes import QuoteProvider
from legend.services.streaming.publisher import MirrorUnavailable

__all__ = [
    "NAMING_CONVENTION",
    "AuthorizeFn",
    "BackplaneUnavailable",
    "Bar",
    "BarsCallback",
    "ChannelSpec",
    "Delivery",
    "Envelope",
    "FeedFunction",
    "InvalidMessage",
    "InvalidStreamName",
    "Message",
    "MirrorUnavailable",
    "PluginConfig",
    "PluginContext",
    "PriceCallback",
    "PriceUpdate",
    "ProviderFactory",
    "Quote",
    "QuoteProvider",
    "RegisterChannel",
    "RegisterFeed",
    "RegisterProvider",
    "RegisterRoute",
    "RegisterStorage",
    "SqlDatabase",
    "StreamName",
    "SubscribeCallback",
    "UtcDateTime",
    "chunks",
    "from_row",
    "hookimpl",
]
