"""The outbox of one connection: what waits to be written to its socket, in what order, within what budget.

Order of service: control replies first (never throttled or dropped), then must-deliver messages in
order (never dropped: past ``capacity`` the connection is declared overflowed and must be closed), then
conflated prices, newest value per stream, when the per-connection budget allows. Must-deliver messages
are not held back by the budget but use it up, so prices yield to them.

While a subscription waits for its history (a round trip to Redis), live messages of that stream are
*held*: they are released after the history reply, minus those the history already contains, so a client
never sees a live message before, or twice beside, the history of its stream.
"""

from __future__ import annotations

import enum
from collections import deque

from legend.domain.channels import Delivery
from legend.domain.envelope import Envelope
from legend.domain.throttle import SlidingWindow


class Pushed(enum.IntEnum):
    """What ``Outbox.push`` did; falsy only for OVERFLOW."""

    OVERFLOW = 0  # past capacity: the connection must be closed
    QUEUED = 1  # something new to write: wake the writer
    MERGED = 2  # replaced a pending price (conflated): the writer need not wake
    DEFERRED = 3  # held while history is read, or already covered by it: nothing to write now


class Outbox:
    """Pending frames of one connection. Pure state: the caller supplies monotonic time."""

    __slots__ = (
        "_budget",
        "_control",
        "_floor",
        "_held",
        "_latest",
        "_reliable",
        "capacity",
        "conflated",
        "overflowed",
    )

    def __init__(self, max_per_second: int, capacity: int) -> None:
        self._control: deque[str] = deque()
        self._reliable: deque[Envelope] = deque()
        self._latest: dict[str, Envelope] = {}
        self._floor: dict[str, int] = {}
        self._held: dict[str, list[tuple[Envelope, Delivery]]] = {}
        self._budget = SlidingWindow(max_per_second)
        self.capacity = capacity
        self.conflated = 0  # prices replaced by a newer one before they were sent
        self.overflowed = False

    def __len__(self) -> int:
        return len(self._control) + len(self._reliable) + len(self._latest)

    def push_control(self, text: str) -> bool:
        """Queue a reply; False (and overflowed) past capacity."""
        if self.overflowed:
            return False
        self._control.append(text)
        return self._check()

    def push(self, envelope: Envelope, delivery: Delivery) -> Pushed:
        """Queue a channel message."""
        if self.overflowed:
            return Pushed.OVERFLOW  # nothing more piles up on a connection that is being closed
        stream = envelope.stream
        held = self._held.get(stream)
        if held is not None:
            held.append((envelope, delivery))
            if len(held) > self.capacity:
                self.overflowed = True
                return Pushed.OVERFLOW
            return Pushed.DEFERRED
        if envelope.seq <= self._floor.get(stream, 0):
            return Pushed.DEFERRED  # already covered by a history reply
        if delivery is Delivery.CONFLATE:
            if stream in self._latest:
                self.conflated += 1
                self._latest[stream] = envelope  # keeps the stream's place in line
                return Pushed.MERGED
            self._latest[stream] = envelope
            return Pushed.QUEUED
        self._reliable.append(envelope)
        return Pushed.QUEUED if self._check() else Pushed.OVERFLOW

    def _check(self) -> bool:
        if len(self._control) + len(self._reliable) > self.capacity:
            self.overflowed = True
        return not self.overflowed

    def hold(self, stream: str) -> None:
        """Keep live messages of ``stream`` aside until ``covered`` (its history is being read)."""
        self._held.setdefault(stream, [])

    def covered(self, stream: str, seq: int) -> Pushed:
        """A history reply covered ``stream`` up to ``seq``: drop anything not newer, and release what
        was held after it."""
        self._floor[stream] = seq
        pending = self._latest.get(stream)
        if pending is not None and pending.seq <= seq:
            del self._latest[stream]
        if self._reliable:
            self._reliable = deque(env for env in self._reliable if env.stream != stream or env.seq > seq)
        return self.release(stream)

    def release(self, stream: str) -> Pushed:
        """Stop holding ``stream`` and queue what was held (history could not be read, or was sent)."""
        queued = False
        for envelope, delivery in self._held.pop(stream, ()):
            pushed = self.push(envelope, delivery)
            if pushed is Pushed.OVERFLOW:
                return pushed
            queued = queued or pushed is Pushed.QUEUED
        return Pushed.QUEUED if queued else Pushed.DEFERRED

    def take_control(self) -> list[str]:
        """Every pending reply, for a connection about to close: its last errors still reach it."""
        replies = list(self._control)
        self._control.clear()
        return replies

    def forget(self, stream: str) -> None:
        """The connection left ``stream``: drop what is pending for it."""
        self._floor.pop(stream, None)
        self._latest.pop(stream, None)
        self._held.pop(stream, None)
        if self._reliable:
            self._reliable = deque(env for env in self._reliable if env.stream != stream)

    def pop(self, now: float) -> tuple[str | None, float | None]:
        """The next frame to write, or (None, seconds to wait) when only throttled prices remain,
        or (None, None) when nothing is pending."""
        if self._control:
            return self._control.popleft(), None
        if self._reliable:
            self._budget.record(now)
            return self._reliable.popleft().text, None
        if not self._latest:
            return None, None
        wait = self._budget.wait(now)
        if wait > 0:
            return None, wait
        stream = next(iter(self._latest))
        self._budget.record(now)
        return self._latest.pop(stream).text, None
