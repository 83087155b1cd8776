"""The plugin API: everything a plugin author imports (see docs/plugins.md).

::

    from legend.plugins import ChannelSpec, Delivery, Message, PluginConfig, PluginContext, hookimpl
"""

from legend.domain.channels import ChannelSpec, Delivery, InvalidMessage
from legend.domain.envelope import Envelope
from legend.domain.messages import PriceUpdate
from legend.domain.quotes import Quote
from legend.plugins.base import Message, PluginConfig
from legend.plugins.context import PluginContext
from legend.plugins.hookspecs import hookimpl
from legend.ports.backplane import BackplaneUnavailable

__all__ = [
    "BackplaneUnavailable",
    "ChannelSpec",
    "Delivery",
    "Envelope",
    "InvalidMessage",
    "Message",
    "PluginConfig",
    "PluginContext",
    "PriceUpdate",
    "Quote",
    "hookimpl",
]
