"""Each user's watchlist as the subscription filters that follow it see it (``{"ticker": "watchlist"}``).

A user's list is loaded once when a filter first names it on this instance, then kept current from the
``watchlist`` messages the watchlist API publishes after each change (on every instance of a cluster: they
travel on the backplane like any message). Nothing is kept for a user once no subscription follows it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from weakref import WeakValueDictionary

import msgspec

from legend.domain.events import MessageDelivered
from legend.domain.messages import WatchlistUpdate
from legend.domain.stream_name import InvalidStreamName, StreamName
from legend.runtime.message_bus import MessageBus
from legend.services.streaming.session import WatchlistRef

log = logging.getLogger("legend.streaming")

LoadWatchlist = Callable[[str], Awaitable[list[str]]]

_update = msgspec.json.Decoder(WatchlistUpdate)


class WatchlistUnavailable(Exception):
    """The user's watchlist could not be read (no watchlist store, or it failed)."""


class WatchlistFollower:
    """``follow(user)``: the user's ``WatchlistRef``, shared by all of the user's filters here."""

    def __init__(self, load: LoadWatchlist | None, bus: MessageBus) -> None:
        self._load = load
        self._bus = bus
        self._refs: WeakValueDictionary[str, WatchlistRef] = WeakValueDictionary()
        self._loading: dict[str, asyncio.Future[None]] = {}  # user -> done when the load ends
        self._changed: set[str] = set()  # of those loading, the users whose list a message set meanwhile
        self._listening = False

    async def follow(self, user_id: str) -> WatchlistRef:
        """The user's watchlist as it is now, kept current while a subscription holds it; raises
        WatchlistUnavailable when it cannot be read."""
        ref = self._refs.get(user_id)
        if ref is not None:
            loaded = self._loading.get(user_id)
            if loaded is not None:  # another subscribe is loading it: wait for the same load
                await asyncio.shield(loaded)
                if self._refs.get(user_id) is not ref:
                    raise WatchlistUnavailable("the watchlist could not be read")
            return ref
        if self._load is None:
            raise WatchlistUnavailable("this server keeps no watchlists")
        if not self._listening:  # only once some filter follows a watchlist: no cost per message before
            self._bus.subscribe(MessageDelivered, self._on_delivered)
            self._listening = True
        ref = WatchlistRef()
        self._refs[user_id] = ref  # a change published while loading lands in it, and wins
        self._loading[user_id] = asyncio.get_running_loop().create_future()
        try:
            tickers = await self._load(user_id)
        except Exception as exc:
            self._refs.pop(user_id, None)
            log.warning("watchlist of %s unavailable for a filter: %r", user_id, exc)
            raise WatchlistUnavailable(str(exc)) from exc
        finally:
            done = self._loading.pop(user_id)
            if not done.done():
                done.set_result(None)
            changed = user_id in self._changed
            self._changed.discard(user_id)
        if not changed:
            ref.tickers = frozenset(tickers)
        return ref

    def _on_delivered(self, event: MessageDelivered) -> None:
        envelope = event.envelope
        if envelope.type != "watchlist":
            return
        try:
            user_id = StreamName.parse(envelope.stream).user_id
            update = _update.decode(envelope.text)
        except (InvalidStreamName, msgspec.DecodeError, msgspec.ValidationError):
            return
        if user_id is None:
            return
        ref = self._refs.get(user_id)
        if ref is not None:
            ref.tickers = frozenset(update.tickers)
            if user_id in self._loading:
                self._changed.add(user_id)

    def following(self) -> int:
        """Users whose watchlist some filter follows on this instance."""
        return len(self._refs)
