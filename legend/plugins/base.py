"""Base classes for plugin authors: channel messages and settings tables."""

from __future__ import annotations

import msgspec


class Message(msgspec.Struct, tag_field="type", kw_only=True):
    """Base of every plugin channel message: subclass with ``tag="<type>"``.

    ``channel`` (the stream) and ``timestamp`` (ISO-8601 UTC) are filled in by ``PluginContext.publish``
    when left out; the server appends ``seq``.
    """

    channel: str | None = None
    timestamp: str | None = None


class PluginConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of a plugin's settings table (``[plugins.<name>]``): unknown keys are errors with their path."""
