"""Rate limits, driven by a monotonic time the caller passes in (so they test without sleeping)."""

from __future__ import annotations

from array import array


class TokenBucket:
    """Inbound limit: ``rate`` tokens a second, at most ``burst`` saved up."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    @property
    def full(self) -> bool:
        return self._tokens >= self.burst - 1


_FIRST_CAPACITY = 16


class SlidingWindow:
    """At most ``limit`` events in any ``window`` seconds: the outbound budget of one connection.

    Unlike a token bucket it never lets a burst of twice the limit through around a window boundary.
    The send times live in a ring of raw doubles that starts small and doubles (up to ``limit``) only
    when more events than it holds fall inside one window: a connection at the default 10/s costs
    about 150 bytes, and a raised budget costs memory in proportion to the traffic, not to the limit.
    Events recorded past the limit (must-deliver messages are never held back) push out the oldest.
    """

    __slots__ = ("_count", "_start", "_times", "limit", "window")

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.limit = limit
        self.window = window
        self._times = array("d", bytes(8 * min(limit, _FIRST_CAPACITY)))
        self._start = 0  # index of the oldest kept time
        self._count = 0

    def __len__(self) -> int:
        """Events kept (those that may still be inside the window)."""
        return self._count

    def _expire(self, now: float) -> None:
        times, horizon = self._times, now - self.window
        while self._count and times[self._start] <= horizon:
            self._start = (self._start + 1) % len(times)
            self._count -= 1

    def fits(self, now: float) -> bool:
        """Whether one more event fits now."""
        if self._count < self.limit:
            return True
        self._expire(now)
        return self._count < self.limit

    def wait(self, now: float) -> float:
        """Seconds until one more event fits (0.0 when it fits now)."""
        self._expire(now)
        if self._count < self.limit:
            return 0.0
        return self._times[self._start] + self.window - now

    def record(self, now: float) -> None:
        times = self._times
        size = len(times)
        if self._count == size:
            self._expire(now)
        if self._count == size:
            if size < self.limit:  # the window holds more than the ring: grow, oldest first
                grown = array("d", bytes(8 * min(self.limit, size * 2)))
                for i in range(size):
                    grown[i] = times[(self._start + i) % size]
                self._times, self._start, times, size = grown, 0, grown, len(grown)
            else:  # past the limit: the oldest no longer matters
                self._start = (self._start + 1) % size
                self._count -= 1
        times[(self._start + self._count) % size] = now
        self._count += 1
