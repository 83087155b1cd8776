"""Who is subscribed to what on this instance: the routing table the fan-out reads for every message."""

from __future__ import annotations

from legend.domain.channels import Delivery
from legend.domain.events import ClientSubscribed, TickerWatched
from legend.runtime.message_bus import MessageBus
from legend.services.streaming.session import Session, Subscribed


class SubscriptionIndex:
    """Streams to their local subscribers, and the counts the rest of the server asks for. Each new
    subscription is announced on the bus (``ClientSubscribed``; ``TickerWatched`` for a ticker's first one).

    ``members`` and ``delivery`` are read by the fan-out for every message. They are changed in place,
    never replaced, so the fan-out keeps a reference to them instead of looking them up here each time.
    """

    __slots__ = ("_bus", "_channel_users", "_tickers", "delivery", "members")

    def __init__(self, bus: MessageBus | None = None) -> None:
        self.members: dict[str, dict[str, Session]] = {}  # stream -> session id -> session
        self.delivery: dict[str, Delivery] = {}  # stream -> the delivery class of its channel
        self._tickers: dict[str, int] = {}  # ticker -> subscriptions to it
        self._channel_users: dict[str, dict[str, int]] = {}  # channel -> user -> subscriptions
        self._bus = bus if bus is not None else MessageBus()

    def attach(self, session: Session, sub: Subscribed) -> None:
        """Route ``sub``'s streams to ``session``, then announce it: ``TickerWatched`` when it is the first
        subscription to its ticker here (the quote poller polls it at once), then ``ClientSubscribed`` (plugins send a
        first snapshot)."""
        for stream in sub.streams:
            self.members.setdefault(stream, {})[session.id] = session
            self.delivery[stream] = sub.spec.delivery
        users = self._channel_users.setdefault(sub.spec.name, {})
        users[session.user_id] = users.get(session.user_id, 0) + 1
        if sub.spec.name == "ticker" and sub.key:
            count = self._tickers.get(sub.key, 0)
            self._tickers[sub.key] = count + 1
            if count == 0:
                self._bus.publish(TickerWatched(sub.key))
        self._bus.publish(ClientSubscribed(session.user_id, sub.spec.name, sub.key))

    def detach(self, session: Session, sub: Subscribed) -> None:
        """Stop routing ``sub``'s streams to ``session`` (and forget what its outbox holds of them)."""
        for stream in sub.streams:
            members = self.members.get(stream)
            if members is not None:
                members.pop(session.id, None)
                if not members:
                    del self.members[stream]
                    self.delivery.pop(stream, None)
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

    def tickers(self) -> dict[str, int]:
        """Subscriber count per ticker on this instance: the quote poller's interest set."""
        return dict(self._tickers)

    def subscribers(self, stream: str) -> int:
        return len(self.members.get(stream, ()))

    def subscribed_users(self, channel: str) -> set[str]:
        """The users with a subscription to ``channel`` (any key) on this instance."""
        return set(self._channel_users.get(channel, ()))
