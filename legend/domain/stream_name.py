"""Stream names: the one place that knows how ``ticker:AAPL``, ``alerts:user:bob``,
``news:AAPL:user:bob`` and ``bars:AAPL:1m`` are written and read.

A stream name is a channel, optionally its key (``ticker:AAPL``), optionally followed by ``:user:{id}`` for
a private channel's per-user stream (``alerts:user:bob``, ``news:AAPL:user:bob``), or by an interval for a
channel with one stream per key and interval (``bars:AAPL:1m``; public streams only; an interval is a
number and a unit letter). Every part is non-empty and has no ``:``, and a key before an interval is never
``user``, so a name reads back as the parts it was written from.

Names stay plain strings on the wire, in every Envelope and in the fan-out's maps (hashed and compared per
message); a StreamName is made only where a name is built or read (subscribe, publish, a plugin's
history), never per delivery.
"""

from __future__ import annotations

import re

import msgspec

_PRIVATE = "user"  # the part before a private stream's owner
_INTERVAL = re.compile(r"[0-9]+[a-z]")  # 1m, 15m, 1h, 1d


class InvalidStreamName(ValueError):
    """Text that is not a stream name, or parts that would not make one."""


class StreamName(msgspec.Struct, frozen=True):
    """A stream's channel, key (None: the bare stream), owner (None: the public stream) and interval (None:
    a stream of the key alone)."""

    channel: str
    key: str | None = None
    user_id: str | None = None
    interval: str | None = None

    def __post_init__(self) -> None:
        key, user_id, interval = self.key, self.user_id, self.interval
        if (
            not self.channel
            or ":" in self.channel
            or (key is not None and (not key or ":" in key))
            or (user_id is not None and (not user_id or ":" in user_id))
            or (interval is not None and (not interval or ":" in interval))
        ):
            parts = (("channel", self.channel), ("key", key), ("user id", user_id), ("interval", interval))
            for what, part in parts:
                if part is not None and (not part or ":" in part):
                    raise InvalidStreamName(f"invalid {what} in a stream name: {part!r} (empty, or has ':')")
        if interval is not None and (
            key is None or key == _PRIVATE or user_id is not None or not _INTERVAL.fullmatch(interval)
        ):
            raise InvalidStreamName(
                f"invalid interval in a stream name: {interval!r} (a number and a unit letter, after a key "
                f"other than {_PRIVATE!r}, on a public stream)"
            )

    @classmethod
    def parse(cls, text: str) -> StreamName:
        """The parts of ``text``; raises InvalidStreamName. Syntax only: whether the channel exists, takes
        a key or has private streams is the ChannelSpec's business."""
        parts = text.split(":")
        count = len(parts)
        if count == 1:
            return cls(parts[0])
        if count == 2:
            return cls(parts[0], parts[1])
        if count == 3:
            if parts[1] == _PRIVATE:
                return cls(parts[0], None, parts[2])
            return cls(parts[0], parts[1], None, parts[2])
        if count == 4 and parts[2] == _PRIVATE:
            return cls(parts[0], parts[1], parts[3])
        raise InvalidStreamName(f"not a stream name: {text!r}")

    @staticmethod
    def channel_of(text: str) -> str:
        """The channel of stream name ``text`` without reading the rest (a registry lookup per publish)."""
        return text.partition(":")[0]

    def format(self) -> str:
        """The name as written on the wire: ``ticker:AAPL``, ``alerts:user:bob``."""
        key, user_id = self.key, self.user_id
        if self.interval is not None:
            return f"{self.channel}:{key}:{self.interval}"
        if user_id is None:
            return self.channel if key is None else f"{self.channel}:{key}"
        return f"{self.channel}:user:{user_id}" if key is None else f"{self.channel}:{key}:user:{user_id}"

    __str__ = format

    @property
    def private(self) -> bool:
        """Whether this is one user's stream of a private channel."""
        return self.user_id is not None

    def public(self) -> StreamName:
        """The public stream beside this one (itself when it is public)."""
        return self if self.user_id is None else StreamName(self.channel, self.key)

    def bare(self) -> StreamName:
        """The same stream without its key (``news:AAPL:user:bob`` -> ``news:user:bob``)."""
        if self.key is None:
            return self
        return (
            StreamName(self.channel, None, self.user_id)
            if self.interval is None
            else StreamName(self.channel)
        )

    def owned_by(self, user_id: str) -> StreamName:
        """``user_id``'s own stream beside this one (``alerts`` -> ``alerts:user:bob``)."""
        return StreamName(self.channel, self.key, user_id)


def ticker_stream(ticker: str) -> str:
    """The stream of one ticker's prices, ``ticker:AAPL`` (``ticker`` already normalised)."""
    return StreamName("ticker", ticker).format()


def bar_stream(ticker: str, interval: str) -> str:
    """The stream of one ticker's bars of one interval, ``bars:AAPL:1m`` (``ticker`` already normalised)."""
    return StreamName("bars", ticker, None, interval).format()


def private_stream(channel: str, user_id: str) -> str:
    """The stream that carries ``user_id``'s own messages of a private channel, ``alerts:user:bob``."""
    return StreamName(channel, None, user_id).format()
