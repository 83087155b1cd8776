"""The server side of one client connection."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from legend.domain.channels import ChannelSpec
from legend.domain.filters import MessageFilter
from legend.domain.throttle import TokenBucket
from legend.ports.transport import Transport
from legend.services.streaming.outbox import Outbox


class WatchlistRef:
    """One user's watchlist as this instance knows it now, shared by every filtered subscription of the
    user that names ``"watchlist"``: replaced in place when the user's list changes."""

    __slots__ = ("__weakref__", "tickers")

    def __init__(self, tickers: frozenset[str] = frozenset()) -> None:
        self.tickers = tickers


class Subscribed:
    """One subscription of a session: the channel, its key and the streams it reads; with a ``filter``,
    only the messages it matches (``watchlist``: the user's list, for a filter that follows it)."""

    __slots__ = ("filter", "key", "spec", "streams", "watchlist")

    def __init__(
        self,
        spec: ChannelSpec,
        key: str | None,
        streams: tuple[str, ...],
        filter: MessageFilter | None = None,
        watchlist: WatchlistRef | None = None,
    ) -> None:
        self.spec = spec
        self.key = key
        self.streams = streams
        self.filter = filter
        self.watchlist = watchlist

    def matches(self, message: Mapping[str, Any]) -> bool:
        """Whether this subscription wants ``message`` (a decoded channel message)."""
        if self.filter is None:
            return True
        return self.filter.test(message, self.watchlist.tickers if self.watchlist else frozenset())


class Session:
    """State of one connection: identity, subscriptions, outbox, liveness and inbound budget.

    The connection id is made by the server (``{user_id}_{random}``), never chosen by the client.
    A session has no task of its own while its messages go straight to the socket or wait for budget
    (``due``: on the fan-out's shared timer wheel); ``writer`` exists only while its socket is too full
    to take the next frame.
    """

    __slots__ = (
        "address",
        "closing",
        "due",
        "expires_at",
        "gaps",
        "id",
        "inbound",
        "last_seen",
        "outbox",
        "reader",
        "send_started",
        "strikes",
        "subscriptions",
        "transport",
        "user_id",
        "writer",
    )

    def __init__(
        self,
        session_id: str,
        user_id: str,
        transport: Transport,
        outbox: Outbox,
        inbound: TokenBucket,
        now: float,
    ) -> None:
        self.id = session_id
        self.user_id = user_id
        self.transport = transport
        self.outbox = outbox
        self.inbound = inbound
        self.last_seen = now
        self.subscriptions: dict[str, Subscribed] = {}
        self.strikes = 0
        self.send_started: float | None = None  # when the write the writer waits on began
        self.closing = False
        self.expires_at: float | None = None  # epoch seconds when the credentials expire
        self.writer: asyncio.Task[None] | None = None  # drains the outbox while it is not empty
        self.due: int | None = None  # the timer wheel slot at which its budget allows the next frame
        self.reader: asyncio.Task[object] | None = None  # the transport's receive loop, if it has one
        self.address: str | None = None  # the client's address, when admitted through the limits
        # streams it was sent a ``gap`` for and has not had a ``history`` of since (``GapNotices``)
        self.gaps: set[str] | None = None


class SessionOwner(Protocol):
    """What the fan-out and the client protocol ask of the service that owns the sessions."""

    def end_session(self, session: Session) -> None:
        """Forget a session whose socket is gone."""
        ...

    async def close_session(self, session: Session, code: int, reason: str) -> None:
        """Close a session with a close frame, bounded; wait for it."""
        ...

    def close_later(self, session: Session, code: int, reason: str) -> None:
        """Close a session as ``close_session`` does, in a task of its own (the caller goes on)."""
        ...
