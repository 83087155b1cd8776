"""Who is subscribed to what on this instance: the routing table the fan-out reads for every message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from legend.domain.channels import Delivery
from legend.domain.events import ClientSubscribed, TickerWatched
from legend.domain.filters import MessageFilter
from legend.runtime.message_bus import MessageBus
from legend.services.streaming.session import Session, Subscribed, WatchlistRef

_NOTHING: frozenset[str] = frozenset()


class FilterGroup:
    """The local subscribers of one stream that share one filter (and one user, for a filter that follows
    the watchlist): the filter is evaluated once per message for all of them, however many they are."""

    __slots__ = ("filter", "hit", "sessions", "watchlist")

    def __init__(self, filter: MessageFilter, watchlist: WatchlistRef | None) -> None:
        self.filter = filter
        self.watchlist = watchlist
        self.sessions: dict[str, Session] = {}
        self.hit = False  # whether it matched the message being fanned out (set by the fan-out)

    def matches(self, message: Mapping[str, Any]) -> bool:
        return self.filter.test(message, self.watchlist.tickers if self.watchlist is not None else _NOTHING)


def group_key(sub: Subscribed, user_id: str) -> str:
    """Subscribers with equal filters share a group; a watchlist filter is shared by one user's only."""
    assert sub.filter is not None
    return f"{sub.filter.key}\n{user_id}" if sub.filter.follows_watchlist else sub.filter.key


class SubscriptionIndex:
    """Streams to their local subscribers, and the counts the rest of the server asks for. Each new
    subscription is announced on the bus (``ClientSubscribed``; ``TickerWatched`` for a ticker's first one).

    ``members`` (unfiltered subscribers), ``groups`` (filtered ones, by filter) and ``delivery`` are read
    by the fan-out for every message. They are changed in place, never replaced, so the fan-out keeps a
    reference to them instead of looking them up here each time.
    """

    __slots__ = ("_channel_users", "_tickers", "bus", "delivery", "groups", "members", "ordered")

    def __init__(self, bus: MessageBus | None = None) -> None:
        self.members: dict[str, dict[str, Session]] = {}  # stream -> session id -> session
        self.groups: dict[str, dict[str, FilterGroup]] = {}  # stream -> group key -> filtered subscribers
        # A stream with filtered subscribers: all of them, in the order they subscribed, with their group
        # (None: unfiltered). The fan-out walks them in that order, near the order they lie in memory:
        # walking group by group was measured 13% slower at 5,000 connections over 50 filters.
        self.ordered: dict[str, dict[str, tuple[Session, FilterGroup | None]]] = {}
        self.delivery: dict[str, Delivery] = {}  # stream -> the delivery class of its channel
        self._tickers: dict[str, int] = {}  # ticker -> subscriptions to it
        self._channel_users: dict[str, dict[str, int]] = {}  # channel -> user -> subscriptions
        self.bus = bus if bus is not None else MessageBus()

    def attach(self, session: Session, sub: Subscribed) -> None:
        """Route ``sub``'s streams to ``session``, then announce it: ``TickerWatched`` when it is the first
        subscription to its ticker here (the quote poller polls it at once), then ``ClientSubscribed`` (plugins send a
        first snapshot)."""
        self._route(session, sub)
        users = self._channel_users.setdefault(sub.spec.name, {})
        users[session.user_id] = users.get(session.user_id, 0) + 1
        if sub.spec.name == "ticker" and sub.key:
            count = self._tickers.get(sub.key, 0)
            self._tickers[sub.key] = count + 1
            if count == 0:
                self.bus.publish(TickerWatched(sub.key))
        self.bus.publish(ClientSubscribed(session.user_id, sub.spec.name, sub.key))

    def detach(self, session: Session, sub: Subscribed) -> None:
        """Stop routing ``sub``'s streams to ``session`` (and forget what its outbox holds of them)."""
        self._unroute(session, sub)
        for stream in sub.streams:
            session.outbox.forget(stream)
        users = self._channel_users.get(sub.spec.name)
        if users is not None:
            left = users.get(session.user_id, 0) - 1
            if left > 0:
                users[session.user_id] = left
            else:
                users.pop(session.user_id, None)
        if sub.spec.name == "ticker" and sub.key:
            left = self._tickers.get(sub.key, 0) - 1
            if left > 0:
                self._tickers[sub.key] = left
            else:
                self._tickers.pop(sub.key, None)

    def refilter(
        self, session: Session, sub: Subscribed, filter: MessageFilter | None, watchlist: WatchlistRef | None
    ) -> None:
        """Give a subscription another filter (a second subscribe to its channel): it moves between the
        groups at once, nothing announced, nothing it holds forgotten."""
        self._unroute(session, sub, keep_place=True)
        sub.filter, sub.watchlist = filter, watchlist
        self._route(session, sub)

    def _route(self, session: Session, sub: Subscribed) -> None:
        for stream in sub.streams:
            group: FilterGroup | None = None
            if sub.filter is None:
                self.members.setdefault(stream, {})[session.id] = session
            else:
                groups = self.groups.setdefault(stream, {})
                key = group_key(sub, session.user_id)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = FilterGroup(sub.filter, sub.watchlist)
                group.sessions[session.id] = session
            ordered = self.ordered.get(stream)
            if ordered is None and group is not None:  # its first filtered subscriber
                ordered = self.ordered[stream] = {
                    s.id: (s, None) for s in self.members.get(stream, {}).values()
                }
            if ordered is not None:
                ordered[session.id] = (session, group)
            self.delivery[stream] = sub.spec.delivery

    def _unroute(self, session: Session, sub: Subscribed, keep_place: bool = False) -> None:
        for stream in sub.streams:
            if sub.filter is None:
                members = self.members.get(stream)
                if members is not None:
                    members.pop(session.id, None)
                    if not members:
                        del self.members[stream]
            else:
                groups = self.groups.get(stream)
                key = group_key(sub, session.user_id)
                group = groups.get(key) if groups is not None else None
                if groups is not None and group is not None:
                    group.sessions.pop(session.id, None)
                    if not group.sessions:
                        del groups[key]
                        if not groups:
                            del self.groups[stream]
            ordered = self.ordered.get(stream)
            if ordered is not None:
                if stream not in self.groups:  # no filtered subscriber left: the plain walk again
                    del self.ordered[stream]
                elif not keep_place:  # (a new filter keeps the place: ``_route`` sets its group)
                    ordered.pop(session.id, None)
            if stream not in self.members and stream not in self.groups:
                self.delivery.pop(stream, None)

    def tickers(self) -> dict[str, int]:
        """Subscriber count per ticker on this instance: the quote poller's interest set."""
        return dict(self._tickers)

    def sessions(self, stream: str) -> list[Session]:
        """Every local subscriber of ``stream``, filtered or not."""
        ordered = self.ordered.get(stream)
        if ordered is not None:  # a stream with filtered subscribers lists them all, with their groups
            return [session for session, _ in ordered.values()]
        return list(self.members.get(stream, {}).values())

    def subscribers(self, stream: str) -> int:
        groups = self.groups.get(stream)
        filtered = sum(len(group.sessions) for group in groups.values()) if groups else 0
        return len(self.members.get(stream, ())) + filtered

    def subscribed_users(self, channel: str) -> set[str]:
        """The users with a subscription to ``channel`` (any key) on this instance."""
        return set(self._channel_users.get(channel, ()))
