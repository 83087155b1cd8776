"""Channels, the streams behind them, and how each kind of message is delivered.

A client subscribes to a *channel* (``ticker`` with a symbol, ``patterns``, ``alerts``,
``market_status``, or a plugin's). The server maps it onto one or more *streams*: the unit that has a
sequence number and a history. ``alerts`` is two streams: the platform-wide ``alerts`` and the user's
private ``alerts:user:{id}``, so one user's triggers never reach another.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator

import msgspec

from legend.domain.symbols import normalize_ticker


class Delivery(enum.Enum):
    """How a connection's outbox treats a message."""

    CONTROL = "control"  # replies to the client: never throttled, never dropped
    CONFLATE = "conflate"  # latest value wins per stream inside the per-connection budget
    RELIABLE = "reliable"  # never dropped silently: a connection that cannot keep up is closed
    STICKY = "sticky"  # reliable, and the current value is sent on subscribe


class ChannelError(ValueError):
    """A subscription request that names no valid channel or lacks what the channel needs."""


AuthorizeFn = Callable[[str, str | None], bool]  # (user_id, key) -> allowed


class ChannelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One channel family.

    ``topic`` is the backplane topic its streams travel on (the seed's Redis channel names).
    ``keyed`` channels take a key (the ticker for ``ticker``; a symbol for ``news:{SYMBOL}``).
    ``private`` channels add a per-user stream ``{name}:user:{user_id}`` beside the public one, or
    (``public_stream=False``) instead of it.
    """

    name: str
    topic: str
    delivery: Delivery
    message_types: tuple[str, ...]
    keyed: bool = False
    key_required: bool = False
    private: bool = False
    public_stream: bool = True
    history_size: int | None = None  # None: the server's default
    description: str = ""

    def streams(self, key: str | None, user_id: str) -> tuple[str, ...]:
        """The stream names a subscription of ``user_id`` to this channel (and key) reads."""
        base = f"{self.name}:{key}" if key else self.name
        if not self.private:
            return (base,)
        own = f"{base}:user:{user_id}"
        return (base, own) if self.public_stream else (own,)

    def subscription_key(self, key: str | None) -> str:
        """How the client and the stats name this subscription: ``ticker:AAPL``, ``patterns``."""
        return f"{self.name}:{key}" if key else self.name


def private_stream(channel: str, user_id: str) -> str:
    """The stream that carries ``user_id``'s own messages of a private channel."""
    return f"{channel}:user:{user_id}"


BUILTIN_CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec(
        name="ticker",
        topic="price_updates",
        delivery=Delivery.CONFLATE,
        message_types=("price_update",),
        keyed=True,
        key_required=True,
        description="Live prices of one ticker: subscribe with a ticker symbol.",
    ),
    ChannelSpec(
        name="patterns",
        topic="pattern_alerts",
        delivery=Delivery.RELIABLE,
        message_types=("pattern_alert",),
        description="Chart pattern detections on any ticker.",
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
        name="market_status",
        topic="market_status",
        delivery=Delivery.STICKY,
        message_types=("market_status",),
        description="Market open/close transitions; the current status is sent on subscribe.",
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
        """The family a stream name belongs to (its part before the first ':')."""
        return self._specs.get(stream.partition(":")[0])
