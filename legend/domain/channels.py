"""Channels, the streams behind them, and how each kind of message is delivered.

A client subscribes to a *channel* (``ticker`` with a symbol, ``patterns``, ``alerts``,
``market_status``, or a plugin's). The server maps it onto one or more *streams*: the unit that has a
sequence number and a history. ``alerts`` is two streams: the platform-wide ``alerts`` and the user's
private ``alerts:user:{id}``, so one user's triggers never reach another. ``bars`` has a stream per ticker
and interval (``bars:AAPL:1m``): a subscription names both.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

import msgspec

from legend.domain.bars import INTERVALS
from legend.domain.stream_name import InvalidStreamName, StreamName
from legend.domain.symbols import InvalidSymbol, normalize_ticker


class Delivery(enum.Enum):
    """How a connection's outbox treats a message."""

    CONTROL = "control"  # replies to the client: never throttled, never dropped
    CONFLATE = "conflate"  # latest value wins per stream inside the per-connection budget, except a final
    # message (``Envelope.final``: a closed bar), which is delivered like a reliable one
    RELIABLE = "reliable"  # never dropped silently: a connection that cannot keep up is closed
    STICKY = "sticky"  # reliable, and the current value is sent on subscribe


class ChannelError(ValueError):
    """A subscription request that names no valid channel or lacks what the channel needs."""


class InvalidMessage(ValueError):
    """A message that does not match its channel's schema; it is never published."""


# (user_id, key) -> allowed; may return an awaitable (the plugin manager's guard does, so that a slow
# rule in a plugin's worker thread delays only the subscribe that waits for it)
AuthorizeFn = Callable[[str, str | None], bool | Awaitable[bool]]

_NATIVE = (datetime.datetime, datetime.date, datetime.time, datetime.timedelta, uuid.UUID, decimal.Decimal)
_PATTERN = re.compile(r"([^:{}]+):\{[A-Za-z_]+\}")


class ChannelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One channel family.

    ``name`` is the channel clients subscribe to; a pattern such as ``"news:{symbol}"`` is the same as
    ``name="news", keyed=True, key_required=True``.
    ``topic`` is the backplane topic its streams travel on (the specification's Redis channel names; default: the
    name). ``keyed`` channels take a key (the ticker for ``ticker``; a symbol for ``news:{SYMBOL}``).
    ``private`` channels add a per-user stream ``{name}:user:{user_id}`` beside the public one, or
    (``public_stream=False``) instead of it.
    ``schema`` is the msgspec Struct (tagged with its message ``type``) every message on the channel must
    match; ``message_types`` defaults to its tag. ``authorize(user_id, key)`` decides who may subscribe
    (everyone when None).
    A keyed stream (``news:AAPL``) and the bare one (``news``) are separate streams: a message published on
    one never reaches the other's subscribers, unless ``mirror_keyed`` (a keyed channel whose key is
    optional): then every message published on a keyed stream is published on the bare stream as well
    (``mirror_stream``), so subscribers without a key see every key's messages.
    ``readable_by_plugins``: every plugin may read the channel's public streams (``PluginContext.history``),
    not only the plugin that owns it; the built-in prices, patterns and market status are, and a plugin
    declares its own so (the built-in ``news``), with no list of names in the server.
    ``intervals``: a keyed channel with one stream per key and interval (``bars:AAPL:1m``); a subscription
    names one of them (``interval``), and one to each interval of a key is a subscription of its own.
    ``finals``: a conflated channel whose messages can be final (``"closed": true``, must-deliver, as a
    closed bar is); a gap in its stream may have lost one, so it is reported (``must_deliver``).
    """

    name: str
    topic: str = ""
    delivery: Delivery = Delivery.RELIABLE
    message_types: tuple[str, ...] = ()
    keyed: bool = False
    key_required: bool = False
    private: bool = False
    public_stream: bool = True
    history_size: int | None = None  # None: the server's default
    description: str = ""
    schema: type[msgspec.Struct] | None = None
    authorize: AuthorizeFn | None = None
    mirror_keyed: bool = False
    readable_by_plugins: bool = False
    intervals: tuple[str, ...] = ()
    finals: bool = False

    def __post_init__(self) -> None:
        pattern = _PATTERN.fullmatch(self.name)
        if pattern is not None:
            msgspec.structs.force_setattr(self, "name", pattern.group(1))
            msgspec.structs.force_setattr(self, "keyed", True)
            msgspec.structs.force_setattr(self, "key_required", True)
        if self.mirror_keyed and (not self.keyed or self.key_required):
            raise ValueError(
                f"channel {self.name!r}: mirror_keyed needs keyed=True and key_required=False (a bare "
                "stream to mirror to)"
            )
        if self.intervals and (not self.key_required or self.private or self.mirror_keyed):
            raise ValueError(
                f"channel {self.name!r}: intervals need key_required=True, and no private or mirrored streams"
            )
        if not self.topic:
            msgspec.structs.force_setattr(self, "topic", self.name)
        if not self.message_types and self.schema is not None:
            tag = self.schema.__struct_config__.tag
            if isinstance(tag, str):
                msgspec.structs.force_setattr(self, "message_types", (tag,))

    @property
    def must_deliver(self) -> bool:
        """Whether messages of the channel lost on the way are a loss its subscribers must be told of
        (``gap``): every reliable or sticky one, a conflated one only when it can be final (a closed
        bar). A lost price is no loss: the newest wins anyway."""
        return self.delivery is not Delivery.CONFLATE or self.finals

    def keeps(self, final: bool) -> bool:
        """Whether a message of the channel is kept beyond its stream's history for instances that were
        away (``redis.must_deliver_retention``): every must-deliver one; on a conflated channel only a
        final one (a closed bar), since its updates before are replaced by the next anyway."""
        return self.delivery is not Delivery.CONFLATE or (self.finals and final)

    def interval_of(self, interval: str | None) -> str | None:
        """The interval a subscribe/unsubscribe request names, checked against ``intervals``; raises
        ChannelError for a missing or unknown one, or one on a channel without intervals."""
        if not self.intervals:
            if interval is not None:
                raise ChannelError(f"Channel '{self.name}' takes no interval")
            return None
        accepted = ", ".join(self.intervals)
        if interval is None:
            raise ChannelError(f"Interval required for channel '{self.name}': one of {accepted}")
        if interval not in self.intervals:
            shown = interval if len(interval) <= 16 else interval[:16] + "…"
            raise ChannelError(f"Invalid interval for channel '{self.name}': {shown!r} (one of {accepted})")
        return interval

    def streams(self, key: str | None, user_id: str, interval: str | None = None) -> tuple[str, ...]:
        """The stream names a subscription of ``user_id`` to this channel (and key, and interval) reads."""
        if interval is not None:
            return (StreamName(self.name, key, None, interval).format(),)
        base = StreamName(self.name, key or None, user_id if self.private else None)
        if not base.private:
            return (base.format(),)
        own = base.format()
        return (base.public().format(), own) if self.public_stream else (own,)

    def subscription_key(self, key: str | None, interval: str | None = None) -> str:
        """How the client and the stats name this subscription: ``ticker:AAPL``, ``patterns``,
        ``bars:AAPL:1m``."""
        return StreamName(self.name, key or None, None, interval).format()

    def parse_stream(self, stream: str) -> tuple[str | None, str | None]:
        """``(key, user_id)`` of one of this channel's stream names; raises ChannelError for any other."""
        name = self.stream_name(stream)
        return name.key, name.user_id

    def stream_name(self, stream: str) -> StreamName:
        """One of this channel's stream names, read; raises ChannelError for any other (a key must be
        written as the Ticker rule normalises it)."""
        try:
            name = StreamName.parse(stream)
        except InvalidStreamName:
            name = None
        if name is None or name.channel != self.name:
            if StreamName.channel_of(stream) != self.name:
                raise ChannelError(f"stream {stream!r} is not on channel {self.name!r}")
            raise ChannelError(f"stream {stream!r} is not a stream of channel {self.name!r}")
        if name.key is not None:
            if not self.keyed:
                raise ChannelError(f"channel {self.name!r} takes no key: {stream!r}")
            try:
                key = normalize_ticker(name.key)
            except InvalidSymbol as exc:
                raise ChannelError(f"stream {stream!r}: {exc}") from None
            if key != name.key:
                raise ChannelError(f"stream {stream!r}: write the key as {key!r}")
        if name.private and not self.private:
            raise ChannelError(f"stream {stream!r} is not a stream of channel {self.name!r}")
        if name.key is None and self.key_required:
            raise ChannelError(f"channel {self.name!r} needs a key: {stream!r}")
        if (name.interval is None) != (not self.intervals) or (
            name.interval is not None and name.interval not in self.intervals
        ):
            raise ChannelError(f"stream {stream!r} is not a stream of channel {self.name!r}")
        if not name.private and not self.public_stream:
            raise ChannelError(
                f"channel {self.name!r} has only private streams ({StreamName(self.name, None, '<id>')})"
            )
        return name

    def mirror_stream(self, stream: str) -> str | None:
        """The bare stream a message published on keyed ``stream`` is mirrored to (``probe:AAA`` ->
        ``probe``, ``probe:AAA:user:bob`` -> ``probe:user:bob``); None without ``mirror_keyed`` or key."""
        if not self.mirror_keyed:
            return None
        name = self.stream_name(stream)
        if name.key is None:
            return None
        return name.bare().format()

    def conform(self, message: msgspec.Struct | Mapping[str, Any]) -> msgspec.Struct:
        """``message`` checked against ``schema`` (a mapping is converted); raises InvalidMessage."""
        schema = self.schema
        if schema is None:
            if isinstance(message, msgspec.Struct):
                return message
            raise InvalidMessage(f"channel {self.name!r} has no schema to build a message from a mapping")
        if isinstance(message, Mapping):
            raw: Any = dict(message)
            tag = schema.__struct_config__.tag
            raw.setdefault(schema.__struct_config__.tag_field or "type", tag)
        elif isinstance(message, schema):
            raw = msgspec.to_builtins(message, builtin_types=_NATIVE)
        else:
            raise InvalidMessage(
                f"channel {self.name!r} carries {schema.__name__} messages, not {type(message).__name__}"
            )
        try:
            return msgspec.convert(raw, schema)
        except msgspec.ValidationError as exc:
            raise InvalidMessage(f"invalid {schema.__name__} on channel {self.name!r}: {exc}") from None


