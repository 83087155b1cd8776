"""The outbox of one connection: what waits to be written to its socket, in what order, within what budget.

Order of service: control replies first (never throttled or dropped), then must-deliver messages in
order (never dropped: past ``capacity`` the connection is declared overflowed and must be closed), then
conflated prices, newest value per stream, when the per-connection budget allows. Must-deliver messages
are not held back by the budget but use it up, so prices yield to them.
"""

from __future__ import annotations

from collections import deque

from legend.domain.channels import Delivery
from legend.domain.envelope import Envelope
from legend.domain.throttle import SlidingWindow


class Outbox:
    """Pending frames of one connection. Pure state: the caller supplies monotonic time."""

    __slots__ = (
        "_budget",
        "_control",
        "_floor",
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
        self._budget = SlidingWindow(max_per_second)
        self.capacity = capacity
        self.conflated = 0  # prices replaced by a newer one before they were sent
        self.overflowed = False

    def __len__(self) -> int:
        return len(self._control) + len(self._reliable) + len(self._latest)

    def push_control(self, text: str) -> bool:
        """Queue a reply; False (and overflowed) past capacity."""
        self._control.append(text)
        return self._check()

    def push(self, envelope: Envelope, delivery: Delivery) -> bool:
        """Queue a channel message; False (and overflowed) past capacity."""
        if envelope.seq <= self._floor.get(envelope.stream, 0):
            return True  # already covered by a history reply
        if delivery is Delivery.CONFLATE:
            if envelope.stream in self._latest:
                self.conflated += 1
            self._latest[envelope.stream] = envelope  # keeps the stream's place in line
            return True
        self._reliable.append(envelope)
        return self._check()

    def _check(self) -> bool:
        if len(self._control) + len(self._reliable) > self.capacity:
            self.overflowed = True
        return not self.overflowed

    def covered(self, stream: str, seq: int) -> None:
        """A history reply covered ``stream`` up to ``seq``: drop and ignore anything not newer."""
        self._floor[stream] = seq
        pending = self._latest.get(stream)
        if pending is not None and pending.seq <= seq:
            del self._latest[stream]
        if self._reliable:
            self._reliable = deque(env for env in self._reliable if env.stream != stream or env.seq > seq)

    def forget(self, stream: str) -> None:
        """The connection left ``stream``: drop what is pending for it."""
        self._floor.pop(stream, None)
        self._latest.pop(stream, None)
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
