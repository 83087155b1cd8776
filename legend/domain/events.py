"""The in-process events: what one part of an instance announces and others react to.

An event is a frozen Struct, dispatched by its exact type on the bus (``legend.runtime.message_bus``,
which the composition root wires): the announcers publish these, the reacting handlers are subscribed to
them. They are values of the model; the bus that carries them is runtime machinery.
"""

from __future__ import annotations

import msgspec

from legend.domain.bars import Bar
from legend.domain.envelope import Envelope


class TickerWatched(msgspec.Struct, frozen=True):
    """A ticker got its first subscriber on this instance (the quote poller polls it without waiting)."""

    ticker: str


class ClientSubscribed(msgspec.Struct, frozen=True):
    """A client of this instance subscribed to ``channel`` (``key``: its ticker or other key, if any)."""

    user_id: str
    channel: str
    key: str | None


class BackplaneHealthChanged(msgspec.Struct, frozen=True):
    """The backplane's ``health()["ok"]`` changed: False once a failure is detected, True once it delivers
    live again (only a backplane that can degrade, Redis, announces it)."""

    ok: bool


class StreamGap(msgspec.Struct, frozen=True):
    """Messages ``from_seq`` to ``to_seq`` of ``stream`` never reached this instance, and the stream's
    history no longer holds them (an outage of the backplane outlasted it): they cannot be delivered, so
    the stream's local subscribers must be told (``gap``) rather than left believing they have it all.
    ``finals_kept``: every must-deliver message of the range was delivered from the archive, so on a
    conflated stream with final messages (closed bars) only updates that later ones replace are missing."""

    stream: str
    from_seq: int
    to_seq: int
    finals_kept: bool = False


class MessageDelivered(msgspec.Struct, frozen=True):
    """An envelope reached this instance from the backplane, just before its fan-out (on every instance of
    a cluster). Handlers must be quick: they run on the delivery path."""

    envelope: Envelope


class BarsClosed(msgspec.Struct, frozen=True):
    """Bars the cluster's bar builder just closed and published, oldest first: announced on the one
    instance that builds (it holds the ``bars`` lease), each bar once (a copy refused as published by a
    predecessor is not announced). The plugins' ``on_bars`` callbacks hear it."""

    bars: tuple[Bar, ...]