def check_schema(schema: object) -> None:
    """A channel schema is a msgspec Struct tagged with its ``type`` that has a ``channel`` field."""
    if not (isinstance(schema, type) and issubclass(schema, msgspec.Struct)):
        raise ValueError(f"a channel schema must be a msgspec.Struct type, not {schema!r}")
    config = schema.__struct_config__
    if not isinstance(config.tag, str) or config.tag_field != "type":
        raise ValueError(f'{schema.__name__} needs tag="<message type>" and tag_field="type"')
    if "channel" not in schema.__struct_fields__:
        raise ValueError(f"{schema.__name__} needs a `channel: str | None = None` field (subclass Message)")


BUILTIN_CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec(
        name="ticker",
        topic="price_updates",
        delivery=Delivery.CONFLATE,
        message_types=("price_update",),
        keyed=True,
        key_required=True,
        description="Live prices of one ticker: subscribe with a ticker symbol.",
        readable_by_plugins=True,
    ),
    ChannelSpec(
        name="patterns",
        topic="pattern_alerts",
        delivery=Delivery.RELIABLE,
        message_types=("pattern_alert",),
        description="Chart pattern detections on any ticker.",
        readable_by_plugins=True,
    ),
    ChannelSpec(
        name="alerts",
        topic="alert_triggers",
        delivery=Delivery.RELIABLE,
        message_types=("alert_trigger",),
        private=True,
        description="Alert triggers: platform-wide ones and the subscriber's own.",
    ),
    ChannelSpec(
        name="bars",
        topic="bars",
        delivery=Delivery.CONFLATE,
        message_types=("bar",),
        keyed=True,
        key_required=True,
        intervals=INTERVALS,
        finals=True,
        description="OHLCV bars of one ticker and interval: the open bar as it changes (conflated) and "
        "every closed bar (must-deliver).",
        readable_by_plugins=True,
    ),
    ChannelSpec(
        name="market_status",
        topic="market_status",
        delivery=Delivery.STICKY,
        message_types=("market_status",),
        description="Market open/close transitions; the current status is sent on subscribe.",
        readable_by_plugins=True,
    ),
    ChannelSpec(
        name="watchlist",
        topic="watchlists",
        delivery=Delivery.STICKY,
        message_types=("watchlist",),
        private=True,
        public_stream=False,
        history_size=10,
        description="The subscriber's own watchlist, after each change; the current one on subscribe.",
    ),
)


class ChannelRegistry:
    """Every channel family the server knows, built-in and registered by plugins."""

    def __init__(self, specs: Iterable[ChannelSpec] = BUILTIN_CHANNELS) -> None:
        self._specs: dict[str, ChannelSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: ChannelSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"channel {spec.name!r} is already registered")
        if not spec.name or ":" in spec.name:
            raise ValueError(f"invalid channel name {spec.name!r}")
        if spec.schema is not None:
            check_schema(spec.schema)
        self._specs[spec.name] = spec

    def __iter__(self) -> Iterator[ChannelSpec]:
        return iter(self._specs.values())

    def names(self) -> list[str]:
        return list(self._specs)

    def get(self, name: str) -> ChannelSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise ChannelError(f"Unknown channel: {name}") from None

    def resolve(self, channel: str, ticker: str | None) -> tuple[ChannelSpec, str | None]:
        """The spec and normalised key for a subscribe/unsubscribe request; raises ChannelError."""
        spec = self.get(channel)
        if not spec.keyed:
            if ticker is not None:
                raise ChannelError(f"Channel '{channel}' takes no ticker")
            return spec, None
        if ticker is None:
            if spec.key_required:
                raise ChannelError(f"Ticker required for channel '{channel}'")
            return spec, None
        try:
            return spec, normalize_ticker(ticker)
        except ValueError as exc:
            raise ChannelError(str(exc)) from None

    def spec_of_stream(self, stream: str) -> ChannelSpec | None:
        """The family a stream name belongs to (its channel)."""
        return self._specs.get(StreamName.channel_of(stream))
