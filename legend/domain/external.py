"""Messages that other programs publish in the specification's format (``PUBLISH price_updates …``):
which stream each belongs to, and what it must hold before it is sequenced and delivered.

The specification's topics carry one message type each; a ticker follows the streaming protocol's rule;
an alert trigger with a ``user_id`` goes to that user's private stream only. A ``price_update`` is checked
and completed as an admin broadcast is (``low <= price <= high``; a missing ``open``, ``high``, ``low`` or
``timestamp`` taken from the price and the time it arrived), so that every client, plugin and alert rule
sees the same complete shape whoever published it. Fields the domain does not know are kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from legend.domain.channels import BUILTIN_CHANNELS, ChannelSpec
from legend.domain.envelope import is_final
from legend.domain.inputs import PriceInput
from legend.domain.prices import price_update
from legend.domain.stream_name import InvalidStreamName, StreamName, private_stream, ticker_stream
from legend.domain.symbols import InvalidSymbol, is_valid_user_id, normalize_ticker

# The specification's pub/sub channels, each the topic of one built-in channel (the table is
# channels.BUILTIN_CHANNELS'), and the one message type each carries.
_SEED_CHANNELS: Mapping[str, ChannelSpec] = {spec.topic: spec for spec in BUILTIN_CHANNELS}
SEED_TOPICS: Mapping[str, str] = {topic: spec.message_types[0] for topic, spec in _SEED_CHANNELS.items()}
# History kept for a stream that another program's message creates before any instance published on its
# topic: the specification's "last 100 messages".
HISTORY_SIZE = 100
SEED_FAMILIES = frozenset(spec.name for spec in BUILTIN_CHANNELS)
# The characters and length a stream name from another program may have (its structure: StreamName.parse).
STREAM_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_:.@^\-]{0,199}")
_PRICE_FIELDS = ("ticker", "price", "change", "change_percent", "volume", "high", "low", "previous_close")


class ExternalMessage(msgspec.Struct, frozen=True):
    """A message to sequence: its stream, type, and body (a JSON object naming its ``channel``)."""

    stream: str
    kind: str
    body: bytes
    must_deliver: bool = True  # kept beyond history (``ChannelSpec.keeps``); a plugin topic's: always


def external_message(topic: str, data: bytes, now: datetime) -> ExternalMessage | str:
    """What another program published on ``topic`` (without any channel prefix), ready to sequence; a
    reason string when it is invalid."""
    try:
        obj = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        return f"not JSON: {exc}"
    if not isinstance(obj, dict):
        return "not a JSON object"
    kind = obj.get("type")
    if not isinstance(kind, str) or not kind:
        return "no message type"
    seed = _SEED_CHANNELS.get(topic)
    if seed is None:  # a plugin's topic: the message must name its stream
        stream = obj.get("channel")
        if not isinstance(stream, str) or not STREAM_NAME.fullmatch(stream):
            return f"a message on {topic!r} needs a valid 'channel'"
        try:
            name = StreamName.parse(stream)
        except InvalidStreamName:
            return f"a message on {topic!r} needs a valid 'channel'"
        if name.channel in SEED_FAMILIES:
            return f"channel {stream!r} does not belong on {topic!r}"
    else:
        if kind != seed.message_types[0]:
            return f"a {kind!r} message does not belong on {topic!r}"
        ticker = obj.get("ticker")
        if ticker is not None:
            try:
                ticker = obj["ticker"] = normalize_ticker(ticker)
            except InvalidSymbol as exc:
                return str(exc)
        if kind == "price_update":
            if ticker is None:
                return "price_update without a ticker"
            stream = ticker_stream(ticker)
            completed = _complete_price(obj, now, stream)
            if isinstance(completed, str):
                return completed
            obj = {**obj, **completed}
        elif kind == "alert_trigger":
            user = obj.get("user_id")
            if user is None:
                stream = "alerts"
            elif isinstance(user, str) and is_valid_user_id(user):
                stream = private_stream("alerts", user)
            else:
                return "invalid user_id"
        else:  # pattern_alert, market_status: the channel's one bare stream
            stream = seed.name
    obj.pop("seq", None)
    obj.pop("channel", None)
    obj["channel"] = stream
    # A plugin's topic is unknown here: its messages are kept, in case its channel is must-deliver.
    must_deliver = seed is None or seed.keeps(is_final(obj.get("closed")))
    return ExternalMessage(stream, kind, msgspec.json.encode(obj), must_deliver)


def _complete_price(obj: dict[str, Any], now: datetime, stream: str) -> dict[str, Any] | str:
    fields = {name: obj[name] for name in _PRICE_FIELDS if name in obj and obj[name] is not None}
    if obj.get("open") is not None:
        fields["open_price"] = obj["open"]
    try:
        data = msgspec.convert(fields, PriceInput)
    except msgspec.ValidationError as exc:
        return f"invalid price_update: {exc}"
    message = price_update(data, now, stream)
    if isinstance(obj.get("timestamp"), str):  # the publisher's own time, as it wrote it
        message = msgspec.structs.replace(message, timestamp=obj["timestamp"])
    completed: dict[str, Any] = msgspec.to_builtins(message)
    return completed
